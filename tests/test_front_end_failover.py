"""A region whose front end stays up after its app died: read-only calls move on, none fail.

A real region sits behind a front end (Front Door, Application Gateway, an ingress) that keeps
answering when the app behind it is gone: 502, 503, 504, or a connection reset mid-answer. The
tests' front end (`tests/conformance/frontend.py`, the conformance matrix's own) plays it in front
of the east Scheduler; the tests then point it at a port where nothing listens, as if the app had
died. Moving to a healthy region the call has not tried never spends the retry budget, so neither a
sequential caller nor a burst of 100 concurrent callers sees a failure. The dead region receives
what passive ejection lets through; the tests print how much.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devstack.processes import free_port
from mcp_bridge.runtime import get_bridge

from .conformance.frontend import FrontEnd
from .conftest import schedule_arguments, tool_calls

DEAD_ANSWERS = [502, 503, 504, "reset"]


@pytest.fixture
async def front_end(stack) -> AsyncIterator[FrontEnd]:
    proxy = await FrontEnd(stack.east.port).start()
    try:
        yield proxy
    finally:
        await proxy.aclose()


async def _east_dies_behind_its_front_end(
    configure, functions, stack, front_end: FrontEnd, dead_answer
) -> None:
    await configure(endpoints=[f"{front_end.url}/mcp", stack.west.mcp_url], scheduler_ping_path="")
    warm = await functions.call_tool("listConversations", {})
    assert warm.status == 200 and warm.json["endpoint"] == f"{front_end.url}/mcp", warm.body
    front_end.upstream_port = free_port()  # nothing listens there: the app behind the front end died
    front_end.dead_answer = dead_answer
    front_end.reset_counters()


@pytest.mark.parametrize("dead_answer", DEAD_ANSWERS)
async def test_a_sequential_caller_sees_no_failure(configure, functions, stack, front_end, dead_answer):
    await _east_dies_behind_its_front_end(configure, functions, stack, front_end, dead_answer)
    statuses = []
    for _ in range(10):
        statuses.append((await functions.call_tool("listConversations", {})).status)
        await asyncio.sleep(0.1)
    assert statuses == [200] * 10, statuses
    calls = front_end.counters.tool_calls
    print(f"\nfront end answering {dead_answer}, sequential: the dead region received {calls} calls")
    # 5 failures in a row eject the region. A reset that meets a reused connection before any byte of
    # answer is resent once on a fresh one (the keep-alive race rule, docs/performance.md), so a
    # resetting front end may see a call twice.
    assert front_end.counters.forwarded == 0
    assert calls == 5 if dead_answer != "reset" else 5 <= calls <= 10, calls
    assert tool_calls(stack.west, "listConversations") == 10
    bridge = await get_bridge()
    assert bridge.health.active_endpoint() == stack.west.mcp_url, "passive ejection moved traffic away"


@pytest.mark.parametrize("dead_answer", DEAD_ANSWERS)
async def test_a_burst_of_100_concurrent_callers_sees_no_failure(
    configure, functions, stack, front_end, dead_answer
):
    await _east_dies_behind_its_front_end(configure, functions, stack, front_end, dead_answer)
    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(100)))
    failed = [reply.body for reply in replies if reply.status != 200]
    assert not failed, failed[:3]
    calls = front_end.counters.tool_calls
    print(f"\nfront end answering {dead_answer}, burst of 100: the dead region received {calls} calls")
    # Each call tried the dead region once (twice at most for a reset on a reused connection).
    assert calls <= (100 if dead_answer != "reset" else 200), calls
    assert tool_calls(stack.west, "listConversations") == 100


async def test_a_call_that_is_not_idempotent_is_never_repeated_behind_a_502(
    configure, functions, stack, front_end
):
    """A front end's 502 does not say whether the app ran the call: outcome unknown, not a retry."""
    await _east_dies_behind_its_front_end(configure, functions, stack, front_end, 502)
    reply = await functions.call_tool("scheduleConversation", schedule_arguments("behind a dead front end"))
    assert reply.status == 502 and reply.json["type"].endswith(":outcome-unknown"), reply.body
    assert tool_calls(stack.west, "scheduleConversation") == 0
