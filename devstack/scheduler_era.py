"""Make the Scheduler answer like a 2025 handshake-era server (`--era legacy`).

The mcp 2.x server speaks both protocol eras and routes on the
`MCP-Protocol-Version` header. A Scheduler region that has not been upgraded
only knows the `initialize` handshake: the modern client's `server/discover`
probe (sent without a session, carrying a 2026 version header) gets what a
2025 stateful server answers a session-less non-initialize POST with, a 400
JSON-RPC error "Missing session ID". The client's `mode="auto"` negotiation
treats that JSON-RPC error as "legacy server" and falls back to `initialize`.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from devstack.scheduler_observer import is_mcp_path, jsonrpc_summary

_LOGGER = logging.getLogger(__name__)

ProtocolEra = Literal["modern", "legacy"]

_INVALID_REQUEST = -32600


class LegacyEraMiddleware:
    """Refuses requests that declare a non-handshake protocol version, as a 2025 server would."""

    def __init__(self, app: ASGIApp, *, mcp_path: str) -> None:
        self._app = app
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_mcp_path(scope, self._mcp_path):
            await self._app(scope, receive, send)
            return
        version = Headers(scope=scope).get("mcp-protocol-version")
        if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
            await self._app(scope, receive, send)
            return
        summary = jsonrpc_summary(scope)
        _LOGGER.info(
            "legacy era: refusing %s with MCP-Protocol-Version %r",
            summary.method if summary else None,
            version,
        )
        payload = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": summary.request_id if summary else None,
                "error": {"code": _INVALID_REQUEST, "message": "Bad Request: Missing session ID"},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
