"""What a long run watches in its own process: resident memory, open file descriptors, live tasks.

Read from /proc (Linux), so a sample costs microseconds and needs no dependency. A sample taken
while calls are in flight counts their tasks and sockets too; `Meter.quiet_sample` is meant to be
taken with the load paused, so two quiet samples compare like with like.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    at: float
    """Seconds since the meter started."""
    rss_mib: float
    fds: int
    tasks: int
    objects: int = 0
    """Objects the garbage collector tracks (containers); counted in quiet samples only."""


def rss_mib() -> float:
    """Resident set size of this process, MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the record next to any figure the load can move."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


@dataclass
class Meter:
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample:
        taken = Sample(
            at=time.monotonic() - self.started,
            rss_mib=rss_mib(),
            fds=open_fds(),
            tasks=len(asyncio.all_tasks()),
        )
        self.samples.append(taken)
        return taken

    def quiet_sample(self) -> tuple[Sample, Counter[str]]:
        """A sample with the collector's objects counted by type (tens of milliseconds)."""
        kinds = Counter(type(item).__qualname__ for item in gc.get_objects())
        taken = Sample(
            at=time.monotonic() - self.started,
            rss_mib=rss_mib(),
            fds=open_fds(),
            tasks=len(asyncio.all_tasks()),
            objects=sum(kinds.values()),
        )
        self.samples.append(taken)
        return taken, kinds

    def after(self, seconds: float) -> list[Sample]:
        return [sample for sample in self.samples if sample.at >= seconds]
