"""MCP Tasks on the wire, both eras: start a task, read it, fetch its result, cancel it.

mcp 2.3 has the task types (`mcp_types`) but no client for them, and its session refuses a
`CreateTaskResult` to a `tools/call` (the result surface has no task arm on 2025-11-25). So the
bridge sends these JSON-RPC requests itself, on the shared HTTP client (its auth flow, size cap
and failure classification apply, see `wire.ShieldedTransport`), addressed by a `TaskRoute`:

- **2025-11-25** (core tasks): the request goes *into the session that created the task*, by its
  `Mcp-Session-Id`: real servers (the TypeScript SDK's `InMemoryTaskStore`, server-everything,
  which even keeps one task store per session) treat a task as unknown to every other session.
  Any Function instance can send it: the session id is all the server checks.
  `tools/call` carries `task: {ttl}`; then `tasks/get`, `tasks/result` (once terminal: it blocks
  until then), `tasks/cancel`.
- **2026-07-28** (`io.modelcontextprotocol/tasks`, SEP-2663): stateless. The request opts in by
  naming the extension in its `_meta` client capabilities; `Mcp-Name` carries the task id so a
  load balancer can route it; `tasks/get` inlines the result, and there is no `tasks/result`.

Every function raises `TaskWireError` with a `kind` the operations layer maps to the status
monitor: `unreachable` (nothing reached the server: a region down), `lost` (the server no longer
knows the task or its session), `rpc` (a JSON-RPC error), `unknown` (the answer was lost on the way),
`timeout` (no answer within the time given), `input` (`tasks/result` with `stop_at_input`: the
server asked for input; its message is the error's text).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .wire import SESSION_HEADER, WireTrace, current_trace

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
MISSING_CAPABILITY = -32021
METHOD_NOT_FOUND = -32601
TASK_STATUSES = ("working", "input_required", "completed", "failed", "cancelled")
TERMINAL = frozenset({"completed", "failed", "cancelled"})

_ids = itertools.count(1)
_CLIENT_INFO = {"name": "scheduler-bridge", "version": "0.1.0"}

Kind = Literal["unreachable", "lost", "rpc", "unknown", "timeout", "input"]


class TaskWireError(Exception):
    def __init__(self, kind: Kind, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.data = data
        self.retry_after: float | None = None


@dataclass(frozen=True)
class TaskRoute:
    """Where a task lives: the endpoint, the protocol era and (handshake era) the session."""

    endpoint: str
    protocol_version: str
    session_id: str | None = None

    @property
    def modern(self) -> bool:
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS


@dataclass
class TaskSnapshot:
    """One reading of a task, as `tasks/get` (or the create answer) gave it."""

    task_id: str
    status: str
    status_message: str | None = None
    created_at: str | None = None
    last_updated_at: str | None = None
    poll_interval_ms: int | None = None
    ttl_ms: int | None = None
    result: dict[str, Any] | None = None
    """The tool's `CallToolResult` (inline on 2026-07-28; fetched with `tasks/result` on 2025-11-25)."""
    error: dict[str, Any] | None = None
    """The JSON-RPC error of a `failed` task."""
    input_requests: dict[str, Any] | None = None
    progress: dict[str, Any] | None = field(default=None)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TaskSnapshot:
        task = raw.get("task") if isinstance(raw.get("task"), dict) else raw  # 2025 wraps the create answer
        status = task.get("status")
        task_id = task.get("taskId")
        if not isinstance(task_id, str) or status not in TASK_STATUSES:
            raise TaskWireError("rpc", "the server's task answer has no valid taskId and status")
        poll = task.get("pollIntervalMs", task.get("pollInterval"))
        ttl = task.get("ttlMs", task.get("ttl"))
        return cls(
            task_id=task_id,
            status=status,
            status_message=_text(task.get("statusMessage")),
            created_at=_text(task.get("createdAt")),
            last_updated_at=_text(task.get("lastUpdatedAt")),
            poll_interval_ms=int(poll) if isinstance(poll, int | float) and poll > 0 else None,
            ttl_ms=int(ttl) if isinstance(ttl, int | float) else None,
            result=task.get("result") if isinstance(task.get("result"), dict) else None,
            error=task.get("error") if isinstance(task.get("error"), dict) else None,
            input_requests=task.get("inputRequests") if isinstance(task.get("inputRequests"), dict) else None,
        )


def _text(value: Any) -> str | None:
    return value[:1000] if isinstance(value, str) else None


OnMessage = Callable[[dict[str, Any]], Awaitable[None]]


async def start(
    http: httpx2.AsyncClient,
    route: TaskRoute,
    name: str,
    arguments: dict[str, Any],
    *,
    ttl_ms: int,
    within: float,
    progress_token: str | None = None,
) -> TaskSnapshot | dict[str, Any]:
    """`tools/call` as a task: the created task, or the plain `CallToolResult` of a server that
    answered at once (2026-07-28 servers decide per request)."""
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    if not route.modern:
        params["task"] = {"ttl": ttl_ms}
    raw = await request(http, route, "tools/call", params, routing_name=name, within=within)
    if raw.get("resultType") == "task" or isinstance(raw.get("task"), dict):
        return TaskSnapshot.parse(raw)
    return raw


async def get(http: httpx2.AsyncClient, route: TaskRoute, task_id: str, *, within: float) -> TaskSnapshot:
    raw = await request(http, route, "tasks/get", {"taskId": task_id}, routing_name=task_id, within=within)
    snapshot = TaskSnapshot.parse(raw)
    if snapshot.task_id != task_id:
        raise TaskWireError("rpc", "the server answered tasks/get for another task")
    return snapshot


async def result(
    http: httpx2.AsyncClient, route: TaskRoute, task_id: str, *, within: float, stop_at_input: bool = False
) -> dict[str, Any]:
    """The task's `CallToolResult` (2025-11-25 `tasks/result`). It blocks until the task has ended,
    so it is either asked once `tasks/get` says so, or used to wait (`within`) for the end. A request
    for input on its stream is refused, or with `stop_at_input` left unanswered (the task keeps
    waiting for it) and raised as `input` with the server's message."""
    return await request(
        http, route, "tasks/result", {"taskId": task_id}, routing_name=task_id, within=within,
        stop_at_input=stop_at_input,
    )  # fmt: skip


async def cancel(
    http: httpx2.AsyncClient, route: TaskRoute, task_id: str, *, within: float
) -> TaskSnapshot | None:
    """Ask the server to cancel; the task as it then is (2025-11-25), or None (a bare 2026 ack)."""
    raw = await request(http, route, "tasks/cancel", {"taskId": task_id}, routing_name=task_id, within=within)
    try:
        return TaskSnapshot.parse(raw)
    except TaskWireError:
        return None


async def request(
    http: httpx2.AsyncClient,
    route: TaskRoute,
    method: str,
    params: dict[str, Any],
    *,
    routing_name: str,
    within: float,
    stop_at_input: bool = False,
) -> dict[str, Any]:
    """Send one JSON-RPC request on `route` and return its result, from a JSON or SSE answer."""
    request_id = f"bridge-task-{next(_ids)}"
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": route.protocol_version,
    }
    if route.session_id:
        headers[SESSION_HEADER] = route.session_id
    if route.modern:
        params = {**params, "_meta": _modern_meta(params.get("_meta"), route.protocol_version)}
        headers["mcp-method"] = method
        headers["mcp-name"] = routing_name
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
    trace = WireTrace()
    token = current_trace.set(trace)
    try:
        try:
            async with (
                asyncio.timeout(within),  # the whole answer, not only the gap between two reads
                http.stream(
                    "POST", route.endpoint, content=body, headers=headers, timeout=within
                ) as response,
            ):
                status = response.status_code
                if trace.session_lost:
                    raise TaskWireError("lost", "the server no longer knows the session that holds the task")
                if status >= 400 or trace.failure is not None:
                    raise _http_failure(trace, status)
                kind = response.headers.get("content-type", "").lower()
                if kind.startswith("text/event-stream"):
                    message = await _from_events(http, route, response, request_id, stop_at_input)
                else:
                    message = json.loads(await response.aread())
        except (httpx2.TimeoutException, TimeoutError):
            raise TaskWireError("timeout", f"{method} got no answer within {within:g} s") from None
        except (httpx2.HTTPError, ValueError) as exc:
            raise _http_failure(trace, None) from exc
    finally:
        current_trace.reset(token)
    return _unwrap(message, method)


def _modern_meta(meta: Any, version: str) -> dict[str, Any]:
    stamped = dict(meta) if isinstance(meta, dict) else {}
    stamped["io.modelcontextprotocol/protocolVersion"] = version
    stamped["io.modelcontextprotocol/clientInfo"] = _CLIENT_INFO
    stamped["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {TASKS_EXTENSION: {}}}
    return stamped


def _http_failure(trace: WireTrace, status: int | None) -> TaskWireError:
    if trace.never_sent:
        error = TaskWireError("unreachable", f"the server could not be reached ({trace.failure})")
    elif status is not None and status not in (599,):
        error = TaskWireError("rpc" if status < 500 else "unreachable", f"the server answered HTTP {status}")
    else:
        error = TaskWireError("unknown", f"the answer was lost on the way ({trace.failure or 'broken body'})")
    error.retry_after = trace.retry_after
    return error


async def _from_events(
    http: httpx2.AsyncClient,
    route: TaskRoute,
    response: httpx2.Response,
    request_id: str,
    stop_at_input: bool,
) -> dict[str, Any]:
    """Read an SSE answer until the response to `request_id`. A request from the server on this
    stream (input for the task) is refused at once: the bridge has no user to ask."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
            continue
        if line or not data:
            continue
        text, data = "\n".join(data).strip(), []
        if not text:  # a priming event (an event id for resumption, no message)
            continue
        message = json.loads(text)
        if not isinstance(message, dict):
            continue
        if message.get("id") == request_id and ("result" in message or "error" in message):
            return message
        if "method" in message and "id" in message:
            if stop_at_input:
                raise TaskWireError("input", _asked(message))
            await _refuse(http, route, message)
    raise TaskWireError("unknown", "the server's event stream ended without an answer")


def _asked(message: dict[str, Any]) -> str:
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    if message.get("method") == "sampling/createMessage":
        return "the server asked the client for an LLM completion (sampling)"
    return str(params.get("message") or f"the server asked for input ({message.get('method')})")[:1000]


async def _refuse(http: httpx2.AsyncClient, route: TaskRoute, message: dict[str, Any]) -> None:
    headers = {"content-type": "application/json", "mcp-protocol-version": route.protocol_version}
    if route.session_id:
        headers[SESSION_HEADER] = route.session_id
    refusal = {
        "jsonrpc": "2.0",
        "id": message["id"],
        "error": {"code": -32600, "message": "scheduler-bridge bridges HTTP and has no user to ask"},
    }
    try:
        await http.post(route.endpoint, content=json.dumps(refusal).encode(), headers=headers, timeout=5.0)
    except httpx2.HTTPError:
        pass


def _unwrap(message: Any, method: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise TaskWireError("rpc", f"the server's answer to {method} is not a JSON-RPC message")
    error = message.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        text = str(error.get("message", ""))[:500]
        lowered = text.lower()
        forgotten = "task" in lowered and ("not found" in lowered or "expired" in lowered)
        if method.startswith("tasks/") and code != METHOD_NOT_FOUND and forgotten:
            raise TaskWireError("lost", f"the server does not know the task: {text}", code=code)
        raise TaskWireError("rpc", text or f"{method} failed", code=code, data=error.get("data"))
    result = message.get("result")
    if not isinstance(result, dict):
        raise TaskWireError("rpc", f"the server's answer to {method} has no result")
    return result
