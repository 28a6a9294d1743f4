"""Long-lived MCP sessions: both protocol eras, restarts, cancellation, and sharing."""

from __future__ import annotations

import asyncio

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_bridge.runtime import get_bridge

from .conftest import control, schedule_arguments, tool_calls


async def test_modern_era_session_is_stateless_2026(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    assert bridge.endpoints[0].protocol_version in MODERN_PROTOCOL_VERSIONS
    assert control(stack.east.url)["sessions_created"] == 0


async def test_handshake_era_session_uses_initialize_and_a_session_id(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert scheduled.status == 200, scheduled.body
    status = await functions.status(scheduled.json["structuredContent"]["conversation_id"])
    assert status.status == 200
    bridge = await get_bridge()
    assert bridge.endpoints[0].protocol_version not in MODERN_PROTOCOL_VERSIONS
    assert control(stack.legacy.url)["sessions_created"] == 1


async def test_sessions_stay_open_across_invocations(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    for _ in range(5):
        assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 1
    assert control(stack.legacy.url)["sessions_created"] == 1


async def test_handshake_era_server_restarted_between_calls_is_invisible(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    first = await functions.call_tool("scheduleConversation", schedule_arguments("before restart"))
    assert first.status == 200
    stack.legacy.kill()
    stack.legacy.restart()
    second = await functions.call_tool("scheduleConversation", schedule_arguments("after restart"))
    assert second.status == 200, second.body
    assert tool_calls(stack.legacy, "scheduleConversation") == 1, "executed exactly once after the restart"
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 2


async def test_server_forgetting_the_session_reconnects_and_repeats_once(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.legacy.url,
        "POST",
        "/_devstack/faults",
        {"status": 404, "times": 1, "tools": ["listConversations"]},
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert tool_calls(stack.legacy, "listConversations") == 2


async def test_a_timed_out_call_does_not_tear_down_the_session(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url], scheduler_timeout_seconds="1")
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.legacy.url,
        "POST",
        "/_devstack/faults",
        {"hang": True, "times": 1, "tools": ["scheduleConversation"]},
    )
    hung = asyncio.create_task(functions.call_tool("scheduleConversation", schedule_arguments()))
    others = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(10)))
    assert {reply.status for reply in others} == {200}
    assert (await hung).status == 504
    after = await functions.call_tool("listConversations", {})
    assert after.status == 200
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 1


async def test_a_cancelled_invocation_leaves_the_session_usable(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"delay_seconds": 2, "times": 1, "tools": ["listConversations"]},
    )
    slow = asyncio.create_task(functions.call_tool("listConversations", {}))
    await asyncio.sleep(0.2)
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 1


async def test_a_connection_dropped_mid_answer_fails_one_call_not_the_session(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url, stack.west.mcp_url])
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.legacy.url, "POST", "/_devstack/faults",
        {"after_execute": True, "drop_connection": True, "times": 1, "tools": ["scheduleConversation"]},
    )  # fmt: skip
    calls = [functions.call_tool("scheduleConversation", schedule_arguments("dropped"))]
    calls += [functions.call_tool("listConversations", {}) for _ in range(5)]
    dropped, *others = await asyncio.gather(*calls)
    assert dropped.status == 502 and dropped.json["type"].endswith("outcome-unknown")
    assert {reply.status for reply in others} == {200}
    assert tool_calls(stack.legacy, "scheduleConversation") == 1
    assert tool_calls(stack.west, "scheduleConversation") == 0
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 1, "the session survived the dropped connection"
