"""Section 3b: what HTTP streams cost the ordinary call, over real HTTP through the devstack host.

HTTP streams are the whole app's switch (mcp_bridge.functions.http_streams): with `HTTP_STREAMS`
on, every HTTP function takes the FastAPI request and answers a FastAPI response through the
adapter, SSE asked for or not. Two devstack hosts serve the same function_app.py in front of the
same Scheduler, one classic and one with HTTP streams, under the same closed-loop load on
`POST /api/tools/{tool}` (no `Accept: text/event-stream`); runs alternate classic, streams,
streams, classic. The key is the streams host's median latency over the classic host's at one
connection, and its throughput over the classic host's at the highest connection count.

What this cannot measure: in Azure the host proxies an HTTP-streams request to the worker's own
HTTP server instead of sending it over gRPC; the devstack host runs the functions in-process, so
that hop is not in these numbers (docs/streaming.md).

    python -m bench.streams [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from dataclasses import dataclass, field

from .http_load import Run, _httpx_load, _wrk, check, start_bench_host, targets
from .rig import Rig, build_rig
from .stack import start_stack
from .stats import median, ratio

STREAMS_ENV = {"HTTP_STREAMS": "true", "PYTHON_ENABLE_INIT_INDEXING": "1"}
_PATTERN = ("classic", "streams", "streams", "classic")


@dataclass
class StreamsLevel:
    connections: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"classic": [], "streams": []})

    def p50_ms(self, side: str) -> float:
        return median([run.p50_ms for run in self.runs[side]])

    def rps(self, side: str) -> float:
        return median([run.requests_per_second for run in self.runs[side]])

    def errors(self, side: str) -> int:
        return sum(run.errors for run in self.runs[side])


@dataclass
class StreamsResult:
    tool: str
    levels: list[StreamsLevel]

    @property
    def p50_ratio(self) -> float:
        first = self.levels[0]
        return ratio(first.p50_ms("streams"), first.p50_ms("classic"))

    @property
    def rps_ratio(self) -> float:
        last = self.levels[-1]
        return ratio(last.rps("streams"), last.rps("classic"))

    def lines(self) -> list[str]:
        out = [
            f"### 3b. HTTP streams on vs off, ordinary calls ({self.tool}, closed loop, median of runs)",
            "",
            "| connections | classic req/s | streams req/s | classic p50 ms | streams p50 ms | errors |",
            "|---|---|---|---|---|---|",
        ]
        for level in self.levels:
            out.append(
                f"| {level.connections} | {level.rps('classic'):.0f} | {level.rps('streams'):.0f} | "
                f"{level.p50_ms('classic'):.2f} | {level.p50_ms('streams'):.2f} | "
                f"{level.errors('classic') + level.errors('streams')} |"
            )
        out += [
            "",
            f"RESULT http_streams_p50_over_classic={self.p50_ratio:.3f} "
            f"http_streams_rps_over_classic={self.rps_ratio:.3f}",
        ]
        return out


def run_streams(rig: Rig, *, connections: tuple[int, ...], seconds: float, rounds: int) -> StreamsResult:
    """Blocking: call it through `asyncio.to_thread` (the load must not share the bench's loop)."""
    hosts = {"classic": start_bench_host(rig), "streams": start_bench_host(rig, extra_env=STREAMS_ENV)}
    try:
        chosen = {side: targets(rig, host, key)["host"] for side, (host, key) in hosts.items()}
        for target in chosen.values():
            check(target)
        use_wrk = shutil.which("wrk") is not None
        script = rig.stack.log_dir / "wrk-streams.lua"
        levels = []
        for count in connections:
            level = StreamsLevel(count)
            for number in range(2 * rounds):
                side = _PATTERN[number % len(_PATTERN)]
                target = chosen[side]
                run = _wrk(target, count, seconds, script) if use_wrk else _httpx_load(target, count, seconds)
                level.runs[side].append(run)
                time.sleep(0.2)
            levels.append(level)
        return StreamsResult(tool="wrk" if use_wrk else "httpx2 loop", levels=levels)
    finally:
        for host, _ in hosts.values():
            host.stop()


async def _main(quick: bool) -> None:
    stack = start_stack()
    try:
        rig = await build_rig(stack)
        result = await asyncio.to_thread(
            run_streams, rig, connections=(1, 32), seconds=1.0 if quick else 3.0, rounds=1 if quick else 3
        )
    finally:
        stack.stop()
    print("\n".join(result.lines()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(_main(parser.parse_args().quick))
