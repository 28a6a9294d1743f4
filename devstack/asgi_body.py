"""Read an HTTP request body in ASGI middleware and hand it on unchanged.

Middleware that must look at a JSON-RPC body (which method? which tool?)
consumes the body from `receive`; the wrapped MCP app still needs to read it,
and after that still needs the *real* `receive` so it notices when the
client disconnects mid-stream. `replaying_receive` gives both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Receive


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """Return (body, client_disconnected) after draining every `http.request` chunk."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def replaying_receive(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields `body` once, then defers to the original (for disconnect notices)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


@dataclass(frozen=True)
class JsonRpcSummary:
    """What a middleware needs to know about a JSON-RPC POST body, without the arguments."""

    method: str | None
    request_id: Any
    tool_name: str | None


def summarize_jsonrpc(body: bytes) -> JsonRpcSummary:
    """Best-effort parse: a batch, a non-object, or invalid JSON yields all-None."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JsonRpcSummary(method=None, request_id=None, tool_name=None)
    if not isinstance(message, dict):
        return JsonRpcSummary(method=None, request_id=None, tool_name=None)
    method = message.get("method") if isinstance(message.get("method"), str) else None
    params = message.get("params")
    tool_name = None
    if method == "tools/call" and isinstance(params, dict) and isinstance(params.get("name"), str):
        tool_name = params["name"]
    request_id = message.get("id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    return JsonRpcSummary(method=method, request_id=request_id, tool_name=tool_name)
