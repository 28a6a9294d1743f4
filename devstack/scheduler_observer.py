"""Outermost middleware on the Scheduler's MCP path: count, summarise and log every request.

It reads the JSON-RPC body once and leaves a summary in the ASGI scope under
`JSONRPC_SCOPE_KEY` for the fault and era middleware inside it, so none of
them has to parse the body again. It logs which credential *kind* a request
carried, never a credential value: Authorization and X-API-Key stay out of
every log line.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devstack.asgi_body import JsonRpcSummary, read_body, replaying_receive, summarize_jsonrpc
from devstack.scheduler_counters import SchedulerCounters

_LOGGER = logging.getLogger(__name__)

JSONRPC_SCOPE_KEY = "devstack.jsonrpc"
"""Scope key holding the `JsonRpcSummary` of a POST on the MCP path."""

_SESSION_HEADER = b"mcp-session-id"


def is_mcp_path(scope: Scope, mcp_path: str) -> bool:
    """True for HTTP requests to the MCP endpoint (with or without a trailing slash)."""
    return scope["type"] == "http" and scope["path"].rstrip("/") == mcp_path.rstrip("/")


def jsonrpc_summary(scope: Scope) -> JsonRpcSummary | None:
    """The summary the observer stored for this request, if it was a POST on the MCP path."""
    summary = scope.get(JSONRPC_SCOPE_KEY)
    return summary if isinstance(summary, JsonRpcSummary) else None


class SchedulerObserverMiddleware:
    """Counts MCP requests and new sessions, and logs one line per MCP request."""

    def __init__(self, app: ASGIApp, *, counters: SchedulerCounters, mcp_path: str) -> None:
        self._app = app
        self._counters = counters
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_mcp_path(scope, self._mcp_path):
            await self._app(scope, receive, send)
            return
        self._counters.mcp_requests += 1
        headers = Headers(scope=scope)
        had_session = "mcp-session-id" in headers
        summary: JsonRpcSummary | None = None
        if scope["method"] == "POST":
            body, disconnected = await read_body(receive)
            summary = summarize_jsonrpc(body)
            scope[JSONRPC_SCOPE_KEY] = summary
            if not disconnected:
                receive = replaying_receive(body, receive)
        status: int | None = None
        started = time.monotonic()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if not had_session and status < 400 and _has_session_header(message):
                    self._counters.sessions_created += 1
            await send(message)

        try:
            await self._app(scope, receive, observe)
        finally:
            _LOGGER.info(
                "%s %s -> %s in %.0f ms (rpc=%s tool=%s auth=%s session=%s)",
                scope["method"],
                scope["path"],
                status if status is not None else "no response",
                (time.monotonic() - started) * 1000,
                summary.method if summary else None,
                summary.tool_name if summary else None,
                _credential_kind(headers),
                "yes" if had_session else "no",
            )


def _has_session_header(message: Message) -> bool:
    return any(name.lower() == _SESSION_HEADER for name, _ in message.get("headers", []))


def _credential_kind(headers: Headers) -> str:
    """Names the credential kind only; the values are secrets and never logged."""
    kinds = []
    authorization = headers.get("authorization")
    if authorization:
        kinds.append(authorization.split(" ", 1)[0].lower() or "authorization")
    if "x-api-key" in headers:
        kinds.append("api-key")
    return "+".join(kinds) or "none"
