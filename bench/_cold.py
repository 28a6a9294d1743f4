"""Run in a fresh interpreter by `bench.cold_start`; prints one JSON line. Imports nothing of its own
beyond the standard library before it starts timing, so the numbers are the app's alone.

    python -m bench._cold import MODULE [MODULE ...]  # time to import them
    python -m bench._cold first ARGUMENTS_JSON        # import function_app, then two requests
    python -m bench._cold warm ARGUMENTS_JSON         # the same after the warm-up function ran
    python -m bench._cold deferred                    # import function_app, then what requests import
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time

TOOL = "getConversationStatus"
DEFERRED = (
    "mcp_bridge.config.loader",
    "mcp_bridge.runtime",
    "mcp_bridge.calls.bridge",
    "mcp_bridge.functions.tool_handlers",
    "azure.identity.aio",
)
"""What the first request imports (`tools_api.handlers()`, mcp_bridge/functions/tool_handlers.py, and
runtime.build_credential)."""


def _timed_import(modules: list[str] | tuple[str, ...]) -> float:
    started = time.perf_counter()
    for module in modules:
        importlib.import_module(module)
    return (time.perf_counter() - started) * 1000


def _first(arguments: dict[str, str], *, warm: bool = False) -> dict[str, float]:
    import_ms = _timed_import(["function_app"])
    import azure.functions as func
    from azure.functions.warmup import WarmUpContext

    import function_app

    # Once: get_functions() registers the blueprints' functions again on every call.
    functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
    handler = functions["call_tool"]

    async def call() -> None:
        request = func.HttpRequest(
            method="POST",
            url=f"http://127.0.0.1:7071/api/tools/{TOOL}",
            headers={"content-type": "application/json"},
            params={},
            route_params={"tool_name": TOOL},
            body=json.dumps(arguments).encode(),
        )
        response = await handler(request)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.get_body()[:300]!r}")

    async def warm_up() -> float:
        began = time.perf_counter()
        await functions["warmup"](WarmUpContext())
        return (time.perf_counter() - began) * 1000

    async def two_calls() -> tuple[float, float, float]:
        warmup_ms = await warm_up() if warm else 0.0
        began = time.perf_counter()
        await call()
        first = time.perf_counter()
        await call()
        return warmup_ms, (first - began) * 1000, (time.perf_counter() - first) * 1000

    warmup_ms, first_ms, second_ms = asyncio.run(two_calls())
    return {"import_ms": import_ms, "warmup_ms": warmup_ms, "first_ms": first_ms, "second_ms": second_ms}


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    if mode == "import":
        result = {"import_ms": _timed_import(rest)}
    elif mode in ("first", "warm"):
        result = _first(json.loads(rest[0]), warm=mode == "warm")
    elif mode == "deferred":
        _timed_import(["function_app"])
        result = {"import_ms": _timed_import(DEFERRED)}
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
