"""Section 10: what each layer of the bridge costs in client CPU per call, one layer added at a time.

The same `getConversationStatus` call, modern era, made six ways in one process, interleaved in
blocks (each block runs every variant `calls` times, in forward then reverse order), each one the
previous plus one layer of the bridge:

1. `raw`: one persistent `mcp.Client` on a plain httpx2 client (section 1's raw);
2. `http_client`: the same, on the client `runtime.scheduler_http_client` builds (the wire shield
   and its response cap, the endpoint address guard, the keep-alive tuner), a static bearer token;
3. `session`: the bridge's own MCP session (owner task, token refresh and auth flow, tool-change
   listener), its `call_tool` called directly;
4. `call_path`: `SchedulerBridge.call_tool` (allowlist, deadline, endpoint order and health, retry
   budget, tool catalog, schema and strict-argument checks, the wire trace, the telemetry span);
5. `function`, audit off: the `call_tool` HTTP function as the worker invokes it (body decoding,
   caller and role check, the response model and body), with the `mcp_bridge.audit` logger off;
6. `function`: the same with the audit line, handed to the logging thread as the worker does.

Each layer's cost is the median over blocks of (its CPU per call − the previous layer's), shown in
µs and as a share of raw. Process CPU counts every thread, so the logging thread's work is in it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_bridge.callers import audit
from mcp_bridge.config.loader import load_settings
from mcp_bridge.runtime import get_bridge, scheduler_http_client

from .callers import RawClient
from .rig import Rig
from .stack import STATUS_TOOL
from .stats import median

LAYERS = ("raw", "http_client", "session", "call_path", "function_no_audit", "function")
NAMES = {
    "raw": "raw `mcp.Client`",
    "http_client": "+ the bridge's HTTP client (wire shield, address guard, keep-alive tuner)",
    "session": "+ the bridge's MCP session (owner task, token auth flow, tool-change listener)",
    "call_path": "+ the call path (deadline, health, catalog, schema and strict checks, trace, span)",
    "function_no_audit": "+ the HTTP function (body, caller and roles, response), audit off",
    "function": "+ the audit line",
}


@dataclass
class LayersResult:
    calls_per_block: int
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {layer: [] for layer in LAYERS})

    def per_call_us(self, layer: str) -> float:
        return median(self.cpu_us[layer])

    def added_us(self, layer: str) -> float:
        """Median over blocks of this layer's CPU per call minus the previous layer's."""
        index = LAYERS.index(layer)
        if index == 0:
            return self.per_call_us(layer)
        below = self.cpu_us[LAYERS[index - 1]]
        return median([mine - theirs for mine, theirs in zip(self.cpu_us[layer], below, strict=True)])

    @property
    def blocks(self) -> int:
        return len(self.cpu_us["raw"])


class _StaticBearer(httpx2.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


async def run_layers(rig: Rig, *, blocks: int, calls: int) -> LayersResult:
    await rig.use_era("modern")
    arguments = rig.arguments
    bridge = await get_bridge()
    await bridge.call_tool(STATUS_TOOL, arguments)  # the session is open, the catalog cached
    async with RawClient(rig.raw_url(), rig.token) as raw, AsyncExitStack() as stack:
        client = scheduler_http_client(load_settings(), _StaticBearer(rig.token))
        http = await stack.enter_async_context(client)
        shielded = await stack.enter_async_context(
            Client(streamable_http_client(rig.raw_url(), http_client=http), mode="auto")
        )
        await shielded.list_tools()
        session = await bridge.endpoints[0].client()

        async def function_no_audit() -> object:
            audit.AUDIT_LOGGER.disabled = True
            try:
                return await rig.bridge(arguments)
            finally:
                audit.AUDIT_LOGGER.disabled = False

        variants: dict[str, Callable[[], Awaitable[object]]] = {
            "raw": lambda: raw(arguments),
            "http_client": lambda: shielded.call_tool(STATUS_TOOL, arguments),
            "session": lambda: session.call_tool(STATUS_TOOL, arguments),
            "call_path": lambda: bridge.call_tool(STATUS_TOOL, arguments),
            "function_no_audit": function_no_audit,
            "function": lambda: rig.bridge(arguments),
        }
        for call in variants.values():
            for _ in range(10):
                await call()
        result = LayersResult(calls)
        for block in range(blocks):
            order = LAYERS if block % 2 == 0 else tuple(reversed(LAYERS))
            for layer in order:
                call = variants[layer]
                started = time.process_time()
                for _ in range(calls):
                    await call()
                result.cpu_us[layer].append((time.process_time() - started) / calls * 1e6)
    return result


def table(result: LayersResult) -> list[str]:
    raw = result.per_call_us("raw")
    out = [
        "| layer | client CPU per call µs | added µs | added / raw |",
        "|---|---:|---:|---:|",
    ]
    for layer in LAYERS:
        added = result.added_us(layer)
        share = "" if layer == "raw" else f"{added / raw:+.1%}"
        out.append(f"| {NAMES[layer]} | {result.per_call_us(layer):.0f} | {added:+.0f} | {share} |")
    total = result.per_call_us("function") / raw
    out += [
        "",
        f"Medians of {result.blocks} blocks of {result.calls_per_block} calls per layer, interleaved; "
        f"the whole function over raw: {total:.3f}.",
    ]
    return out
