"""Wire habits of real MCP servers that are legal, or at least common, and must never surface as
errors through the bridge. An ASGI middleware around a peer, switched on by name:

- `get-405`: the standalone GET stream is not offered (405);
- `delete-fails`: closing a session with DELETE answers 500;
- `odd-202`: a notification's 202 carries `text/html` and a body;
- `sse-priming`: every event stream opens with a priming event (an id, empty data);
- `no-event-ids`: events carry no `id:` lines.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

QUIRKS = ("get-405", "delete-fails", "odd-202", "sse-priming", "no-event-ids")


class QuirksMiddleware:
    def __init__(self, app: ASGIApp, *, quirks: set[str]) -> None:
        self._app = app
        self._quirks = quirks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/mcp"):
            await self._app(scope, receive, send)
            return
        method = scope["method"]
        if method == "GET" and "get-405" in self._quirks:
            await _plain(send, 405, b"Method Not Allowed")
            return
        if method == "DELETE" and "delete-fails" in self._quirks:
            await _plain(send, 500, b"could not close the session")
            return
        event_stream = False

        async def rewrite(message: Message) -> None:
            nonlocal event_stream
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                event_stream = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                if message["status"] == 202 and "odd-202" in self._quirks:
                    await send({"type": "http.response.start", "status": 202,
                                "headers": [(b"content-type", b"text/html; charset=utf-8")]})  # fmt: skip
                    await send({"type": "http.response.body", "body": b"<p>Accepted</p>"})
                    event_stream = None  # type: ignore[assignment]  # swallow the app's own body
                    return
                await send(message)
                if event_stream and "sse-priming" in self._quirks:
                    await send(
                        {"type": "http.response.body", "body": b"id: prime-0\ndata: \n\n", "more_body": True}
                    )
                return
            if event_stream is None:
                return
            if message["type"] == "http.response.body" and event_stream and "no-event-ids" in self._quirks:
                body = b"".join(line for line in message.get("body", b"").splitlines(keepends=True)
                                if not line.startswith(b"id:"))  # fmt: skip
                message = {**message, "body": body}
            await send(message)

        await self._app(scope, receive, rewrite)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})
