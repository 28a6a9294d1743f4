"""A region whose front end stays up after its app died: read-only calls move on, none fail.

A real region sits behind a front end (Front Door, Application Gateway, an ingress) that keeps
answering when the app behind it is gone: 502, 503, 504, or a connection reset mid-answer. The
devstack front end (`devstack.front_end`) plays it in front of the east Scheduler; the tests then
point it at a port where nothing listens, as if the app had died. Moving to a healthy region the call has not tried never spends the retry budget, so neither a
sequential caller nor a burst of 100 concurrent callers sees a failure. The dead region receives
what passive ejection lets through; the tests print how much.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2
import pytest

from devstack.processes import free_port, start_front_end
from mcp_bridge.runtime import get_bridge

from .conftest import control, tool_calls

DEAD_ANSWERS = ["502", "503", "504", "reset"]


@pytest.fixture(scope="module")
def front_end(devstack) -> Iterator[str]:
    process = start_front_end(port=free_port(), backend=devstack.east.url, log_dir=devstack.log_dir)
    try:
        yield process.url
    finally:
        process.stop()


def front_end_control(url: str, body: dict) -> dict:
    response = httpx2.post(url + "/_frontend/config", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


async def _east_dies_behind_its_front_end(
    configure, functions, stack, front_end: str, dead_answer: str
) -> None:
    await configure(endpoints=[f"{front_end}/mcp", stack.west.mcp_url], scheduler_ping_path="")
    front_end_control(front_end, {"backend": stack.east.url})
    warm = await functions.call_tool("listConversations", {})
    assert warm.status == 200 and warm.json["endpoint"] == f"{front_end}/mcp", warm.body
    dead_app = f"http://127.0.0.1:{free_port()}"  # nothing listens: the app behind the front end died
    front_end_control(front_end, {"backend": dead_app, "dead_answer": dead_answer, "reset_counters": True})


@pytest.mark.parametrize("dead_answer", DEAD_ANSWERS)
async def test_a_sequential_caller_sees_no_failure(configure, functions, stack, front_end, dead_answer):
    await _east_dies_behind_its_front_end(configure, functions, stack, front_end, dead_answer)
    statuses = []
    for _ in range(10):
        statuses.append((await functions.call_tool("listConversations", {})).status)
        await asyncio.sleep(0.1)
    assert statuses == [200] * 10, statuses
    counters = front_end_control(front_end, {})
    print(
        f"\nfront end answering {dead_answer}, sequential: dead region received {counters['received']} requests"
    )
    assert counters["forwarded"] == 0
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
    counters = front_end_control(front_end, {})
    print(
        f"\nfront end answering {dead_answer}, burst of 100: dead region received {counters['received']} requests"
    )
    assert counters["received"] <= 100, "each call tried the dead region at most once"
    assert tool_calls(stack.west, "listConversations") == 100


async def test_a_call_that_is_not_idempotent_is_never_repeated_behind_a_502(
    configure, functions, stack, front_end
):
    """A front end's 502 does not say whether the app ran the call: outcome unknown, not a retry."""
    from .conftest import schedule_arguments

    await _east_dies_behind_its_front_end(configure, functions, stack, front_end, "502")
    reply = await functions.call_tool("scheduleConversation", schedule_arguments("behind a dead front end"))
    assert reply.status == 502 and reply.json["type"].endswith(":outcome-unknown"), reply.body
    assert tool_calls(stack.west, "scheduleConversation") == 0
    assert control(stack.west.url)["tool_calls"].get("scheduleConversation", 0) == 0
