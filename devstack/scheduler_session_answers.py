"""How the Scheduler stand-in answers a request on a session it does not know.

The SDK's server answers the spec's 404. Real servers written by other teams answer in other ways
(observed, or read in their source), and the bridge must recognise each as a lost session. Tests
switch the style at run time with `POST /_devstack/session-answer {"style": ...}`; the middleware
rewrites the SDK's 404 to a request that carried an `Mcp-Session-Id` into that style.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SessionAnswerStyle = Literal[
    "spec-404",  # mcp (Python) 1.26+ and 2.x: 404, JSON-RPC -32600 "Session not found" (unchanged)
    "typescript-400",  # server-everything, TypeScript SDK examples <= 1.31: 400, -32000, no id
    "python-text-400",  # mcp (Python) <= 1.25: 400 text/plain
    "gateway-400",  # gateways that keep state in the session id: 400 "Invalid client state"
    "go-404",  # Go SDK: 404 text/plain "session not found"
    "java-404",  # Java SDK: 404 with a JSON body that is not a JSON-RPC envelope
    "empty-404",  # a bare 404 with no body at all
]

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"

_ANSWERS: dict[str, tuple[int, bytes, bytes]] = {
    "typescript-400": (
        400,
        _JSON,
        json.dumps(
            {
                "jsonrpc": "2.0",
                "error": {"code": -32000, "message": "Bad Request: No valid session ID provided"},
                "id": None,
            }
        ).encode(),
    ),
    "python-text-400": (400, _TEXT, b"Bad Request: No valid session ID provided"),
    "gateway-400": (400, _TEXT, b"Invalid client state"),
    "go-404": (404, _TEXT, b"session not found\n"),
    "java-404": (404, _JSON, b'{"message":"Session not found","status":404}'),
    "empty-404": (404, _TEXT, b""),
}


@dataclass
class SessionAnswer:
    style: SessionAnswerStyle = "spec-404"


class SessionAnswerMiddleware:
    """Rewrites the SDK's unknown-session 404 into the configured style."""

    def __init__(self, app: ASGIApp, *, answer: SessionAnswer, mcp_path: str) -> None:
        self._app = app
        self._answer = answer
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        style = self._answer.style
        carries_session = scope["type"] == "http" and any(
            name == b"mcp-session-id" for name, _ in scope.get("headers", [])
        )
        if style == "spec-404" or not carries_session or scope["path"].rstrip("/") != self._mcp_path:
            await self._app(scope, receive, send)
            return
        rewriting = False

        async def rewrite(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 404:
                rewriting = True
                status, content_type, body = _ANSWERS[style]
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            if not rewriting:
                await send(message)

        await self._app(scope, receive, rewrite)
