"""`python -m reliability.soak`: one bridge process under a steady mix, its regions restarted every
minute, its tokens expiring every few minutes; one `SOAK ...` line says how the process held up.

The bridge runs in this process (the registered functions, invoked as the worker invokes them), so
the soak reads its own resident memory, file descriptors and asyncio tasks. Quiet samples are
taken with the callers paused, no call in flight and no probe running, right before each restart
(and once at the end), so they compare like with like. The probe timer fires on its NCRONTAB
schedule through the devstack host's timer loop.

A region's death window runs from its kill (or stop) until `WINDOW_GRACE_SECONDS` after it answers
again. Passing needs: resident memory grown by less than 5 % from the first quiet sample after the
warm-up to the last; open file descriptors and tasks within `FLAT_TOLERANCE` of each other across
those quiet samples; no read-only call (reads and listings) failed outside a death window; no keyed
call ran twice (counted in the Scheduler's store: one conversation per keyed call's topic).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.host_timers import parse_schedule, run_timer
from devstack.processes import SchedulerProcess

from .meter import Meter, Sample, load_average
from .soak_load import TOPIC_PREFIX, Callers, Functions, Tally, schedule_arguments
from .soak_stack import SoakStack, start_soak_stack

_LOGGER = logging.getLogger("reliability.soak")

SESSION_ANSWERS = (
    "spec-404", "typescript-400", "python-text-400", "gateway-400", "go-404", "java-404", "empty-404",
)  # fmt: skip
WINDOW_GRACE_SECONDS = 5.0
FLAT_TOLERANCE = 3
MAX_RSS_GROWTH_PCT = 5.0
BOOKED_CONVERSATIONS = 20


@dataclass(frozen=True)
class SoakPlan:
    seconds: float = 900.0
    rate: float = 120.0
    workers: int = 12
    restart_every: float = 60.0
    down_seconds: float = 3.0
    token_lifetime_seconds: int = 180
    probe_schedule: str = "*/10 * * * * *"
    warm_up_seconds: float = 120.0
    idempotency_ttl_seconds: float = 120.0
    seed: int = 17


@dataclass
class Restarts:
    windows: list[tuple[float, float]] = field(default_factory=list)
    done: int = 0
    sessions_created: int = 0
    """Sessions the Scheduler regions created, read before each kill (a killed region forgets)."""
    unauthorized: int = 0

    def inside(self, moment: float) -> bool:
        return any(start <= moment <= end for start, end in self.windows)


class Soak:
    def __init__(self, plan: SoakPlan, stack: SoakStack, functions: Functions) -> None:
        self.plan = plan
        self.stack = stack
        self.functions = functions
        self.meter = Meter()
        self.quiet: list[Sample] = []
        self.restarts = Restarts()
        self.probing = 0
        self.probes_idle = asyncio.Event()
        self.probes_idle.set()
        self.probe_rounds = 0
        self.callers: Callers | None = None

    async def run(self) -> Callers:
        ids = await self._book_conversations()
        run_id = uuid.uuid4().hex[:8]
        callers = self.callers = Callers(
            self.functions, ids, run_id=run_id, rate=self.plan.rate, seed=self.plan.seed
        )
        timer = asyncio.create_task(
            run_timer("health_probe", parse_schedule(self.plan.probe_schedule), self._probe)
        )
        load = asyncio.create_task(callers.run(self.plan.workers))
        try:
            await self._drive(callers)
            await self._quiet_sample(callers)  # the last one, with the callers' tasks still alive
        finally:
            callers.stop.set()
            await load
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
        return callers

    async def _book_conversations(self) -> list[str]:
        import json

        ids = []
        for n in range(BOOKED_CONVERSATIONS):
            status, body = await self.functions(
                "call_tool",
                method="POST",
                path="/api/tools/scheduleConversation",
                route_params={"tool_name": "scheduleConversation"},
                body=schedule_arguments(f"booked-{n}"),
            )
            if status != 200:
                raise RuntimeError(f"booking a conversation failed ({status}): {body[:300]!r}")
            ids.append(json.loads(body)["structuredContent"]["conversation_id"])
        return ids

    async def _probe(self, timer: object) -> None:
        self.probing += 1
        self.probes_idle.clear()
        try:
            await self.functions.user_function("health_probe")(timer)
            self.probe_rounds += 1
        finally:
            self.probing -= 1
            if not self.probing:
                self.probes_idle.set()

    async def _drive(self, callers: Callers) -> None:
        """Restart a region every `restart_every` seconds from the start (none in the last half
        period), sampling every 10 s in between."""
        loop = asyncio.get_running_loop()
        begins = loop.time()
        ends = begins + self.plan.seconds
        self.meter.sample()
        number = 0
        while True:
            next_restart = begins + (number + 1) * self.plan.restart_every
            if ends - next_restart < self.plan.restart_every / 2:
                next_restart = ends
            while loop.time() < next_restart:
                await asyncio.sleep(min(10.0, max(0.0, next_restart - loop.time())))
                self.meter.sample()
            if next_restart >= ends:
                return
            await self._quiet_sample(callers)
            await self._restart(self.stack.regions[number % 2], number)
            number += 1

    async def _quiet_sample(self, callers: Callers) -> None:
        await callers.pause()
        await self.probes_idle.wait()
        await asyncio.sleep(0.2)  # let closed connections' callbacks run
        gc.collect()
        self.quiet.append(self.meter.sample())
        callers.resume()

    async def _restart(self, region: SchedulerProcess, number: int) -> None:
        style = SESSION_ANSWERS[number % len(SESSION_ANSWERS)]
        graceful = (number // 2) % 2 == 1
        counters = await asyncio.to_thread(self.stack.counters, region)
        self.restarts.sessions_created += counters["sessions_created"]
        self.restarts.unauthorized += counters["unauthorized"]
        region.set_session_answer(style)
        started = time.monotonic()
        await asyncio.to_thread(region.stop if graceful else region.kill)
        await asyncio.sleep(self.plan.down_seconds)
        await asyncio.to_thread(region.restart)
        self.restarts.windows.append((started, time.monotonic() + WINDOW_GRACE_SECONDS))
        self.restarts.done += 1
        _LOGGER.info(
            "restart %d: %s %s, back after %.1f s, unknown sessions now answered %s",
            number + 1, region.region, "stopped" if graceful else "killed",
            time.monotonic() - started, style,
        )  # fmt: skip


def report(soak: Soak, callers: Callers, seconds: float, bridge: Any) -> tuple[str, bool]:
    """The `SOAK ...` line and whether the run passed."""
    plan, tally, stack = soak.plan, callers.tally, soak.stack
    settled = [s for s in soak.quiet if s.at >= plan.warm_up_seconds] or soak.quiet[-1:]
    start, end = settled[0], settled[-1]
    middle = min(settled, key=lambda s: abs(s.at - (start.at + end.at) / 2))
    growth = (end.rss_mib - start.rss_mib) / start.rss_mib * 100
    fds = [s.fds for s in settled]
    tasks = [s.tasks for s in settled]
    read_only_outside = sum(
        1
        for failure in tally.failures
        if failure.kind in ("read", "listing") and not soak.restarts.inside(failure.at)
    )
    twice = stack.topics_run_more_than_once(TOPIC_PREFIX + callers.run_id + "-")
    booked = stack.conversations_booked(TOPIC_PREFIX + callers.run_id + "-")
    sessions_server = soak.restarts.sessions_created
    unauthorized = soak.restarts.unauthorized
    for region in stack.regions:
        counters = stack.counters(region)
        sessions_server += counters["sessions_created"]
        unauthorized += counters["unauthorized"]
    sessions_bridge = sum(session.connections_opened for session in bridge.sessions.values())
    refreshes = bridge.tokens.state().refreshes if bridge.tokens is not None else 0
    total = sum(tally.calls.values())
    passed = (
        growth < MAX_RSS_GROWTH_PCT
        and max(fds) - min(fds) <= FLAT_TOLERANCE
        and max(tasks) - min(tasks) <= FLAT_TOLERANCE
        and read_only_outside == 0
        and not twice
    )
    failed = ",".join(f"{kind.replace(' ', ':')}={count}" for kind, count in sorted(tally.failed.items()))
    line = (
        f"SOAK seconds={seconds:.0f} calls={total} rate={total / seconds:.1f}/s "
        f"read={tally.calls['read']} listing={tally.calls['listing']} keyed={tally.calls['keyed']} "
        f"rss_mib_start={start.rss_mib:.1f} rss_mib_middle={middle.rss_mib:.1f} "
        f"rss_mib_end={end.rss_mib:.1f} "
        f"rss_growth_pct={growth:.2f} fds={min(fds)}..{max(fds)} tasks={min(tasks)}..{max(tasks)} "
        f"quiet_samples={len(settled)} restarts={soak.restarts.done} probe_rounds={soak.probe_rounds} "
        f"sessions_opened_bridge={sessions_bridge} sessions_created_server={sessions_server} "
        f"token_refreshes={refreshes} unauthorized_at_server={unauthorized} "
        f"failed_read={_failed(tally, 'read')} failed_listing={_failed(tally, 'listing')} "
        f"failed_keyed={_failed(tally, 'keyed')} read_only_failed_outside_windows={read_only_outside} "
        f"keyed_outcomes={_pairs(tally.keyed)} keyed_booked={booked} keyed_ran_twice={len(twice)} "
        f"failed_by_kind={failed or 'none'} p50_ms={tally.latency.percentile(50):.1f} "
        f"p99_ms={tally.latency.percentile(99):.1f} load={load_average()} "
        f"result={'pass' if passed else 'FAIL'}"
    )
    return line, passed


def _failed(tally: Tally, kind: str) -> int:
    return sum(count for key, count in tally.failed.items() if key.startswith(kind + " "))


def _pairs(counter: dict[str, int]) -> str:
    return ",".join(f"{key}:{value}" for key, value in sorted(counter.items())) or "none"


async def soak(plan: SoakPlan, log_dir: Path | None = None) -> tuple[str, bool]:
    from mcp_bridge.config.loader import reset_settings
    from mcp_bridge.runtime import get_bridge, reset_bridge

    stack = start_soak_stack(token_lifetime_seconds=plan.token_lifetime_seconds, log_dir=log_dir)
    print(f"soak: logs in {stack.log_dir}", file=sys.stderr)
    _log_to(stack.log_dir / "soak.log")
    try:
        os.environ.update(
            stack.bridge_env(
                probe_schedule=plan.probe_schedule, idempotency_ttl_seconds=plan.idempotency_ttl_seconds
            )
        )
        reset_settings()
        await reset_bridge()
        started = time.monotonic()
        runner = Soak(plan, stack, Functions())
        callers = await runner.run()
        line, passed = report(runner, callers, time.monotonic() - started, await get_bridge())
        _save_samples(stack.log_dir / "soak-samples.json", runner)
        await reset_bridge()
        return line, passed
    finally:
        stack.stop()


def _save_samples(path: Path, runner: Soak) -> None:
    """Every sample, quiet ones marked, and the death windows: what the SOAK line was made from."""
    import json
    from dataclasses import asdict

    quiet = {id(sample) for sample in runner.quiet}
    samples = [{**asdict(sample), "quiet": id(sample) in quiet} for sample in runner.meter.samples]
    windows = [
        [start - runner.meter.started, end - runner.meter.started] for start, end in runner.restarts.windows
    ]
    path.write_text(json.dumps({"samples": samples, "death_windows": windows}, indent=1))
    print(f"soak: samples in {path}", file=sys.stderr)


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.soak", description=__doc__.splitlines()[0])
    defaults = SoakPlan()
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="calls a second, all callers")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--restart-every", type=float, default=defaults.restart_every)
    parser.add_argument("--token-lifetime", type=int, default=defaults.token_lifetime_seconds)
    parser.add_argument(
        "--warm-up", type=float, default=None, help="default: 120 s, or a third of a short run"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    plan = SoakPlan(
        seconds=args.seconds,
        rate=args.rate,
        workers=args.workers,
        restart_every=args.restart_every,
        token_lifetime_seconds=args.token_lifetime,
        warm_up_seconds=args.warm_up if args.warm_up is not None else min(120.0, args.seconds / 3),
        seed=args.seed,
    )
    line, passed = asyncio.run(soak(plan))
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
