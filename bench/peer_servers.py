"""The peers of section 9: how each one is installed, configured and started as a new user would.

Each peer lives in a venv of its own under `.cache/bench-peers/NAME/`, installed from the compiled
lock `bench/peer_locks/NAME/requirements.txt` (`python -m bench.peers install`, run by `make
bench`; a stamp holding the lock's text makes a second install a no-op). Each stands in front of
the primary Scheduler with a static bearer token from the devstack identity endpoint, and answers
`getConversationStatus` over plain HTTP behind a key of its own.

- mcpo 0.0.20, the best-known MCP→OpenAPI proxy: `--server-type streamable-http`, the token in
  `--header`. It starts only with `mcp==1.30.0` and `fastapi==0.115.12` pinned beside it.
- LiteLLM's proxy (`litellm[proxy]`), an LLM gateway that also fronts MCP servers: the Scheduler is
  an `mcp_servers` entry of its config.yaml (`transport: http`, `auth_type: bearer_token`), called
  over its REST routes (`POST /mcp-rest/tools/call` with `server_id`, `name`, `arguments`). No
  database: only a master key, so no Prisma and no migrations. `LITELLM_LOCAL_MODEL_COST_MAP` keeps
  it from fetching its model price list from the internet at start. The token and the master key
  reach it as environment variables (`os.environ/...` in the config), never on disk.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import REPO_ROOT, ManagedProcess, free_port

from .http_load import Target
from .rig import Rig
from .stack import STATUS_TOOL

CACHE = REPO_ROOT / ".cache" / "bench-peers"
LOCKS = Path(__file__).resolve().parent / "peer_locks"
SCHEDULER_SERVER = "scheduler"
"""The name LiteLLM's config gives the Scheduler (its REST `server_id`)."""


@dataclass(frozen=True)
class Peer:
    name: str
    package: str
    version: str
    label: str
    start: Callable[[Rig], tuple[ManagedProcess, Target]]
    ready_seconds: float

    @property
    def folder(self) -> Path:
        return CACHE / self.name

    @property
    def lock(self) -> Path:
        return LOCKS / self.name / "requirements.txt"

    def executable(self, program: str) -> str:
        return str(self.folder / "venv" / "bin" / program)


def install(peer: Peer) -> None:
    """Create `.cache/bench-peers/NAME/venv` from the compiled lock unless it is already current."""
    stamp = peer.folder / ".installed"
    lock_text = peer.lock.read_text()
    if stamp.exists() and stamp.read_text() == lock_text:
        return
    uv = Path(sys.executable).parent / "uv"
    venv = peer.folder / "venv"
    peer.folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "sync", "--quiet", "--python", str(python), str(peer.lock)], check=True)  # noqa: S603
    probe = f"import importlib.metadata as m; print(m.version({peer.package!r}))"
    version = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    if version != peer.version:
        raise RuntimeError(f"installed {peer.package} {version}, pinned {peer.version}")
    stamp.write_text(lock_text)


def _run(process: ManagedProcess, ready_seconds: float) -> None:
    process.start()
    try:
        process.wait_ready(ready_seconds)
    except BaseException:
        process.stop()
        raise


def _json_target(url: str, key: str, body: object) -> Target:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return Target(url, headers, json.dumps(body).encode())


def start_mcpo(rig: Rig) -> tuple[ManagedProcess, Target]:
    """mcpo in front of the primary Scheduler; the tool is `POST /{tool}` with the arguments as body."""
    api_key = secrets.token_hex(16)
    header = json.dumps({"Authorization": f"Bearer {rig.token}"})
    port = free_port()
    process = ManagedProcess(
        name="mcpo",
        module="mcpo",
        command=[MCPO.executable("mcpo")],
        args=[
            *("--host", "127.0.0.1", "--port", str(port), "--api-key", api_key),
            *("--server-type", "streamable-http", "--header", header, "--", rig.stack.east.mcp_url),
        ],
        port=port,
        log_path=rig.stack.log_dir / "mcpo.log",
        ready_path="/openapi.json",
    )
    _run(process, MCPO.ready_seconds)
    return process, _json_target(f"{process.url}/{STATUS_TOOL}", api_key, rig.arguments)


_LITELLM_CONFIG = """\
# Written by bench/peer_servers.py: LiteLLM's proxy as an MCP gateway, no models, no database.
model_list: []
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
mcp_servers:
  {server}:
    url: {url}
    transport: http
    auth_type: bearer_token
    auth_value: os.environ/SCHEDULER_BEARER_TOKEN
"""


def litellm_config(scheduler_url: str) -> str:
    """The proxy's config.yaml: secrets only by environment variable name."""
    return _LITELLM_CONFIG.format(server=SCHEDULER_SERVER, url=scheduler_url)


def start_litellm(rig: Rig) -> tuple[ManagedProcess, Target]:
    """LiteLLM's proxy with the Scheduler as its one MCP server; the tool is `POST /mcp-rest/tools/call`."""
    master_key = "sk-" + secrets.token_hex(16)  # LiteLLM's keys start with sk-
    config = rig.stack.log_dir / "litellm-config.yaml"
    config.write_text(litellm_config(rig.stack.east.mcp_url))
    port = free_port()
    process = ManagedProcess(
        name="litellm",
        module="litellm",
        command=[LITELLM.executable("litellm")],
        args=["--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        log_path=rig.stack.log_dir / "litellm.log",
        ready_path="/health/liveliness",
        env={
            "LITELLM_MASTER_KEY": master_key,
            "SCHEDULER_BEARER_TOKEN": rig.token,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price list from the internet at start
        },
    )
    _run(process, LITELLM.ready_seconds)
    body = {"server_id": SCHEDULER_SERVER, "name": STATUS_TOOL, "arguments": rig.arguments}
    return process, _json_target(f"{process.url}/mcp-rest/tools/call", master_key, body)


MCPO = Peer("mcpo", "mcpo", "0.0.20", "mcpo 0.0.20 (with mcp 1.30.0, fastapi 0.115.12)", start_mcpo, 60)
LITELLM = Peer("litellm", "litellm", "1.108.7", "LiteLLM 1.108.7 (`litellm[proxy]`)", start_litellm, 120)
PEERS = (MCPO, LITELLM)
