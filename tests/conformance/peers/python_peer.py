"""A small MCP server built with one peer's own Python SDK, for the conformance matrix.

Runs inside that peer's venv (never the bridge's): `--sdk mcp` uses `mcp.server.fastmcp.FastMCP`
from the `mcp` 1.x package, `--sdk fastmcp` uses the `fastmcp` package's `FastMCP`. Both serve the
same four tools over Streamable HTTP on 127.0.0.1, so each cell of the matrix tests the SDK's own
session handling, validation and notifications, not code of ours.

Every tool run prints `TOOL <name>` to stdout (the peer's log), so a test can prove that a call
the bridge refused never reached the tool. `lookup` and `add` also print `RAN <name> <arguments>`,
so a chaos run (reliability/chaos.py) can count how often each distinct call ran.
"""

# No `from __future__ import annotations`: both SDKs read the tools' `Context` annotation at
# registration, and it is imported inside build().
import argparse
import asyncio
import sys
from typing import Any

import uvicorn
from pydantic import BaseModel

ELICIT_MESSAGE = "Please confirm the booking of"


class Confirmation(BaseModel):
    confirmed: bool


def _ran(name: str) -> None:
    print(f"TOOL {name}", flush=True)


def build(sdk: str, idle_timeout: float | None) -> Any:
    if sdk == "fastmcp":
        from fastmcp import Context, FastMCP
        from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        server = FastMCP("conformance-peer")
        read_only: dict = {"annotations": {"readOnlyHint": True}}
        elicit_kwargs = {"response_type": Confirmation}
    else:
        from mcp.server.fastmcp import Context, FastMCP
        from mcp.types import ToolAnnotations

        settings = {} if idle_timeout is None else {"session_idle_timeout": idle_timeout}
        server = FastMCP("conformance-peer", **settings)
        read_only = {"annotations": ToolAnnotations(readOnlyHint=True)}
        elicit_kwargs = {"schema": Confirmation}

    @server.tool(**read_only)
    def lookup(key: str) -> str:
        """Read-only: the value stored under `key`."""
        _ran("lookup")
        print(f"RAN lookup {key}", flush=True)
        return f"value-of-{key}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Has an input schema: two integers."""
        _ran("add")
        print(f"RAN add {a} {b}", flush=True)
        return a + b

    @server.tool()
    async def confirm(item: str, ctx: Context):  # a str, or (fastmcp, 2026-07-28) an InputRequiredResult
        """Asks the client to confirm (elicitation) before answering."""
        _ran("confirm")
        message = f"{ELICIT_MESSAGE} {item}?"
        if sdk == "fastmcp" and ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS:
            # 2026-07-28 has no server-to-client requests: fastmcp's way to ask is to return an
            # InputRequiredResult and read the answer from the client's retry (SEP-2322).
            answers = ctx.input_responses
            if not answers:
                schema = Confirmation.model_json_schema()
                params = ElicitRequestFormParams(message=message, requested_schema=schema)
                return InputRequiredResult(input_requests={"confirm": ElicitRequest(params=params)})
            return f"{item}: {answers['confirm'].action}"
        answer = await ctx.elicit(message, **elicit_kwargs)
        return f"{item}: {answer.action}"

    @server.tool(**read_only)
    async def count(n: int, ctx: Context) -> str:
        """Counts to `n`, reporting progress (when the client sent a token) and a log line per step."""
        _ran("count")
        meta = ctx.request_context.meta  # an object in mcp 1.x, a dict in mcp 2.x (fastmcp)
        token = meta.get("progressToken") if isinstance(meta, dict) else getattr(meta, "progressToken", None)
        print(f"PROGRESS_TOKEN {'yes' if token is not None else 'no'}", flush=True)
        for step in range(1, n + 1):
            await ctx.report_progress(step, n, f"step {step} of {n}")
            await ctx.info(f"step {step} of {n}")
            await asyncio.sleep(0.02)
        return f"counted to {n}"

    if sdk == "fastmcp":
        return server.http_app(path="/mcp", session_idle_timeout=idle_timeout)
    return server.streamable_http_app()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sdk", choices=["mcp", "fastmcp"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, default=None)
    args = parser.parse_args()
    app = build(args.sdk, args.idle_timeout)
    print(f"python peer ({args.sdk}) on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    # A short graceful shutdown: an open GET event stream would otherwise hold a restart up.
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="info", access_log=True, timeout_graceful_shutdown=1
    )


if __name__ == "__main__":
    main()
