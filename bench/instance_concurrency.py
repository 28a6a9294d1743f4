"""Section 8: how much traffic one instance carries. One worker process, concurrency 1 to 128.

Flex Consumption scales HTTP apps by `perInstanceConcurrency`: the platform sends an instance at
most that many requests at once and adds instances for the rest. Set too low, every concurrent
caller costs an instance of its own (a cold start, a token, an MCP session); set too high, callers
queue behind one busy event loop. This section finds the figure from measurement.

One devstack Functions host (one Python process, one event loop: the worker as Azure runs it with
`FUNCTIONS_WORKER_PROCESS_COUNT=1`) serves `POST /api/tools/getConversationStatus`. Its Scheduler is
the primary region reached through `bench.delay_proxy` (its own process), which adds `delay` each
way, so a call waits on the network as it does in Azure instead of answering in a loopback
millisecond. The load generator (wrk when installed, else the httpx2 loop) keeps `c` requests in
flight for each level in turn, ascending then descending, and each level's figures are the median
of its two runs. Client CPU is the host process's own (user + system) time over the run, read from
/proc: per call, and as the share of one core it kept busy.

The knee is the highest concurrency such that it and every level below it keep their p99 within
1.5 times the p99 at concurrency 1 (a single noisy level above a failed one does not count).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .http_load import Run, check, host_target, load, load_generator, start_bench_host
from .rig import Rig
from .stats import median, ratio
from .wan import WanProxy

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
KNEE_P99_FACTOR = 1.5
MIN_CALLS_PER_RUN = 300
"""Calls each level's run should hold at least, so its p99 is a percentile and not the slowest of a
few dozen: 3 s at concurrency 1 is about 36 calls, whose p99 is their maximum, and the knee is
measured against it (two quiet runs of 3 s levels gave knees of 16 and 2). Low levels run
longer to reach it, up to `MAX_SECONDS_PER_RUN`."""
MAX_SECONDS_PER_RUN = 25.0

INSTANCE_MEMORY_MB = 2048
"""The Flex Consumption instance size the figure is for: 2,048 MB has one vCPU, and one worker
process on one event loop uses one core, which is what this section measures."""


@dataclass
class Level:
    concurrency: int
    runs: list[Run] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return median([run.requests_per_second for run in self.runs])

    @property
    def p50_ms(self) -> float:
        return median([run.p50_ms for run in self.runs])

    @property
    def p99_ms(self) -> float:
        return median([run.p99_ms for run in self.runs])

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def cpu_ms_per_call(self) -> float:
        pairs = zip(self.runs, self.wall_seconds, strict=True)
        calls = sum(run.requests_per_second * wall for run, wall in pairs)
        return ratio(sum(self.cpu_seconds), calls) * 1000

    @property
    def cpu_busy(self) -> float:
        return ratio(sum(self.cpu_seconds), sum(self.wall_seconds))


@dataclass
class InstanceResult:
    delay_ms: float
    seconds: float
    tool: str
    levels: list[Level]
    load_average: tuple[float, float]

    @property
    def knee(self) -> int:
        return knee([(level.concurrency, level.p99_ms) for level in self.levels])

    def level(self, concurrency: int) -> Level:
        return next(level for level in self.levels if level.concurrency == concurrency)


def knee(p99_by_level: list[tuple[int, float]], factor: float = KNEE_P99_FACTOR) -> int:
    """The highest level that, with every level below it, keeps p99 within `factor` × the first's."""
    ordered = sorted(p99_by_level)
    limit = ordered[0][1] * factor
    found = ordered[0][0]
    for concurrency, p99 in ordered:
        if not (math.isfinite(p99) and p99 <= limit):
            break
        found = concurrency
    return found


def run_seconds(seconds: float, concurrency: int, call_seconds: float) -> float:
    """How long a level runs: `seconds`, or longer for `MIN_CALLS_PER_RUN` calls at `concurrency`
    callers each taking `call_seconds`, capped at `MAX_SECONDS_PER_RUN`."""
    wanted = MIN_CALLS_PER_RUN * call_seconds / concurrency
    return max(seconds, min(wanted, MAX_SECONDS_PER_RUN))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_instance_concurrency(
    rig: Rig, *, delay: float, seconds: float, levels: tuple[int, ...] = LEVELS
) -> InstanceResult:
    """Blocking: call it through `asyncio.to_thread` (the load must not share the bench's loop)."""
    proxy = WanProxy(rig.stack.east.port, delay, rig.stack.log_dir / "instance-delay-proxy.log")
    host = None
    try:
        host, key = start_bench_host(
            rig, extra_env={"SCHEDULER_ENDPOINTS": f"http://127.0.0.1:{proxy.port}/mcp"}
        )
        assert host.pid is not None
        target = host_target(host, key, rig.arguments)
        check(target)
        script = rig.stack.log_dir / "wrk-instance.lua"
        warm = load(target, 8, 1.0, script)  # uncounted: the pool fills, the tool list is cached
        call_seconds = max(warm.p50_ms, 1.0) / 1000
        started_load = os.getloadavg()[0]
        results = {count: Level(count) for count in levels}
        for count in (*levels, *reversed(levels)):
            cpu_before, wall_before = process_cpu_seconds(host.pid), time.perf_counter()
            run = load(target, count, run_seconds(seconds, count, call_seconds), script)
            results[count].wall_seconds.append(time.perf_counter() - wall_before)
            results[count].cpu_seconds.append(process_cpu_seconds(host.pid) - cpu_before)
            results[count].runs.append(run)
            time.sleep(0.3)  # the last level's connections close before the next level starts
        return InstanceResult(
            delay_ms=delay * 1000,
            seconds=seconds,
            tool=load_generator(),
            levels=list(results.values()),
            load_average=(started_load, os.getloadavg()[0]),
        )
    finally:
        if host is not None:
            host.stop()
        proxy.stop()


def table(result: InstanceResult) -> list[str]:
    """The Markdown table docs/deployment.md shows, and the knee under it."""
    first = result.levels[0]
    out = [
        "| concurrency | calls/s | p50 ms | p99 ms | p99 / p99 at 1 | errors | client CPU ms per call | "
        "client CPU busy (cores) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result.levels:
        mark = "**" if level.concurrency == result.knee else ""
        out.append(
            f"| {mark}{level.concurrency}{mark} | {level.rps:.0f} | {level.p50_ms:.1f} | "
            f"{level.p99_ms:.1f} | "
            f"{ratio(level.p99_ms, first.p99_ms):.2f} | {level.errors} | {level.cpu_ms_per_call:.2f} | "
            f"{level.cpu_busy:.2f} |"
        )
    out += [
        "",
        f"Knee: **{result.knee}** (the highest concurrency that, with every level below it, keeps p99 "
        f"within {KNEE_P99_FACTOR}× the p99 at concurrency 1). Scheduler {result.delay_ms:.0f} ms away "
        f"each way, {result.seconds:.0f} s per level per direction (longer below, for at least "
        f"{MIN_CALLS_PER_RUN} calls, up to {MAX_SECONDS_PER_RUN:.0f} s), load: {result.tool}; load average "
        f"{result.load_average[0]:.1f} → {result.load_average[1]:.1f}.",
    ]
    return out
