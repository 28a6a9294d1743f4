"""Section 3: over real HTTP. The devstack Functions host vs the Scheduler itself, same load.

The host serves `function_app` the way the Python worker does (one process, one event loop) with
the function key in `?code=`. The same closed-loop load (a fixed number of connections, each
sending its next request when the last one answered) goes to `POST /api/tools/{tool}` on the host
and, as raw MCP, to the primary Scheduler's `/mcp`: the `tools/call` a 2026-07-28 client sends
(stateless, one POST). `wrk` is the load generator when installed (it costs far less CPU than the
servers); otherwise a bounded asyncio loop with httpx2. Runs alternate host, raw, raw, host.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from devstack.processes import REPO_ROOT, ManagedProcess, free_port, start_host

from .rig import Rig
from .stack import STATUS_TOOL
from .stats import median, ms, percentile, ratio

MODERN_VERSION = "2026-07-28"
_PATTERN = ("host", "raw", "raw", "host")


@dataclass
class Target:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class HttpLevel:
    connections: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"host": [], "raw": []})

    def rps(self, side: str) -> float:
        return median([run.requests_per_second for run in self.runs[side]])

    def p99_ms(self, side: str) -> float:
        return median([run.p99_ms for run in self.runs[side]])

    def p50_ms(self, side: str) -> float:
        return median([run.p50_ms for run in self.runs[side]])

    def errors(self, side: str) -> int:
        return sum(run.errors for run in self.runs[side])

    @property
    def rps_ratio(self) -> float:
        return ratio(self.rps("host"), self.rps("raw"))


@dataclass
class HttpResult:
    tool: str
    levels: list[HttpLevel]


def start_bench_host(rig: Rig, *, extra_env: dict[str, str] | None = None) -> tuple[ManagedProcess, str]:
    key = secrets.token_hex(16)
    env = {
        **rig.stack.bridge_env("modern"),
        "DEVSTACK_FUNCTION_KEY": key,
        "DEVSTACK_MASTER_KEY": secrets.token_hex(16),
        **(extra_env or {}),
    }
    host = start_host(
        port=free_port(),
        log_dir=rig.stack.log_dir,
        app_dir=REPO_ROOT,
        settings_file=rig.stack.log_dir / "no-local-settings.json",  # the environment only
        env=env,
    )
    return host, key


def targets(rig: Rig, host: ManagedProcess, key: str) -> dict[str, Target]:
    arguments = rig.arguments
    rpc = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": STATUS_TOOL,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    return {
        "host": host_target(host, key, arguments),
        "raw": Target(
            rig.stack.east.mcp_url,
            {
                "Authorization": f"Bearer {rig.token}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
                "MCP-Protocol-Version": MODERN_VERSION,
                "Mcp-Method": "tools/call",
                "Mcp-Name": STATUS_TOOL,
            },
            json.dumps(rpc).encode(),
        ),
    }


def check(target: Target) -> None:
    """One request by hand: the load must measure successful tool calls, not fast errors. The first
    request on a fresh host pays the imports, the token and the sessions: seconds on a busy machine."""
    response = httpx2.post(target.url, headers=target.headers, content=target.body, timeout=60)
    body: Any = response.json()
    failed = response.status_code != 200 or "error" in body or body.get("result", body).get("isError")
    if failed:
        raise RuntimeError(
            f"{target.url.split('?')[0]} answered {response.status_code}: {response.text[:300]}"
        )


# -- wrk ----------------------------------------------------------------------------------------

_LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(target: Target, connections: int, seconds: float, script: Path) -> Run:
    script.write_text(_LUA.format(body=target.body.decode()))
    duration = max(1, round(seconds))  # wrk takes whole seconds
    # wrk's own 2 s timeout would drop a slow peer's calls from the latencies; 30 s, as the httpx2 loop
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency"]
    command += ["-s", str(script)]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    completed = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
        [*command, target.url], capture_output=True, text=True, timeout=duration + 30, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr[-500:]}")
    output = completed.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(found.group(1))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(n) for n in found.groups())
    return Run(rps, _wrk_percentile(output, "50%"), _wrk_percentile(output, "99%"), errors)


def _wrk_percentile(output: str, label: str) -> float:
    found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


# -- fallback: a bounded asyncio loop --------------------------------------------------------------


def _httpx_load(target: Target, connections: int, seconds: float) -> Run:
    async def load() -> Run:
        latencies: list[float] = []
        errors = 0
        limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
            loop = asyncio.get_running_loop()
            closes = loop.time() + seconds

            async def worker() -> None:
                nonlocal errors
                while loop.time() < closes:
                    started = loop.time()
                    response = await client.post(target.url, headers=target.headers, content=target.body)
                    latencies.append(loop.time() - started)
                    errors += response.status_code != 200

            started = loop.time()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = loop.time() - started
        return Run(len(latencies) / elapsed, ms(median(latencies)), ms(percentile(latencies, 99)), errors)

    return asyncio.run(load())


def load(target: Target, connections: int, seconds: float, script: Path) -> Run:
    """One closed-loop run with wrk when installed, else the httpx2 loop."""
    if shutil.which("wrk") is not None:
        return _wrk(target, connections, seconds, script)
    return _httpx_load(target, connections, seconds)


def load_generator() -> str:
    return "wrk" if shutil.which("wrk") is not None else "httpx2 loop"


def host_target(host: ManagedProcess, key: str, arguments: dict[str, Any]) -> Target:
    """`POST /api/tools/{tool}` on a bench host, with the function key."""
    return Target(
        f"{host.url}/api/tools/{STATUS_TOOL}?code={key}",
        {"Content-Type": "application/json"},
        json.dumps(arguments).encode(),
    )


def run_http(rig: Rig, *, connections: tuple[int, ...], seconds: float, rounds: int) -> HttpResult:
    """Blocking: call it through `asyncio.to_thread` (the load must not share the bench's loop)."""
    host, key = start_bench_host(rig)
    try:
        chosen = targets(rig, host, key)
        for target in chosen.values():
            check(target)
        script = rig.stack.log_dir / "wrk-post.lua"
        levels = []
        for count in connections:
            level = HttpLevel(count)
            for number in range(2 * rounds):
                side = _PATTERN[number % len(_PATTERN)]
                target = chosen[side]
                run = load(target, count, seconds, script)
                level.runs[side].append(run)
                time.sleep(0.2)  # let the servers settle between runs
            levels.append(level)
        return HttpResult(tool=load_generator(), levels=levels)
    finally:
        host.stop()
