"""`python -m reliability.soak`: one bridge process under a steady mix, its regions restarted every
minute, its tokens expiring every few minutes; one `SOAK ...` line says how the process held up.

The bridge runs in this process (the registered functions, invoked as the worker invokes them), so
the soak reads its own resident memory, file descriptors and asyncio tasks. Quiet samples are
taken with the callers paused, no call in flight and no probe running, right before each restart
(and once at the end), so they compare like with like. The probe timer fires on its NCRONTAB
schedule through the devstack host's timer loop.

A region's death window runs from its kill (or stop) until `WINDOW_GRACE_SECONDS` after it answers
again. Passing needs: resident memory grown by less than 5 % from the first quiet sample after the
warm-up to the last; open file descriptors and tasks at the last within `FLAT_TOLERANCE` of the first of
those quiet samples; no read-only call (reads and listings) failed outside a death window; no keyed
call ran twice (counted in the Scheduler's store: one conversation per keyed call's topic).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import logging
import os
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from devstack.host_timers import parse_schedule, run_timer
from devstack.processes import SchedulerProcess

from .meter import Meter, Sample
from .soak_load import Callers, Functions, schedule_arguments
from .soak_report import report, save_object_growth, save_samples
from .soak_stack import SoakStack, start_soak_stack

_LOGGER = logging.getLogger("reliability.soak")

SESSION_ANSWERS = (
    "spec-404", "typescript-400", "python-text-400", "gateway-400", "go-404", "java-404", "empty-404",
)  # fmt: skip
WINDOW_GRACE_SECONDS = 5.0
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
    malloc_trim: bool = False
    """Hand free heap memory back to the system (glibc `malloc_trim(0)`) before each quiet sample, so
    the samples show memory in use rather than memory the allocator keeps (a diagnosis, not the
    figure the pass rule reads)."""
    trace_memory: bool = False
    """Trace allocations from the warm-up's end (tracemalloc: slows every call) and write what is
    still held at the end, by allocating line, to memory-growth.txt in the log directory."""


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
        self.kinds_first: Counter[str] | None = None
        self.kinds_last: Counter[str] | None = None

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
        if self.plan.malloc_trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        sample, kinds = self.meter.quiet_sample()
        self.quiet.append(sample)
        if sample.at >= self.plan.warm_up_seconds:
            self.kinds_first = self.kinds_first or kinds
            self.kinds_last = kinds
        if self.plan.trace_memory and sample.at >= self.plan.warm_up_seconds and not tracemalloc.is_tracing():
            tracemalloc.start(12)
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
        save_samples(stack.log_dir / "soak-samples.json", runner)
        save_object_growth(stack.log_dir / "object-growth.txt", runner.kinds_first, runner.kinds_last)
        if tracemalloc.is_tracing():
            write_memory_growth(stack.log_dir / "memory-growth.txt")
        await reset_bridge()
        return line, passed
    finally:
        stack.stop()


def write_memory_growth(path: Path, top: int = 30) -> None:
    """What tracemalloc saw allocated since the warm-up and still held, biggest first."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib*")]
    )
    tracemalloc.stop()
    lines = [f"{stat.size / 1024:.1f} KiB in {stat.count} blocks: {stat.traceback}"
             for stat in snapshot.statistics("lineno")[:top]]  # fmt: skip
    for stat in snapshot.statistics("traceback")[: top // 3]:
        lines.append(f"\n{stat.size / 1024:.1f} KiB in {stat.count} blocks, allocated from:")
        lines.extend("    " + line for line in stat.traceback.format(limit=12))
    path.write_text("\n".join(lines) + "\n")
    print(f"soak: memory still held since the warm-up in {path}", file=sys.stderr)


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
    parser.add_argument("--random-state", type=int, default=defaults.seed)
    parser.add_argument("--malloc-trim", action="store_true", help="malloc_trim(0) before quiet samples")
    parser.add_argument("--trace-memory", action="store_true", help="tracemalloc from the warm-up's end")
    args = parser.parse_args(argv)
    plan = SoakPlan(
        seconds=args.seconds,
        rate=args.rate,
        workers=args.workers,
        restart_every=args.restart_every,
        token_lifetime_seconds=args.token_lifetime,
        warm_up_seconds=args.warm_up if args.warm_up is not None else min(120.0, args.seconds / 3),
        seed=args.random_state,
        trace_memory=args.trace_memory,
        malloc_trim=args.malloc_trim,
    )
    line, passed = asyncio.run(soak(plan))
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
