"""Changing the Scheduler's tool list at run time, so tests can watch the bridge notice.

`POST /_devstack/tools` adds a read-only tool and announces `notifications/tools/list_changed` to
2026-07-28 clients through the server's subscription bus (`subscriptions/listen`), as a real
deployment adding a tool would.
"""

from __future__ import annotations

import logging

from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_LOGGER = logging.getLogger(__name__)


def catalog_routes(*, server: MCPServer, bus: InMemorySubscriptionBus, region: str) -> list[Route]:
    async def add_tool(request: Request) -> Response:
        body = await request.json()
        name = str(body.get("name", "describeRegion"))

        def describe_region() -> dict[str, str]:
            return {"region": region}

        server.add_tool(
            describe_region,
            name=name,
            description="Describes the region serving the call (added at run time).",
            annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True),
        )
        await bus.publish(ToolsListChanged())
        _LOGGER.info("added tool %s and announced tools/list_changed", name)
        return JSONResponse({"added": name})

    return [Route("/_devstack/tools", add_tool, methods=["POST"])]
