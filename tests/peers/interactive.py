"""An MCP server (mcp 2.x `MCPServer`) whose tools ask the client for things mid-call.

    python -m tests.peers.interactive --port N [--era modern|legacy]

`askName` elicits, `summarise` asks for sampling, `listMyRoots` asks for roots, `countdown`
reports progress and logs, `echo` just answers. With `--era legacy` it answers like a handshake-era
server (the devstack's era shim), so server-to-client requests travel on the call's SSE stream;
with `modern` they come back inside an `InputRequiredResult`. `stubborn` elicits and, when refused,
waits a minute: the bridge must not wait with it.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from devstack.scheduler_era import LegacyEraMiddleware
from devstack.serving import configure_logging, serve
from tests.peers.quirks import QUIRKS, QuirksMiddleware


class Name(BaseModel):
    name: str


def build(era: str, *, quirks: set[str] | None = None, stateless: bool = False, json_response: bool = False):
    server = MCPServer(name="interactive-peer", version="1.0.0")

    @server.tool(annotations={"readOnlyHint": True})
    async def echo(message: str) -> str:
        return f"echo: {message}"

    @server.tool()
    async def askName(ctx: Context) -> Any:
        if era == "modern":  # 2026-07-28: the question comes back as the call's result
            return types.InputRequiredResult(
                input_requests={
                    "name": types.ElicitRequest(
                        params=types.ElicitRequestFormParams(
                            message="Which name should the booking carry?",
                            requested_schema={"type": "object", "properties": {"name": {"type": "string"}}},
                        )
                    )
                }
            )
        result = await ctx.elicit("Which name should the booking carry?", Name)
        return f"action={result.action}"

    @server.tool()
    async def stubborn(ctx: Context) -> str:
        try:
            await ctx.elicit("Confirm the booking, please", Name)
        except Exception:
            await asyncio.sleep(60)
        return "never"

    @server.tool(annotations={"readOnlyHint": True})
    async def countdown(ctx: Context, steps: int = 3) -> str:
        for step in range(steps):
            await ctx.report_progress(step + 1, steps, f"step {step + 1}")
            await ctx.info(f"step {step + 1} of {steps}")
        return "done"

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=stateless, json_response=json_response
    )
    if era == "legacy":
        app.add_middleware(LegacyEraMiddleware, mcp_path="/mcp")
    if quirks:
        app.add_middleware(QuirksMiddleware, quirks=quirks)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--era", choices=["modern", "legacy"], default="modern")
    parser.add_argument("--quirks", default="", help="comma-separated: " + ", ".join(QUIRKS))
    parser.add_argument("--stateless", action="store_true", help="handshake era without session ids")
    parser.add_argument("--json-response", action="store_true", help="JSON answers instead of SSE")
    args = parser.parse_args()
    configure_logging()
    quirks = {q for q in args.quirks.split(",") if q}
    serve(
        build(args.era, quirks=quirks, stateless=args.stateless, json_response=args.json_response),
        port=args.port,
    )


if __name__ == "__main__":
    main()
