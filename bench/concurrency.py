"""Section 2: many callers at once, bridge vs raw, plus a cold start under a burst.

At each level the same callers run without pause while their target switches between bridge and
raw every slice (B R R B ...). A slice counts the calls of its variant that complete inside its
window, which opens once the calls still in flight from the previous slice have had time to finish;
the throughput ratio is the median of the ratios of adjacent slices (B R and R B pairs), so load
from elsewhere that comes and goes cancels out. Errors are calls that did not return a tool result.
Before the load, a fresh bridge takes 100 calls at once: the identity endpoint and the Scheduler
count what that cold start cost (one token request and one MCP session are the goal).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mcp_bridge.runtime import get_bridge

from .callers import RawClient
from .rig import Rig
from .stack import control
from .stats import median, ms, percentile, ratio

_PATTERN = ("bridge", "raw", "raw", "bridge")


@dataclass
class LevelResult:
    callers: int
    calls: dict[str, int] = field(default_factory=lambda: {"bridge": 0, "raw": 0})
    errors: dict[str, int] = field(default_factory=lambda: {"bridge": 0, "raw": 0})
    elapsed: dict[str, float] = field(default_factory=lambda: {"bridge": 0.0, "raw": 0.0})
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"bridge": [], "raw": []})
    pair_ratios: list[float] = field(default_factory=list)  # bridge/raw of adjacent slices
    cpu: dict[str, float] = field(default_factory=lambda: {"bridge": 0.0, "raw": 0.0})  # in windows
    cpu_pair_ratios: list[float] = field(default_factory=list)  # bridge/raw CPU per call, adjacent slices

    def cpu_per_call_ms(self, variant: str) -> float:
        return ms(ratio(self.cpu[variant], self.calls[variant]))

    def cpu_busy(self, variant: str) -> float:
        """Share of one core this process used during the variant's windows (1.0: CPU-bound)."""
        return ratio(self.cpu[variant], self.elapsed[variant])

    def throughput(self, variant: str) -> float:
        return ratio(self.calls[variant], self.elapsed[variant])

    def p99_ms(self, variant: str) -> float:
        return ms(percentile(self.latencies[variant], 99))

    @property
    def throughput_ratio(self) -> float:
        """Median of the bridge/raw ratios of adjacent slices: robust to load that comes and goes."""
        return median(self.pair_ratios)

    @property
    def cpu_ratio(self) -> float:
        """Median over adjacent slices of bridge over raw client CPU per call."""
        return median(self.cpu_pair_ratios)

    @property
    def cpu_ratio_spread(self) -> tuple[float, float]:
        return percentile(self.cpu_pair_ratios, 25), percentile(self.cpu_pair_ratios, 75)

    @property
    def ratio_spread(self) -> tuple[float, float]:
        """Interquartile range of the pair ratios."""
        return percentile(self.pair_ratios, 25), percentile(self.pair_ratios, 75)


@dataclass
class ColdBurst:
    callers: int
    errors: int
    identity_requests: int
    connections_opened: list[int]
    sessions_created: int
    slowest_ms: float


@dataclass
class ConcurrencyResult:
    era: str
    cold: ColdBurst
    levels: list[LevelResult]
    connections_opened: list[int]  # per bridge endpoint, after all the load
    sessions_during_load: int  # sessions the Scheduler created while the levels ran


async def cold_burst(rig: Rig, era: str, callers: int) -> ColdBurst:
    await rig.use_era(era)
    stack = rig.stack
    primary = stack.primary(era)
    control(stack.identity.url, "POST", "/_devstack/reset")
    control(primary.url, "POST", "/_devstack/reset")
    started = time.perf_counter()

    async def timed() -> tuple[bool, float]:
        ok = await rig.bridge(rig.arguments)
        return ok, time.perf_counter() - started

    outcomes = await asyncio.gather(*(timed() for _ in range(callers)), return_exceptions=True)
    bridge = await get_bridge()
    errors = sum(1 for o in outcomes if isinstance(o, BaseException) or not o[0])
    slowest = max((o[1] for o in outcomes if not isinstance(o, BaseException)), default=float("nan"))
    return ColdBurst(
        callers=callers,
        errors=errors,
        identity_requests=control(stack.identity.url)["token_requests"],
        connections_opened=[session.connections_opened for session in bridge.endpoints],
        sessions_created=control(primary.url)["sessions_created"],
        slowest_ms=ms(slowest),
    )


@dataclass
class _Slice:
    variant: str
    opens: float
    closes: float
    completed: int = 0
    cpu: float = 0.0


async def _run_level(
    variants: dict[str, Callable[[], Awaitable[bool]]],
    level: LevelResult,
    *,
    pairs: int,
    settle: float,
    window: float,
) -> None:
    loop = asyncio.get_running_loop()
    begins = loop.time()
    slices = [
        _Slice(variant, opens, opens + window)
        for number in range(2 * pairs)
        for variant in [_PATTERN[number % len(_PATTERN)]]
        for opens in [begins + number * (settle + window) + settle]
    ]
    ends = slices[-1].closes

    def current(now: float) -> _Slice:
        return slices[min(int((now - begins) / (settle + window)), len(slices) - 1)]

    async def caller() -> None:
        while (now := loop.time()) < ends:
            target = current(now)
            try:
                ok = await variants[target.variant]()
            except Exception:
                ok = False
            finished = loop.time()
            level.errors[target.variant] += not ok  # every failure counts, in a window or not
            counted = current(finished)
            if counted.variant == target.variant and counted.opens <= finished <= counted.closes:
                counted.completed += 1
                level.calls[target.variant] += 1
                level.latencies[target.variant].append(finished - now)

    async def clock() -> None:
        for item in slices:
            await asyncio.sleep(max(0.0, item.opens - loop.time()))
            started = time.process_time()
            await asyncio.sleep(max(0.0, item.closes - loop.time()))
            item.cpu = time.process_time() - started

    await asyncio.gather(clock(), *(caller() for _ in range(level.callers)))
    for first, second in zip(slices[::2], slices[1::2], strict=True):
        rates = {item.variant: item.completed / window for item in (first, second)}
        level.pair_ratios.append(ratio(rates["bridge"], rates["raw"]))
        per_call = {item.variant: ratio(item.cpu, item.completed) for item in (first, second)}
        level.cpu_pair_ratios.append(ratio(per_call["bridge"], per_call["raw"]))
    for item in slices:
        level.elapsed[item.variant] += window
        level.cpu[item.variant] += item.cpu


async def run_concurrency(
    rig: Rig, era: str, *, levels: tuple[int, ...], pairs: int, window: float, burst: int
) -> ConcurrencyResult:
    cold = await cold_burst(rig, era, burst)
    primary = rig.stack.primary(era)
    results: list[LevelResult] = []
    async with RawClient(rig.raw_url(), rig.token) as raw:
        variants: dict[str, Callable[[], Awaitable[bool]]] = {
            "bridge": lambda: rig.bridge(rig.arguments),
            "raw": lambda: raw(rig.arguments),
        }
        # The same history as the bridge: a burst of `burst` calls, so both pools start alike.
        await asyncio.gather(*(raw(rig.arguments) for _ in range(burst)))
        sessions_before = control(primary.url)["sessions_created"]
        for callers in levels:
            level = LevelResult(callers)
            # At 100 callers one call takes half a second to a second on a busy machine: a settle
            # longer than a call, so that the calls (and the CPU) of one slice do not spill into the
            # next, and a longer window.
            settle, span = (0.15, window) if callers < 100 else (1.2, 3 * window)
            await _run_level(variants, level, pairs=pairs, settle=settle, window=span)
            results.append(level)
        sessions_during_load = control(primary.url)["sessions_created"] - sessions_before
    bridge = await get_bridge()
    return ConcurrencyResult(
        era=era,
        cold=cold,
        levels=results,
        connections_opened=[session.connections_opened for session in bridge.endpoints],
        sessions_during_load=sessions_during_load,
    )
