"""Section 9: the bridge beside other MCP→HTTP proxies, the same Scheduler, the same load.

The peers (bench/peer_servers.py says how each is installed and started) are mcpo, the best-known
MCP→OpenAPI proxy, and LiteLLM's proxy with its MCP REST routes. The bridge is the devstack
Functions host in front of the same primary Scheduler. All are driven by the same load generator
with the same `getConversationStatus` arguments, at 1 and 16 connections, interleaved (bridge,
mcpo, litellm, litellm, mcpo, bridge, ...). Ratios are of medians.

Before the load, one call through each side is checked: it must answer 200 with the conversation
asked for, and the Scheduler's own counters must show exactly one `getConversationStatus` for it.
The same check counts the MCP requests each side sends the Scheduler for one warm tool call.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import httpx2

from devstack.processes import ManagedProcess

from .http_load import Run, Target, host_target, load, load_generator, start_bench_host
from .instance_concurrency import process_cpu_seconds
from .peer_servers import LITELLM, MCPO, PEERS, install
from .rig import Rig
from .stack import STATUS_TOOL, control
from .stats import median, ratio

SIDES = ("bridge", *(peer.name for peer in PEERS))
_PATTERN = (*SIDES, *reversed(SIDES))

NOT_RUN: dict[str, str] = {}
"""Peers considered and not run, and why (docs/performance.md prints this)."""


@dataclass
class PeerLevel:
    connections: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {side: [] for side in SIDES})
    cpu_seconds: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    """CPU of the side's server process during each run (its wall time is the run's)."""
    wall_seconds: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})

    def rps(self, side: str) -> float:
        return median([run.requests_per_second for run in self.runs[side]])

    def p50_ms(self, side: str) -> float:
        return median([run.p50_ms for run in self.runs[side]])

    def p99_ms(self, side: str) -> float:
        return median([run.p99_ms for run in self.runs[side]])

    def errors(self, side: str) -> int:
        return sum(run.errors for run in self.runs[side])

    def cpu_ms_per_call(self, side: str) -> float:
        """Server CPU per answered call: the bridge's host, mcpo's or LiteLLM's one process."""
        pairs = zip(self.runs[side], self.wall_seconds[side], strict=True)
        calls = sum(run.requests_per_second * wall for run, wall in pairs)
        return ratio(sum(self.cpu_seconds[side]), calls) * 1000

    def rps_ratio(self, peer: str) -> float:
        """The bridge's requests/s over `peer`'s."""
        return ratio(self.rps("bridge"), self.rps(peer))


@dataclass
class PeersResult:
    tool: str
    seconds: float
    levels: list[PeerLevel]
    load_average: tuple[float, float]
    upstream_requests: dict[str, int] = field(default_factory=dict)
    """MCP requests the Scheduler saw for one warm tool call through each side."""

    def level(self, connections: int) -> PeerLevel:
        return next(level for level in self.levels if level.connections == connections)


def install_peers() -> None:
    for peer in PEERS:
        install(peer)


def run_peers(rig: Rig, *, connections: tuple[int, ...], seconds: float, rounds: int) -> PeersResult:
    """Blocking: call it through `asyncio.to_thread` (the load must not share the bench's loop)."""
    install_peers()
    processes: list[ManagedProcess] = []
    try:
        host, key = start_bench_host(rig)
        processes.append(host)
        targets = {"bridge": host_target(host, key, rig.arguments)}
        pids = {"bridge": host.pid}
        for peer in PEERS:
            process, targets[peer.name] = peer.start(rig)
            processes.append(process)
            pids[peer.name] = process.pid
        upstream = {side: check_side(rig, side, target) for side, target in targets.items()}
        script = rig.stack.log_dir / "wrk-peers.lua"
        for target in targets.values():
            load(target, 4, 1.0, script)  # uncounted warm-up
        started_load = os.getloadavg()[0]
        levels = []
        for count in connections:
            level = PeerLevel(count)
            for number in range(len(SIDES) * rounds):
                side = _PATTERN[number % len(_PATTERN)]
                cpu, wall = process_cpu_seconds(pids[side]), time.perf_counter()
                level.runs[side].append(load(targets[side], count, seconds, script))
                level.cpu_seconds[side].append(process_cpu_seconds(pids[side]) - cpu)
                level.wall_seconds[side].append(time.perf_counter() - wall)
                time.sleep(0.2)
            levels.append(level)
        return PeersResult(load_generator(), seconds, levels, (started_load, os.getloadavg()[0]), upstream)
    finally:
        for process in reversed(processes):
            process.stop()


def check_side(rig: Rig, side: str, target: Target) -> int:
    """Two calls by hand (the first pays imports, sessions and the token); the second must reach the
    Scheduler as one `getConversationStatus` and answer the conversation asked for. Returns the MCP
    requests the Scheduler saw for that second call."""
    _call(side, target, rig.arguments["conversation_id"])
    before = control(rig.stack.east.url)
    _call(side, target, rig.arguments["conversation_id"])
    after = control(rig.stack.east.url)
    calls = after["tool_calls"][STATUS_TOOL] - before["tool_calls"][STATUS_TOOL]
    if calls != 1:
        raise RuntimeError(f"one call through {side} reached the Scheduler as {calls} tool calls")
    return int(after["mcp_requests"] - before["mcp_requests"])


def _call(side: str, target: Target, conversation_id: str) -> None:
    """The bridge and LiteLLM answer the tool-result envelope, mcpo the structured result itself."""
    response = httpx2.post(target.url, headers=target.headers, content=target.body, timeout=60)
    try:
        body = response.json()
    except ValueError:
        body = None
    answered = None
    if isinstance(body, dict) and not body.get("isError"):
        result = body.get("structuredContent", body)
        answered = result.get("conversation_id") if isinstance(result, dict) else None
    if response.status_code != 200 or answered != conversation_id:
        raise RuntimeError(f"{side} answered {response.status_code}: {response.text[:300]}")


def table(result: PeersResult) -> list[str]:
    peers = SIDES[1:]
    per_side = " / ".join(SIDES)
    out = [
        "| connections | "
        + " | ".join(f"{side} req/s" for side in SIDES)
        + " | "
        + " | ".join(f"bridge/{peer}" for peer in peers)
        + f" | p50 ms {per_side} | p99 ms {per_side} | server CPU ms per call {per_side}"
        + f" | errors {per_side} |",
        "|---:|" + "---:|" * (len(SIDES) + len(peers) + 4),
    ]
    for level in result.levels:
        out.append(
            f"| {level.connections} | "
            + " | ".join(f"{level.rps(side):.0f}" for side in SIDES)
            + " | "
            + " | ".join(f"{level.rps_ratio(peer):.2f}" for peer in peers)
            + " | "
            + " / ".join(f"{level.p50_ms(side):.1f}" for side in SIDES)
            + " | "
            + " / ".join(f"{level.p99_ms(side):.1f}" for side in SIDES)
            + " | "
            + " / ".join(f"{level.cpu_ms_per_call(side):.2f}" for side in SIDES)
            + " | "
            + " / ".join(str(level.errors(side)) for side in SIDES)
            + " |"
        )
    requests = ", ".join(f"{side} {result.upstream_requests[side]}" for side in result.upstream_requests)
    out += [
        "",
        f"{MCPO.label}, {LITELLM.label} and the bridge behind the devstack host, the same Scheduler, "
        f"{result.tool}, {result.seconds:.0f} s per run, interleaved; load average "
        f"{result.load_average[0]:.1f} → {result.load_average[1]:.1f}. MCP requests the Scheduler "
        f"saw for one warm tool call: {requests}.",
    ]
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        install_peers()
    else:
        sys.exit("usage: python -m bench.peers install")
