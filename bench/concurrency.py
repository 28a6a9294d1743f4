"""Section 2: many callers at once, bridge vs raw, plus a cold start under a burst.

Each level runs time slices alternating bridge and raw (B R R B ...), each counting the calls that
complete inside a window once the callers are all in flight; the throughput ratio is the median of
the ratios of adjacent slices. Errors are calls that did not return a tool result. Before the load,
a fresh bridge takes 100 calls at once: the identity endpoint and the Scheduler count what that
cold start cost (one token request and one MCP session are the goal).
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

    def throughput(self, variant: str) -> float:
        return ratio(self.calls[variant], self.elapsed[variant])

    def p99_ms(self, variant: str) -> float:
        return ms(percentile(self.latencies[variant], 99))

    @property
    def throughput_ratio(self) -> float:
        """Median of the bridge/raw ratios of adjacent slices: robust to load that comes and goes."""
        return median(self.pair_ratios)


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


async def _slice(
    call: Callable[[], Awaitable[bool]], callers: int, *, warmup: float, window: float
) -> tuple[int, int, list[float]]:
    """Calls completed inside `window` after `warmup`, with `callers` always in flight.

    Ramp-up and drain fall outside the window, so a slice measures steady state even when one call
    takes as long as the window at 100 callers.
    """
    loop = asyncio.get_running_loop()
    opens = loop.time() + warmup
    closes = opens + window
    completed = errors = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal completed, errors
        while loop.time() < closes:
            started = loop.time()
            try:
                ok = await call()
            except Exception:
                ok = False
            finished = loop.time()
            if opens <= finished <= closes:
                completed += 1
                errors += not ok
                latencies.append(finished - started)

    await asyncio.gather(*(worker() for _ in range(callers)))
    return completed, errors, latencies


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
            # At 100 callers one call takes about half a second: a longer ramp and window.
            warmup, span = (0.15, window) if callers < 100 else (0.5, 2 * window)
            previous: float | None = None
            for number in range(2 * pairs):
                variant = _PATTERN[number % len(_PATTERN)]
                completed, errors, latencies = await _slice(
                    variants[variant], callers, warmup=warmup, window=span
                )
                level.calls[variant] += completed
                level.errors[variant] += errors
                level.elapsed[variant] += span
                level.latencies[variant] += latencies
                rate = completed / span
                if number % 2 == 1 and previous is not None:
                    level.pair_ratios.append(rate / previous if variant == "bridge" else previous / rate)
                previous = rate
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
