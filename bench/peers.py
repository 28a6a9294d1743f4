"""Section 9: the bridge beside another MCP→HTTP proxy, the same Scheduler, the same load.

The peer is mcpo (PyPI `mcpo`), the best-known MCP→OpenAPI proxy, run as a new user would: one
process, `--server-type streamable-http` in front of the primary Scheduler, a static bearer token
in `--header`, its own API key. mcpo 0.0.20 starts only with `mcp==1.30.0` and `fastapi==0.115.12`
pinned beside it, so it lives in a venv of its own under `.cache/bench-peers/mcpo/`, installed from
the compiled `bench/peer_locks/mcpo/requirements.txt` (`python -m bench.peers install`, run by
`make bench`). The bridge is the devstack Functions host in front of the same Scheduler.

Both are driven by the same load generator, with the same `getConversationStatus` arguments, at 1
and 16 connections, interleaved (bridge, mcpo, mcpo, bridge, ...). Ratios are of medians.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import REPO_ROOT, ManagedProcess, free_port

from .http_load import Run, Target, check, host_target, load, load_generator, start_bench_host
from .rig import Rig
from .stack import STATUS_TOOL
from .stats import median, ratio

CACHE = REPO_ROOT / ".cache" / "bench-peers"
LOCKS = Path(__file__).resolve().parent / "peer_locks"
MCPO_VERSION = "0.0.20"
_PATTERN = ("bridge", "mcpo", "mcpo", "bridge")
SIDES = ("bridge", "mcpo")

NOT_RUN = {
    "LiteLLM's MCP REST routes (`litellm[proxy]`)": "not attempted yet: the LiteLLM proxy is a large "
    "install with its own configuration and key management, more than this bench's budget allowed",
}
"""Peers considered and not run, and why (docs/performance.md prints this)."""


@dataclass
class PeerLevel:
    connections: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {side: [] for side in SIDES})

    def rps(self, side: str) -> float:
        return median([run.requests_per_second for run in self.runs[side]])

    def p50_ms(self, side: str) -> float:
        return median([run.p50_ms for run in self.runs[side]])

    def p99_ms(self, side: str) -> float:
        return median([run.p99_ms for run in self.runs[side]])

    def errors(self, side: str) -> int:
        return sum(run.errors for run in self.runs[side])

    @property
    def rps_ratio(self) -> float:
        return ratio(self.rps("bridge"), self.rps("mcpo"))


@dataclass
class PeersResult:
    tool: str
    seconds: float
    levels: list[PeerLevel]
    load_average: tuple[float, float]

    def level(self, connections: int) -> PeerLevel:
        return next(level for level in self.levels if level.connections == connections)


# -- install --------------------------------------------------------------------------------------


def mcpo_folder() -> Path:
    return CACHE / "mcpo"


def install_mcpo() -> None:
    """Create `.cache/bench-peers/mcpo/venv` from the compiled lock unless it is already current."""
    lock = LOCKS / "mcpo" / "requirements.txt"
    folder = mcpo_folder()
    stamp = folder / ".installed"
    if stamp.exists() and stamp.read_text() == lock.read_text():
        return
    uv = Path(sys.executable).parent / "uv"
    venv = folder / "venv"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "sync", "--quiet", "--python", str(python), str(lock)], check=True)  # noqa: S603
    probe = "import importlib.metadata as m; print(m.version('mcpo'))"
    version = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    if version != MCPO_VERSION:
        raise RuntimeError(f"installed mcpo {version}, pinned {MCPO_VERSION}")
    stamp.write_text(lock.read_text())


def start_mcpo(rig: Rig) -> tuple[ManagedProcess, str]:
    """mcpo in front of the primary Scheduler, with a bearer token from the identity endpoint."""
    api_key = secrets.token_hex(16)
    header = json.dumps({"Authorization": f"Bearer {rig.token}"})
    process = ManagedProcess(
        name="mcpo",
        module="mcpo",
        command=[str(mcpo_folder() / "venv" / "bin" / "mcpo")],
        args=[
            *("--host", "127.0.0.1", "--port", "{port}", "--api-key", api_key),
            *("--server-type", "streamable-http", "--header", header, "--", rig.stack.east.mcp_url),
        ],
        port=free_port(),
        log_path=rig.stack.log_dir / "mcpo.log",
        ready_path="/openapi.json",
    )
    process.args = [str(process.port) if arg == "{port}" else arg for arg in process.args]
    process.start()
    try:
        process.wait_ready(60)
    except BaseException:
        process.stop()
        raise
    return process, api_key


def run_peers(rig: Rig, *, connections: tuple[int, ...], seconds: float, rounds: int) -> PeersResult:
    """Blocking: call it through `asyncio.to_thread` (the load must not share the bench's loop)."""
    install_mcpo()
    host = mcpo = None
    try:
        host, key = start_bench_host(rig)
        mcpo, api_key = start_mcpo(rig)
        targets = {
            "bridge": host_target(host, key, rig.arguments),
            "mcpo": Target(
                f"{mcpo.url}/{STATUS_TOOL}",
                {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
                json.dumps(rig.arguments).encode(),
            ),
        }
        for target in targets.values():
            _check(target)
        script = rig.stack.log_dir / "wrk-peers.lua"
        for target in targets.values():
            load(target, 4, 1.0, script)  # uncounted warm-up
        started_load = os.getloadavg()[0]
        levels = []
        for count in connections:
            level = PeerLevel(count)
            for number in range(2 * rounds):
                side = _PATTERN[number % len(_PATTERN)]
                level.runs[side].append(load(targets[side], count, seconds, script))
                time.sleep(0.2)
            levels.append(level)
        return PeersResult(load_generator(), seconds, levels, (started_load, os.getloadavg()[0]))
    finally:
        for process in (mcpo, host):
            if process is not None:
                process.stop()


def _check(target: Target) -> None:
    """mcpo answers the tool's structured result itself; the bridge its tool-result envelope."""
    if "/api/tools/" in target.url:
        check(target)
        return
    import httpx2

    response = httpx2.post(target.url, headers=target.headers, content=target.body, timeout=60)
    if response.status_code != 200 or "conversation_id" not in response.text:
        raise RuntimeError(f"mcpo answered {response.status_code}: {response.text[:300]}")


def table(result: PeersResult) -> list[str]:
    out = [
        "| connections | bridge req/s | mcpo req/s | bridge/mcpo | p50 ms bridge / mcpo | "
        "p99 ms bridge / mcpo | errors bridge / mcpo |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result.levels:
        out.append(
            f"| {level.connections} | {level.rps('bridge'):.0f} | {level.rps('mcpo'):.0f} | "
            f"{level.rps_ratio:.2f} | {level.p50_ms('bridge'):.1f} / {level.p50_ms('mcpo'):.1f} | "
            f"{level.p99_ms('bridge'):.1f} / {level.p99_ms('mcpo'):.1f} | "
            f"{level.errors('bridge')} / {level.errors('mcpo')} |"
        )
    out += [
        "",
        f"mcpo {MCPO_VERSION} (with mcp 1.30.0, fastapi 0.115.12) and the bridge behind the devstack host, "
        f"the same Scheduler, {result.tool}, {result.seconds:.0f} s per run, interleaved; load average "
        f"{result.load_average[0]:.1f} → {result.load_average[1]:.1f}.",
    ]
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        install_mcpo()
    else:
        sys.exit("usage: python -m bench.peers install")
