"""A regional front end that stays up when the app behind it dies (Front Door, Application
Gateway, an ingress): the failure mode that a dead upstream process alone never shows.

    python -m devstack.front_end --port N --backend http://127.0.0.1:M [--dead-answer 502]

It forwards every request to `--backend` and streams the answer back, SSE included. When the
backend refuses the connection it answers what a real front end does: `502`, `503` or `504`, or it
resets the connection mid-answer (`reset`). `GET /_frontend/counters` says how many requests arrived
and how many reached the backend; `POST /_frontend/config` changes the answer (`dead_answer`) or
points the front end at another backend (`backend`: a port where nothing listens is an app that
died, without killing anything).
"""

from __future__ import annotations

import argparse
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import httpx2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from devstack.serving import configure_logging, serve

_LOGGER = logging.getLogger(__name__)

DeadAnswer = Literal["502", "503", "504", "reset"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host"}


@dataclass
class FrontEndState:
    backend: str = ""
    dead_answer: DeadAnswer = "502"
    received: int = 0
    forwarded: int = 0
    refused: int = 0


class _Reset(Response):
    """Starts a 200 answer and closes the connection before its body: a reset mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"jsonrpc":', "more_body": True})


def build_app(backend: str, state: FrontEndState | None = None) -> Starlette:
    state = state or FrontEndState()
    state.backend = backend
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(60.0, connect=2.0))

    async def forward(request: Request) -> Response:
        state.received += 1
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        upstream = client.build_request(
            request.method, state.backend + request.url.path, params=request.query_params, headers=headers,
            content=await request.body(),
        )  # fmt: skip
        try:
            answer = await client.send(upstream, stream=True)
        except httpx2.ConnectError:
            state.refused += 1
            if state.dead_answer == "reset":
                return _Reset()
            status = int(state.dead_answer)
            return Response(f"front end: no healthy backend ({status})\n", status_code=status)
        state.forwarded += 1
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=kept,
            background=BackgroundTask(answer.aclose),
        )

    async def counters(_request: Request) -> Response:
        return JSONResponse(
            {"received": state.received, "forwarded": state.forwarded, "refused": state.refused,
             "dead_answer": state.dead_answer, "backend": state.backend}
        )  # fmt: skip

    async def configure(request: Request) -> Response:
        body = await request.json()
        if "dead_answer" in body:
            if body["dead_answer"] not in get_args(DeadAnswer):
                return JSONResponse(
                    {"error": "dead_answer must be one of " + ", ".join(get_args(DeadAnswer))}, 400
                )
            state.dead_answer = body["dead_answer"]
        if "backend" in body:
            state.backend = str(body["backend"]).rstrip("/")
        if body.get("reset_counters"):
            state.received = state.forwarded = state.refused = 0
        return await counters(request)

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        await client.aclose()

    return Starlette(
        routes=[
            Route("/_frontend/counters", counters, methods=["GET"]),
            Route("/_frontend/config", configure, methods=["POST"]),
            Route("/{path:path}", forward, methods=["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.front_end", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--dead-answer", choices=get_args(DeadAnswer), default="502")
    args = parser.parse_args(argv)
    configure_logging()
    serve(build_app(args.backend, FrontEndState(dead_answer=args.dead_answer)), port=args.port)


if __name__ == "__main__":
    main()
