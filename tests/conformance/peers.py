"""The third-party MCP servers of the conformance matrix: what each is, how to run it, which tools.

Every peer is pinned in `peers/locks/<name>/` (an npm lockfile or a fully compiled requirements
file) and installed by `python -m tests.conformance.install` into `.cache/conformance/<name>/`.
Each runs as a real process on 127.0.0.1, started through `devstack.processes.ManagedProcess` so
tests can kill and restart it like the devstack's own stand-ins.

`unknown_session` records how the peer answers a request carrying an `Mcp-Session-Id` it does not
know, verified against the installed code and on the wire (docs/conformance.md).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devstack.processes import REPO_ROOT, ManagedProcess, free_port

HERE = Path(__file__).resolve().parent
PEER_FILES = HERE / "peers"
LOCKS = PEER_FILES / "locks"
CACHE = REPO_ROOT / ".cache" / "conformance"
LOOPBACK_PRELOAD = PEER_FILES / "loopback.cjs"
PYTHON_PEER = PEER_FILES / "python_peer.py"
NODE_PEER = PEER_FILES / "node_peer.mjs"

IDLE_TIMEOUT_SECONDS = 1.0
"""The idle-expiry scenario's session timeout, for the peers that can be given one."""

READY_STATUSES = tuple(range(200, 500))
"""A peer is up once `GET /mcp` gets any HTTP answer: without a session most refuse the GET."""

_SDK_EXAMPLE = "node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js"
_EVERYTHING = "node_modules/@modelcontextprotocol/server-everything/dist/index.js"


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Peer:
    name: str
    kind: Literal["npm", "python"]
    package: str
    version: str
    unknown_session: str
    read_only: ToolCall
    """A tool annotated readOnlyHint: the one failover may move between regions."""
    with_schema: ToolCall
    invalid_arguments: dict[str, Any]
    """Arguments that break `with_schema`'s input schema."""
    posts: str
    """A line the peer itself logs once per POST it receives: the proof that a call never arrived."""
    elicit: ToolCall | None = None
    elicit_message: str | None = None
    progress: ToolCall | None = None
    progress_server: bool = False
    """The progress tool runs in a second process of the same SDK (`peers/node_peer.mjs`)."""
    idle_timeout: bool = False
    """Whether the peer can be told to expire idle sessions (the idle-expiry scenario)."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Scenario → why this peer cannot take part (shown as n/a in the matrix)."""
    absent_tools: tuple[str, ...] = ()
    """Tools the peer offers only to clients with capabilities the bridge does not declare."""
    ran_marker: str | None = None
    """A line printed once per tool run (our own peer scripts), for `ran()`."""
    task: ToolCall | None = None
    """A tool with `taskSupport: required` that succeeds (the tasks scenario)."""
    task_asking: ToolCall | None = None
    """A task tool that asks the client for input (elicitation) while it runs."""

    @property
    def folder(self) -> Path:
        return CACHE / self.name

    @property
    def label(self) -> str:
        return f"{self.name} ({self.package} {self.version})"

    def command(
        self, role: Literal["server", "progress"], port: int, *, idle_timeout: float | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that start this peer (or its progress server) on `port`."""
        if self.kind == "python":
            sdk = "fastmcp" if self.package == "fastmcp" else "mcp"
            argv = [str(self.folder / "venv" / "bin" / "python"), str(PYTHON_PEER), "--sdk", sdk]
            argv += ["--port", str(port)]
            if idle_timeout is not None:
                argv += ["--idle-timeout", str(idle_timeout)]
            return argv, {}
        node = shutil.which("node") or "node"
        preload = ["-r", str(LOOPBACK_PRELOAD)]
        if role == "progress":
            # Copied beside the peer's node_modules so its imports resolve to this peer's SDK.
            script = self.folder / NODE_PEER.name
            shutil.copyfile(NODE_PEER, script)
            return [node, *preload, str(script)], {"MCP_PORT": str(port)}
        if self.package == "@modelcontextprotocol/server-everything":
            return [node, *preload, str(self.folder / _EVERYTHING), "streamableHttp"], {"PORT": str(port)}
        return [node, *preload, str(self.folder / _SDK_EXAMPLE)], {"MCP_PORT": str(port)}

    def process(
        self,
        log_dir: Path,
        *,
        role: Literal["server", "progress"] = "server",
        region: str = "a",
        idle_timeout: float | None = None,
    ) -> ManagedProcess:
        """A not yet started process of this peer on a free port of 127.0.0.1."""
        port = free_port()
        argv, env = self.command(role, port, idle_timeout=idle_timeout)
        return ManagedProcess(
            name=f"{self.name}-{role}-{region}",
            module=self.name,
            command=argv,
            args=[],
            port=port,
            log_path=log_dir / f"{self.name}-{role}-{region}.log",
            ready_path="/mcp",
            ready_statuses=READY_STATUSES,
            # Python peers cache their bytecode (the venv is installed without it); Node needs nothing.
            env={**env, "NODE_ENV": "production", "PYTHONDONTWRITEBYTECODE": ""},
            cwd=self.folder,
        )


def mcp_url(process: ManagedProcess) -> str:
    return f"{process.url}/mcp"


def log_count(process: ManagedProcess, pattern: str) -> int:
    """How many lines of the process's log (across restarts) contain `pattern`."""
    try:
        text = process.log_path.read_text(errors="replace")
    except OSError:
        return 0
    return len(re.findall(re.escape(pattern), text))


_PY_TOOLS = {
    "read_only": ToolCall("lookup", {"key": "k1"}),
    "with_schema": ToolCall("add", {"a": 2, "b": 3}),
    "invalid_arguments": {"a": "two", "b": 3},
    "posts": '"POST /mcp HTTP/1.1"',
    "elicit": ToolCall("confirm", {"item": "room 4"}),
    "elicit_message": "Please confirm the booking of room 4?",
    "progress": ToolCall("count", {"n": 5}),
    "ran_marker": "TOOL ",
}
_SDK_EXAMPLE_TOOLS = {
    "read_only": ToolCall("multi-greet", {"name": "conformance"}),
    "with_schema": ToolCall("greet", {"name": "conformance"}),
    "invalid_arguments": {"name": 42},
    "posts": "Received MCP request for session",
    "elicit": ToolCall("collect-user-info", {"infoType": "contact"}),
    "elicit_message": "Please provide your contact information",
    "progress": ToolCall("count", {"n": 5}),
    "progress_server": True,
}
_NO_IDLE = "no idle expiry can be configured"
_NO_TASKS = "the peer script registers no task tool (mcp 1.x and fastmcp serve tasks only through APIs it does not use)"
_SDK_TASKS = {
    "task": ToolCall("delay", {"duration": 1500}),
    "task_asking": ToolCall("collect-user-info-task", {"infoType": "contact"}),
}

PEERS: tuple[Peer, ...] = (
    Peer(
        name="server-everything",
        kind="npm",
        package="@modelcontextprotocol/server-everything",
        version="2026.8.31",
        unknown_session='400, JSON-RPC -32000 "Bad Request: No valid session ID provided", no id',
        read_only=ToolCall("echo", {"message": "conformance"}),
        with_schema=ToolCall("get-sum", {"a": 2, "b": 3}),
        invalid_arguments={"a": "two", "b": 3},
        posts="Received MCP POST request",
        progress=ToolCall("trigger-long-running-operation", {"duration": 0.5, "steps": 5}),
        task=ToolCall("simulate-research-query", {"topic": "conformance"}),
        not_applicable={
            "idle expiry": f"{_NO_IDLE}: it keeps sessions until DELETE or exit",
            "server requests": "registers its eliciting and sampling tools only for clients that declare "
            "the capability; the bridge declares none (basic calls checks they are absent)",
        },
        absent_tools=("trigger-elicitation-request", "trigger-sampling-request"),
    ),
    Peer(
        name="ts-sdk-1.31",
        kind="npm",
        package="@modelcontextprotocol/sdk",
        version="1.31.0",
        unknown_session='400, JSON-RPC -32000 "Bad Request: No valid session ID provided", id null',
        not_applicable={"idle expiry": f"{_NO_IDLE}: the example keeps sessions until DELETE or exit"},
        **_SDK_EXAMPLE_TOOLS,
        **_SDK_TASKS,
    ),
    Peer(
        name="ts-sdk-1.32",
        kind="npm",
        package="@modelcontextprotocol/sdk",
        version="1.32.2",
        unknown_session='404, JSON-RPC -32001 "Session not found", id null',
        not_applicable={"idle expiry": f"{_NO_IDLE}: the example's IDLE_MS is a constant (30 min)"},
        **_SDK_EXAMPLE_TOOLS,
        **_SDK_TASKS,
    ),
    Peer(
        name="mcp-1.25",
        kind="python",
        package="mcp",
        version="1.25.0",
        unknown_session='400, text/plain (no content type) "Bad Request: No valid session ID provided"',
        not_applicable={
            "idle expiry": f"{_NO_IDLE}: its session manager has no idle timeout",
            "tasks": _NO_TASKS,
        },
        **_PY_TOOLS,
    ),
    Peer(
        name="mcp-1.30",
        kind="python",
        package="mcp",
        version="1.30.0",
        unknown_session='404, JSON-RPC -32600 "Session not found", id "server-error"',
        idle_timeout=True,
        not_applicable={"tasks": _NO_TASKS},
        **_PY_TOOLS,
    ),
    Peer(
        name="fastmcp-4.2",
        kind="python",
        package="fastmcp",
        version="4.2.3",
        unknown_session='404, JSON-RPC -32600 "Session not found", id null (mcp 2.3.0 underneath)',
        idle_timeout=True,
        not_applicable={"tasks": _NO_TASKS},
        **_PY_TOOLS,
    ),
)

SCENARIOS = (
    "basic calls",
    "restart",
    "idle expiry",
    "failover",
    "front end",
    "server requests",
    "progress",
    "tasks",
)


RUN_ORDER = (
    "basic calls",
    "restart",
    "idle expiry",
    "failover",
    "server requests",
    "progress",
    "tasks",
    "front end",
)
"""The order a peer's scenarios run in: the front end leaves the first region dead, so it goes last."""


def peers_for(scenario: str) -> list[Peer]:
    """The peers that take part in `scenario` (the others show n/a with their reason)."""
    return [peer for peer in PEERS if scenario not in peer.not_applicable]
