"""Section 1: one caller, the same call three ways, interleaved.

Each round makes one bridge call and one raw call, in alternating order (A B, B A, ...), so drift
in machine load falls on both. Every `naive_every` rounds a naive call joins the round, in turn
with and without a token per call. Ratios are of medians taken in the same run; `naive` (a new
client and token per call) is the one in `p3`, `naive_reused_token` is shown beside it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .callers import RawClient, naive_call
from .rig import Rig
from .stats import median, ms, percentile, ratio

WARMUP = 30
CPU_BLOCK = 25  # rounds per CPU ratio: 500 rounds give 20 ratios


@dataclass
class LatencyResult:
    era: str
    samples: dict[str, list[float]] = field(default_factory=dict)  # seconds
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # this process's CPU seconds, summed
    cpu_samples: dict[str, list[float]] = field(default_factory=dict)  # per call, in call order

    def cpu_ms(self, variant: str) -> float:
        """Mean CPU per call in this (the calling) process; calls run one at a time, so it is theirs."""
        return ms(ratio(self.cpu[variant], len(self.samples[variant])))

    def median_ms(self, variant: str) -> float:
        return ms(median(self.samples[variant]))

    def p99_ms(self, variant: str) -> float:
        return ms(percentile(self.samples[variant], 99))

    @property
    def cpu_block_ratios(self) -> list[float]:
        """Bridge over raw client CPU per call, one ratio per block of `CPU_BLOCK` interleaved rounds:
        a call's own CPU time is too coarse and too noisy alone, a block's sum is not."""
        bridge, raw = self.cpu_samples["bridge"], self.cpu_samples["raw"]
        return [
            ratio(sum(bridge[at : at + CPU_BLOCK]), sum(raw[at : at + CPU_BLOCK]))
            for at in range(0, min(len(bridge), len(raw)) - CPU_BLOCK + 1, CPU_BLOCK)
        ]

    @property
    def cpu_ratio(self) -> float:
        return median(self.cpu_block_ratios)

    @property
    def cpu_ratio_spread(self) -> tuple[float, float]:
        return percentile(self.cpu_block_ratios, 25), percentile(self.cpu_block_ratios, 75)

    @property
    def bridge_over_raw(self) -> float:
        return ratio(self.median_ms("bridge"), self.median_ms("raw"))

    @property
    def naive_over_bridge(self) -> float:
        return ratio(self.median_ms("naive"), self.median_ms("bridge"))

    @property
    def reused_token_naive_over_bridge(self) -> float:
        return ratio(self.median_ms("naive_reused_token"), self.median_ms("bridge"))


async def run_latency(rig: Rig, era: str, *, rounds: int, naive_every: int) -> LatencyResult:
    await rig.use_era(era)
    arguments = rig.arguments
    url = rig.raw_url()
    identity = rig.identity()
    names = ("bridge", "raw", "naive", "naive_reused_token")
    result = LatencyResult(
        era,
        {name: [] for name in names},
        dict.fromkeys(names, 0),
        dict.fromkeys(names, 0.0),
        {name: [] for name in names},
    )
    async with RawClient(url, rig.token) as raw:
        variants: dict[str, Callable[[], Awaitable[bool]]] = {
            "bridge": lambda: rig.bridge(arguments),
            "raw": lambda: raw(arguments),
            "naive": lambda: naive_call(url, rig.token, arguments, identity=identity),
            "naive_reused_token": lambda: naive_call(url, rig.token, arguments),
        }
        for _ in range(WARMUP):
            await variants["bridge"]()
            await variants["raw"]()
        await variants["naive"]()
        await variants["naive_reused_token"]()
        for number in range(rounds):
            order = ["bridge", "raw"] if number % 2 == 0 else ["raw", "bridge"]
            if number % naive_every == 0:
                turn = number // naive_every
                naive = "naive" if turn % 2 == 0 else "naive_reused_token"
                order.insert((turn // 2) % 3, naive)
            for variant in order:
                cpu = time.process_time()
                started = time.perf_counter()
                ok = await variants[variant]()
                result.samples[variant].append(time.perf_counter() - started)
                spent = time.process_time() - cpu
                result.cpu[variant] += spent
                result.cpu_samples[variant].append(spent)
                if not ok:
                    result.failures[variant] += 1
    return result
