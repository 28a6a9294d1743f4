"""The soak's figures: the `SOAK ...` line, whether the run passed, and the samples behind them."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_bridge import process_memory

from .meter import load_average
from .soak_load import TOPIC_PREFIX, Callers, Tally

if TYPE_CHECKING:
    from .soak import Soak

FLAT_TOLERANCE = 3
"""The last quiet sample may hold this many more file descriptors or tasks than the first after the
warm-up. A sample between them may catch a session reconnecting (a few more); the line shows the
whole range."""
MAX_RSS_GROWTH_PCT = 5.0


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
        and end.fds - start.fds <= FLAT_TOLERANCE
        and end.tasks - start.tasks <= FLAT_TOLERANCE
        and read_only_outside == 0
        and not twice
    )
    failed = ",".join(f"{kind.replace(' ', ':')}={count}" for kind, count in sorted(tally.failed.items()))
    line = (
        f"SOAK seconds={seconds:.0f} calls={total} rate={total / seconds:.1f}/s "
        f"read={tally.calls['read']} listing={tally.calls['listing']} keyed={tally.calls['keyed']} "
        f"rss_mib_start={start.rss_mib:.1f} rss_mib_middle={middle.rss_mib:.1f} "
        f"rss_mib_end={end.rss_mib:.1f} "
        f"rss_growth_pct={growth:.2f} gc_objects={start.objects}..{end.objects} "
        f"c_heap_in_use_mib={start.heap_in_use_mib:.1f}..{end.heap_in_use_mib:.1f} "
        f"c_heap_free_mib={start.heap_free_mib:.1f}..{end.heap_free_mib:.1f} "
        f"allocator_trims={process_memory.stats.trims} "
        f"fds={min(fds)}..{max(fds)} tasks={min(tasks)}..{max(tasks)} "
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


def save_samples(path: Path, runner: Soak) -> None:
    """Every sample, quiet ones marked, and the death windows: what the SOAK line was made from."""
    quiet = {id(sample) for sample in runner.quiet}
    samples = [{**asdict(sample), "quiet": id(sample) in quiet} for sample in runner.meter.samples]
    windows = [
        [start - runner.meter.started, end - runner.meter.started] for start, end in runner.restarts.windows
    ]
    path.write_text(json.dumps({"samples": samples, "death_windows": windows}, indent=1))
    print(f"soak: samples in {path}", file=sys.stderr)


def save_object_growth(path: Path, first: Counter[str] | None, last: Counter[str] | None) -> None:
    """Object types whose count grew from the first quiet sample after the warm-up to the last."""
    if first is None or last is None:
        return
    grown = sorted(((last[kind] - first[kind], kind) for kind in last), reverse=True)
    lines = [f"{delta:+d} {kind} ({first[kind]} -> {last[kind]})" for delta, kind in grown[:40] if delta]
    path.write_text("\n".join(lines or ["no type grew"]) + "\n")
