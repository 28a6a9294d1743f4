"""The warm-up trigger: a new instance pays its first request's costs before traffic arrives."""

from __future__ import annotations

from azure.functions.warmup import WarmUpContext

from devstack.processes import free_port
from mcp_bridge.runtime import get_bridge

from .conftest import control, identity_requests


async def run_warmup(functions) -> None:
    await functions._functions["warmup"].get_user_function()(WarmUpContext())


async def test_warm_up_opens_a_session_and_lists_tools_on_every_endpoint(configure, functions, stack):
    await configure()
    await run_warmup(functions)
    assert identity_requests(stack) == 1, "the token is fetched once, by the warm-up"
    bridge = await get_bridge()
    assert [session.url for session in bridge.endpoints] == [stack.east.mcp_url, stack.west.mcp_url]
    for session in bridge.endpoints:
        assert session.connected, f"{session.url} has no session after the warm-up"
        assert session.cached_catalog() is not None, f"{session.url} was not listed"
        assert session.connections_opened == 1
    east_before = control(stack.east.url)
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 200
    assert identity_requests(stack) == 1, "the first request needs no token of its own"
    assert control(stack.east.url)["sessions_created"] == east_before["sessions_created"], "no new session"


async def test_warm_up_survives_a_dead_endpoint(configure, functions, stack, captured_logs):
    await configure(endpoints=[f"http://127.0.0.1:{free_port()}/mcp", stack.east.mcp_url])
    await run_warmup(functions)
    bridge = await get_bridge()
    assert not bridge.endpoints[0].connected and bridge.endpoints[1].connected
    done = [r.getMessage() for r in captured_logs.records if r.getMessage().startswith("Warm-up done")]
    assert len(done) == 1 and "not ready (" in done[0] and f"{stack.east.mcp_url} ready" in done[0]


async def test_warm_up_with_invalid_settings_logs_and_returns(configure, functions, captured_logs):
    await configure(scheduler_timeout_seconds="-1")
    await run_warmup(functions)
    assert any("Warm-up skipped: invalid settings" in r.getMessage() for r in captured_logs.records)
