"""Section 1: one caller, the same call three ways, interleaved.

Each round makes one bridge call and one raw call, in alternating order (A B, B A, ...), so drift
in machine load falls on both. Every `naive_every` rounds a naive call joins the round. Ratios are
of medians taken in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .callers import RawClient, naive_call
from .rig import Rig
from .stats import median, ms, percentile, ratio

WARMUP = 30


@dataclass
class LatencyResult:
    era: str
    samples: dict[str, list[float]] = field(default_factory=dict)  # seconds
    failures: dict[str, int] = field(default_factory=dict)

    def median_ms(self, variant: str) -> float:
        return ms(median(self.samples[variant]))

    def p99_ms(self, variant: str) -> float:
        return ms(percentile(self.samples[variant], 99))

    @property
    def bridge_over_raw(self) -> float:
        return ratio(self.median_ms("bridge"), self.median_ms("raw"))

    @property
    def naive_over_bridge(self) -> float:
        return ratio(self.median_ms("naive"), self.median_ms("bridge"))


async def run_latency(rig: Rig, era: str, *, rounds: int, naive_every: int) -> LatencyResult:
    await rig.use_era(era)
    arguments = rig.arguments
    url = rig.raw_url()
    result = LatencyResult(era, {"bridge": [], "raw": [], "naive": []}, {"bridge": 0, "raw": 0, "naive": 0})
    async with RawClient(url, rig.token) as raw:
        variants: dict[str, Callable[[], Awaitable[bool]]] = {
            "bridge": lambda: rig.bridge(arguments),
            "raw": lambda: raw(arguments),
            "naive": lambda: naive_call(url, rig.token, arguments),
        }
        for _ in range(WARMUP):
            await variants["bridge"]()
            await variants["raw"]()
        await variants["naive"]()
        for number in range(rounds):
            order = ["bridge", "raw"] if number % 2 == 0 else ["raw", "bridge"]
            if number % naive_every == 0:
                order.insert((number // naive_every) % 3, "naive")
            for variant in order:
                started = time.perf_counter()
                ok = await variants[variant]()
                result.samples[variant].append(time.perf_counter() - started)
                if not ok:
                    result.failures[variant] += 1
    return result
