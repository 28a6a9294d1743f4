"""`python -m reliability.chaos`: 50 concurrent callers for 3 minutes against two regions of a
third-party MCP server, while a seeded driver kills, restarts, hangs and fronts either region.

The peer is one of the conformance matrix's Python servers (`make peers` installs them; default
`mcp` 1.30.0), two processes, each behind its own counting front end
(tests/conformance/frontend.py). The bridge runs in this process, its probe timer on a 5 s
schedule. One `CHAOS ...` line reports every call by kind and outcome, every `tools/call` each front
end received and passed on, every tool run each server logged, and the figures that must hold:

- safe (read-only) calls failed while at least one region was healthy the whole time: 0. Healthy
  means up, and back for at least the time its probes need to vouch for it again (`HEALTHY_AFTER`
  passing rounds, plus one round for the schedule's alignment: 15 s at 5 s). Also reported, not
  gated: all safe calls failed, and those failed while a region was up but maybe not yet readmitted
  (`safe_failed_while_one_region_up`);
- non-idempotent calls without a key that ran more than once: 0;
- keyed calls (repeated by the caller with the same `Idempotency-Key`) that ran more than once: 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from devstack.host_timers import parse_schedule, run_timer
from mcp_bridge.failover.health import HEALTHY_AFTER
from mcp_bridge.failover.probe_schedule import probe_interval_seconds
from tests.conformance.frontend import FrontEnd
from tests.conformance.install import installed
from tests.conformance.peers import PEERS, Peer

from .chaos_load import Call, ChaosCallers, Driven, drive
from .chaos_regions import READY_TIMEOUT_SECONDS, Region
from .meter import load_average
from .soak_load import Functions

_LOGGER = logging.getLogger("reliability.chaos")
PROBE_SCHEDULE = "*/5 * * * * *"


async def start_regions(peer: Peer, log_dir: Path) -> list[Region]:
    regions = []
    for name in ("a", "b"):
        process = peer.process(log_dir, region=name)
        process.start()
        regions.append(Region(name, process, FrontEnd(process.port, dead_answer=502)))
    for region in regions:
        await asyncio.to_thread(region.process.wait_ready, READY_TIMEOUT_SECONDS)
        await region.front.start()
    return regions


def bridge_env(regions: list[Region]) -> dict[str, str]:
    return {
        "SCHEDULER_ENDPOINTS": ",".join(region.url for region in regions),
        "SCHEDULER_AUTH": "none",
        "SCHEDULER_PING_PATH": "",  # third-party servers have no /ping; the MCP leg probes
        "SCHEDULER_TIMEOUT_SECONDS": "10",
        "HEALTH_PROBE_SCHEDULE": PROBE_SCHEDULE,
        "AzureWebJobsStorage": "",
    }


async def chaos(peer: Peer, *, seconds: float, callers: int, seed: int, log_dir: Path) -> tuple[str, bool]:
    from mcp_bridge.config.loader import reset_settings
    from mcp_bridge.runtime import reset_bridge

    regions = await start_regions(peer, log_dir)
    try:
        os.environ.update(bridge_env(regions))
        reset_settings()
        await reset_bridge()
        functions = Functions()
        load = ChaosCallers(functions, run_id=uuid.uuid4().hex[:8], seed=seed)
        driven = Driven()
        stop = asyncio.Event()
        timer = asyncio.create_task(
            run_timer("health_probe", parse_schedule(PROBE_SCHEDULE), functions.user_function("health_probe"))
        )
        started = time.monotonic()
        running = asyncio.gather(load.run(callers), drive(regions, random.Random(seed + 1), stop, driven))
        await asyncio.sleep(seconds)
        stop.set()
        load.stop.set()
        await running
        elapsed = time.monotonic() - started
        timer.cancel()
        await asyncio.gather(timer, return_exceptions=True)
        await reset_bridge()
        save_safe_failures(log_dir / "safe-failures.json", regions, load, started)
        return report(peer, regions, load, driven, seed=seed, seconds=elapsed, callers=callers)
    finally:
        for region in regions:
            await region.front.aclose()
            region.process.stop(timeout=3)


def safe_failed_while_one_running(calls: list[Call], regions: list[Region]) -> list[Call]:
    """Safe calls that failed while some region was up throughout them (not gated: see the docs)."""
    return [
        c
        for c in calls
        if c.kind == "safe"
        and c.status != 200
        and not all(r.down_during(c.started, c.ended) for r in regions)
    ]


def save_safe_failures(path: Path, regions: list[Region], load: ChaosCallers, started: float) -> None:
    """Every safe call that failed while some region was up throughout it, with its attempts, and
    every region's outages: what `safe_failed_while_one_region_up` counts, to read why."""
    failed = [
        {
            "started": round(c.started - started, 3),
            "ended": round(c.ended - started, 3),
            "status": c.status,
            "slug": c.slug,
            "attempts": c.attempts,
        }
        for c in safe_failed_while_one_running(load.calls, regions)
    ]
    outages = {
        r.name: [[round(begin - started, 3), round(until - started, 3)] for begin, until in r.outages]
        for r in regions
    }
    path.write_text(json.dumps({"outages": outages, "failed": failed}, indent=1))


def report(
    peer: Peer,
    regions: list[Region],
    load: ChaosCallers,
    driven: Driven,
    *,
    seed: int,
    seconds: float,
    callers: int,
) -> tuple[str, bool]:
    runs: Counter[str] = Counter()
    for region in regions:
        runs.update(region.runs())
    by_kind: dict[str, list] = {
        kind: [c for c in load.calls if c.kind == kind] for kind in ("safe", "unkeyed", "keyed")
    }
    failed = {kind: [c for c in calls if c.status != 200] for kind, calls in by_kind.items()}
    vouch = probe_interval_seconds(PROBE_SCHEDULE) * (HEALTHY_AFTER + 1)
    safe_failed_with_one_running = safe_failed_while_one_running(load.calls, regions)
    safe_failed_with_one_up = [
        call
        for call in failed["safe"]
        if not all(r.down_during(call.started, call.ended, vouch_seconds=vouch) for r in regions)
    ]
    twice = {kind: sum(1 for call in calls if runs[call.ident] > 1) for kind, calls in by_kind.items()}
    latencies = sorted(call.ended - call.started for call in load.calls)
    safe_latencies = sorted(call.ended - call.started for call in by_kind["safe"])
    passed = not safe_failed_with_one_up and twice["unkeyed"] == 0 and twice["keyed"] == 0
    regions_text = " ".join(
        f"region_{r.name}=requests:{r.front.counters.received},tools_call:{r.front.counters.tool_calls},"
        f"forwarded_tools_call:{r.front.counters.forwarded_tool_calls},held:{r.front.counters.held},"
        f"runs:{sum(r.runs().values())}"
        for r in regions
    )
    line = (
        f"CHAOS peer={peer.name} random_state={seed} seconds={seconds:.0f} callers={callers} "
        f"calls={len(load.calls)} "
        f"safe={len(by_kind['safe'])} unkeyed={len(by_kind['unkeyed'])} keyed={len(by_kind['keyed'])} "
        f"safe_failed={len(failed['safe'])} "
        f"safe_failed_while_one_region_up={len(safe_failed_with_one_running)} "
        f"safe_failed_while_one_region_healthy={len(safe_failed_with_one_up)} "
        f"unkeyed_failed={_slugs(failed['unkeyed'])} keyed_failed={_slugs(failed['keyed'])} "
        f"keyed_retried={sum(1 for c in by_kind['keyed'] if c.tries > 1)} "
        f"unkeyed_ran_twice={twice['unkeyed']} keyed_ran_twice={twice['keyed']} "
        f"safe_ran_twice={twice['safe']} "
        f"actions={_pairs(driven.actions)} "
        f"{regions_text} p50_ms={_pct(latencies, 50):.0f} p99_ms={_pct(latencies, 99):.0f} "
        f"safe_p99_ms={_pct(safe_latencies, 99):.0f} load={load_average()} "
        f"result={'pass' if passed else 'FAIL'}"
    )
    offset = time.time() - time.monotonic()
    for call in safe_failed_with_one_up[:50]:
        _LOGGER.error(
            "safe call failed while a region was up: %s, %s → %s",
            call,
            time.strftime("%H:%M:%S", time.gmtime(call.started + offset)) + f".{call.started % 1:.3f}"[2:],
            time.strftime("%H:%M:%S", time.gmtime(call.ended + offset)) + f".{call.ended % 1:.3f}"[2:],
        )
    return line, passed


def _pairs(counter: Counter[str]) -> str:
    return ",".join(f"{key.replace(' ', '')}:{value}" for key, value in sorted(counter.items())) or "none"


def _slugs(calls: list) -> str:
    counts = Counter(f"{call.status}:{call.slug}" for call in calls)
    return f"{len(calls)}" + (
        "(" + ",".join(f"{k}={v}" for k, v in sorted(counts.items())) + ")" if calls else ""
    )


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * pct / 100))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--peer", default="mcp-1.30", choices=[p.name for p in PEERS if p.kind == "python"])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--random-state", type=int, default=20261206)
    args = parser.parse_args(argv)
    peer = next(p for p in PEERS if p.name == args.peer)
    if not installed(peer):
        print(f"{peer.name} is not installed: run `make peers`", file=sys.stderr)
        return 2
    log_dir = Path(tempfile.mkdtemp(prefix="scheduler-bridge-chaos-"))
    print(f"chaos: logs in {log_dir}", file=sys.stderr)
    handler = logging.FileHandler(log_dir / "chaos.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    line, passed = asyncio.run(
        chaos(peer, seconds=args.seconds, callers=args.callers, seed=args.random_state, log_dir=log_dir)
    )
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
