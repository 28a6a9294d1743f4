"""The per-endpoint tool list: cached, refreshed on the server's TTL hint, on list_changed, and on a miss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from devstack.processes import SchedulerProcess, free_port, start_scheduler
from mcp_bridge.runtime import get_bridge, reset_bridge

from .conftest import API_KEY, CLIENT_ID, SIGNING_KEY, control


@pytest.fixture
async def fresh_scheduler(tmp_path) -> AsyncIterator[Callable[..., SchedulerProcess]]:
    started: list[SchedulerProcess] = []

    def start(era: str = "modern", tools_ttl_ms: int = 60_000) -> SchedulerProcess:
        process = start_scheduler(
            port=free_port(), region=f"catalog-{era}", log_dir=tmp_path, signing_key=SIGNING_KEY,
            client_id=CLIENT_ID, api_key=API_KEY, era=era, tools_ttl_ms=tools_ttl_ms,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    await reset_bridge()  # close the sessions first, so the server can stop at once
    for process in started:
        process.stop()


async def tool_names(functions) -> set[str]:
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 200, reply.body
    return {tool["name"] for tool in reply.json["tools"]}


async def test_the_servers_ttl_hint_sets_the_cache_lifetime(configure, functions, fresh_scheduler):
    scheduler = fresh_scheduler(tools_ttl_ms=1500)
    await configure(endpoints=[scheduler.mcp_url])
    await tool_names(functions)
    catalog = (await get_bridge()).endpoints[0]._catalog
    assert catalog.expires_at - catalog.fetched_at == pytest.approx(1.5, abs=0.1)


async def test_without_a_hint_the_configured_ttl_applies(configure, functions, fresh_scheduler):
    scheduler = fresh_scheduler(era="legacy")  # handshake-era results carry no ttlMs
    await configure(endpoints=[scheduler.mcp_url], tools_cache_ttl_seconds="42")
    await tool_names(functions)
    catalog = (await get_bridge()).endpoints[0]._catalog
    assert catalog.expires_at - catalog.fetched_at == pytest.approx(42, abs=0.5)


async def test_repeated_calls_do_not_relist(configure, functions, fresh_scheduler):
    scheduler = fresh_scheduler()
    await configure(endpoints=[scheduler.mcp_url])
    await functions.call_tool("listConversations", {})
    before = control(scheduler.url)["mcp_requests"]
    for _ in range(10):
        assert (await functions.call_tool("listConversations", {})).status == 200
    assert control(scheduler.url)["mcp_requests"] - before == 10, "one MCP request per call, no tools/list"


async def test_tools_list_changed_refreshes_the_cache(configure, functions, fresh_scheduler):
    scheduler = fresh_scheduler(tools_ttl_ms=600_000)
    await configure(endpoints=[scheduler.mcp_url])
    assert "describeRegion" not in await tool_names(functions)
    await asyncio.sleep(0.3)  # the subscriptions/listen stream is open
    control(scheduler.url, "POST", "/_devstack/tools", {"name": "describeRegion"})
    deadline = time.monotonic() + 5
    while "describeRegion" not in await tool_names(functions):
        assert time.monotonic() < deadline, "list_changed never reached the bridge"
        await asyncio.sleep(0.1)


async def test_an_unknown_tool_relists_once_before_answering_404(configure, functions, fresh_scheduler):
    scheduler = fresh_scheduler(era="legacy")
    await configure(endpoints=[scheduler.mcp_url])
    assert "describeRegion" not in await tool_names(functions)
    control(scheduler.url, "POST", "/_devstack/tools", {"name": "describeRegion"})
    reply = await functions.call_tool("describeRegion", {})
    assert reply.status == 200, reply.body
    assert reply.json["structuredContent"]["region"] == "catalog-legacy"
