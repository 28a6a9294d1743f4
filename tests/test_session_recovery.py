"""A Scheduler that forgot our session, however it says so, costs the caller nothing.

Real servers answer a request on an unknown `Mcp-Session-Id` in different ways (the devstack
Scheduler plays each through `/_devstack/session-answer`). After a restart the bridge must reopen
the session once, shared by every concurrent caller, and resend: safe even for a tool that is not
idempotent, because the server refused before running anything.
"""

from __future__ import annotations

import asyncio

import pytest

from mcp_bridge.failover import retry
from mcp_bridge.failover.probe import probe_all
from mcp_bridge.runtime import get_bridge

from .conftest import control, schedule_arguments, tool_calls

STYLES = ["spec-404", "typescript-400", "python-text-400", "gateway-400", "go-404", "java-404", "empty-404"]


def restart_forgetting_sessions(process, style: str) -> None:
    process.kill()
    process.restart()
    control(process.url, "POST", "/_devstack/session-answer", {"style": style})


@pytest.mark.parametrize("style", STYLES)
async def test_restart_between_calls_is_invisible_whatever_the_refusal_looks_like(
    configure, functions, stack, style
):
    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions.call_tool("scheduleConversation", schedule_arguments("before"))).status == 200
    restart_forgetting_sessions(stack.legacy, style)
    for n in range(3):
        reply = await functions.call_tool("scheduleConversation", schedule_arguments(f"after {n}"))
        assert reply.status == 200, reply.body
    assert tool_calls(stack.legacy, "scheduleConversation") == 3, "each call ran exactly once"
    assert control(stack.legacy.url)["sessions_created"] == 1, "one new session, not one per call"


async def test_concurrent_callers_share_one_reconnect(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    restart_forgetting_sessions(stack.legacy, "typescript-400")
    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(20)))
    assert [reply.status for reply in replies] == [200] * 20
    assert control(stack.legacy.url)["sessions_created"] == 1
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 2


async def test_a_restarted_region_is_readmitted_by_its_probes(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url, stack.west.mcp_url])
    bridge = await get_bridge()
    await probe_all(bridge)
    assert bridge.health.describe()["endpoints"][0]["healthy"]
    stack.legacy.kill()
    for _ in range(3):
        await probe_all(bridge)
    assert bridge.health.active_endpoint() == stack.west.mcp_url
    stack.legacy.restart()
    control(stack.legacy.url, "POST", "/_devstack/session-answer", {"style": "typescript-400"})
    for _ in range(2):
        results = await probe_all(bridge)
    assert [r.error for r in results] == [None, None]
    assert bridge.health.active_endpoint() == stack.legacy.mcp_url, "failed back after passing probes"


async def test_a_refusal_on_the_fresh_session_is_an_ordinary_failure(configure, functions, stack):
    """A server that refuses every session id must not send the bridge into a reconnect loop: each
    attempt reopens at most once, and the call then fails like any other, unrun."""
    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.legacy.url,
        "POST",
        "/_devstack/faults",
        {"status": 404, "times": 100, "tools": ["listConversations"]},
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 502, reply.body
    assert "fresh session too" in reply.json["detail"]
    assert tool_calls(stack.legacy, "listConversations") == 1, "only the first, successful call ran"
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened <= 1 + retry.MAX_ATTEMPTS, "one reopen per attempt at most"


async def test_a_listing_on_a_lost_session_reconnects_too(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions("list_tools", path="/api/tools")).status == 200
    bridge = await get_bridge()
    bridge.endpoints[0].invalidate_catalog()
    restart_forgetting_sessions(stack.legacy, "gateway-400")
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 200, reply.body
    assert control(stack.legacy.url)["sessions_created"] == 1


async def test_a_lost_session_leaves_nothing_behind(configure, functions, stack):
    """After restarts, the lost clients are freed once no call holds them: only the live one is left
    (the soak found each lost client kept alive, about 0.5 MiB per restart, docs/reliability.md)."""
    import gc

    from mcp import Client

    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    for style in ("typescript-400", "spec-404", "go-404"):
        restart_forgetting_sessions(stack.legacy, style)
        assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    session = bridge.endpoints[0]
    assert session.connections_opened == 4
    await asyncio.sleep(0.2)  # the replaced owners finish closing
    gc.collect()
    ours = [
        client
        for client in gc.get_objects()
        if isinstance(client, Client) and getattr(client.message_handler, "__self__", None) is session
    ]
    assert len(ours) == 1, f"{len(ours)} clients of this session alive after 3 restarts"
