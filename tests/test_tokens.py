"""Managed-identity tokens: real azure-identity against the devstack identity endpoint."""

from __future__ import annotations

import asyncio
import time

from mcp_bridge.runtime import get_bridge

from .conftest import control, identity_requests, schedule_arguments, tool_calls


async def test_100_concurrent_cold_calls_make_one_identity_request_and_one_connection(
    configure, functions, stack
):
    await configure()
    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(100)))
    assert [reply.status for reply in replies] == [200] * 100
    assert identity_requests(stack) == 1
    bridge = await get_bridge()
    primary, secondary = (session.connections_opened for session in bridge.endpoints)
    # One session for 100 callers; the secondary's, if any, is the first probe round's (a warm spare).
    assert primary == 1 and secondary <= 1
    assert tool_calls(stack.east, "listConversations") == 100
    assert tool_calls(stack.west, "listConversations") == 0


async def test_100_concurrent_cold_calls_share_one_handshake_era_session(configure, functions, stack):
    await configure(endpoints=[stack.legacy.mcp_url])
    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(100)))
    assert {reply.status for reply in replies} == {200}
    assert identity_requests(stack) == 1
    assert control(stack.legacy.url)["sessions_created"] == 1


async def test_token_is_refreshed_ahead_of_expiry_without_blocking_calls(configure, functions, stack):
    control(stack.identity.url, "POST", "/_devstack/config", {"lifetime_seconds": 4})
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    first = bridge.tokens.state()
    first_token = bridge.tokens._token
    assert first.has_token and 0 < first.expires_in_seconds <= 4
    assert first.refresh_in_seconds < first.expires_in_seconds, "refresh is planned ahead of expiry"
    await asyncio.sleep(first.refresh_in_seconds + 0.1)
    started = time.perf_counter()
    assert (await functions.call_tool("listConversations", {})).status == 200
    assert time.perf_counter() - started < 1.0
    await asyncio.sleep(0.3)  # the background refresh lands
    assert identity_requests(stack) == 2
    renewed = bridge.tokens._token
    assert renewed.token != first_token.token
    assert renewed.expires_on > first_token.expires_on


async def test_identity_down_while_token_valid_causes_no_failures(configure, functions, stack):
    control(stack.identity.url, "POST", "/_devstack/config", {"lifetime_seconds": 6})
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(stack.identity.url, "POST", "/_devstack/config", {"fail": True, "fail_status": 500})
    bridge = await get_bridge()
    await asyncio.sleep(bridge.tokens.state().refresh_in_seconds + 0.1)
    statuses = []
    for _ in range(10):
        statuses.append((await functions.call_tool("listConversations", {})).status)
        await asyncio.sleep(0.05)
    assert statuses == [200] * 10
    assert identity_requests(stack) >= 2, "a refresh was attempted"
    assert bridge.tokens.state().last_error is not None


async def test_identity_down_with_no_token_is_a_quick_503_with_retry_after(configure, functions, stack):
    control(stack.identity.url, "POST", "/_devstack/config", {"fail": True, "fail_status": 500})
    await configure()
    started = time.perf_counter()
    reply = await functions.call_tool("listConversations", {})
    elapsed = time.perf_counter() - started
    assert reply.status == 503, reply.body
    assert reply.json["type"].endswith("identity-unavailable")
    assert int(reply.headers["Retry-After"]) >= 1
    assert elapsed < 5, f"took {elapsed:.1f} s"
    # While the endpoint stays down, later calls fail fast without hammering it.
    before = identity_requests(stack)
    started = time.perf_counter()
    again = await functions.call_tool("listConversations", {})
    assert again.status == 503
    assert time.perf_counter() - started < 0.5
    assert identity_requests(stack) == before
    assert tool_calls(stack.east, "listConversations") == 0


async def test_identity_process_gone_with_no_token_is_a_quick_503(configure, functions, stack):
    await configure()
    stack.identity.kill()
    started = time.perf_counter()
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503
    assert "Retry-After" in reply.headers
    assert time.perf_counter() - started < 5


async def test_a_401_forces_one_refresh_and_one_retry(configure, functions, stack):
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 401, "times": 1, "tools": ["scheduleConversation"]},
    )
    reply = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert reply.status == 200, reply.body
    assert identity_requests(stack) == 2
    assert tool_calls(stack.east, "scheduleConversation") == 1


async def test_a_second_401_is_a_502_with_a_clear_message(configure, functions, stack):
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 401, "times": 2, "tools": ["scheduleConversation"]},
    )
    reply = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert reply.status == 502
    assert "401" in reply.json["detail"] and "refresh" in reply.json["detail"]
    assert tool_calls(stack.east, "scheduleConversation") == 0
    assert tool_calls(stack.west, "scheduleConversation") == 0


async def test_api_key_mode_sends_both_headers(configure, functions, stack):
    await configure(auth="api_key")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert identity_requests(stack) == 0
    assert control(stack.east.url)["unauthorized"] == 0


async def test_wrong_api_key_is_a_502_not_a_retry_storm(configure, functions, stack):
    await configure(auth="api_key", scheduler_api_key="wrong-key")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 502
    assert "401" in reply.json["detail"]
    assert "wrong-key" not in reply.body.decode()
