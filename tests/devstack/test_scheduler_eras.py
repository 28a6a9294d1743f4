"""Protocol eras: a modern region negotiates 2026-07-28 statelessly; a legacy one forces the handshake."""

from __future__ import annotations

import httpx2
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

from tests.devstack.conftest import SchedulerServer, auth_headers, counters, mcp_client


async def test_modern_region_negotiates_the_modern_era(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        assert client.protocol_version == LATEST_MODERN_VERSION == "2026-07-28"
        await client.list_tools()

    assert (await counters(scheduler.url))["sessions_created"] == 0


async def test_modern_region_still_serves_handshake_clients(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url, mode="legacy") as client:
        assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        await client.list_tools()

    assert (await counters(scheduler.url))["sessions_created"] == 1


async def test_legacy_region_makes_auto_mode_fall_back_to_initialize(
    legacy_scheduler: SchedulerServer,
) -> None:
    before = await counters(legacy_scheduler.url)
    async with mcp_client(legacy_scheduler.mcp_url) as client:
        assert client.protocol_version == "2025-11-25"
        result = await client.call_tool("listConversations", {})
        assert not result.is_error

    after = await counters(legacy_scheduler.url)
    assert after["sessions_created"] == before["sessions_created"] + 1  # type: ignore[operator]


async def test_legacy_region_answers_discover_like_a_2025_server(legacy_scheduler: SchedulerServer) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            legacy_scheduler.mcp_url,
            json={"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {}},
            headers={
                **auth_headers(),
                "MCP-Protocol-Version": "2026-07-28",
                "Accept": "application/json, text/event-stream",
            },
        )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32600, "message": "Bad Request: Missing session ID"},
    }
