"""Injected failures: status codes with Retry-After, delays, hangs, and the ambiguous 'ran, then failed'."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from tests.devstack.conftest import SchedulerServer, auth_headers, counters, mcp_client
from tests.devstack.test_scheduler_auth import DISCOVER, MODERN_HEADERS, post_mcp


async def arm(scheduler: SchedulerServer, **plan: object) -> dict[str, object]:
    async with httpx2.AsyncClient(base_url=scheduler.url) as control:
        response = await control.post("/_devstack/faults", json=plan)
        response.raise_for_status()
        return response.json()


def schedule_arguments() -> dict[str, object]:
    start = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"participants": ["carol@example.com"], "start_time": start, "topic": "Fault drill"}


async def test_status_with_retry_after_for_the_next_n_requests(scheduler: SchedulerServer) -> None:
    armed = await arm(scheduler, status=503, retry_after="2", times=2)
    assert armed["remaining"] == 2

    first = await post_mcp(scheduler, {})
    second = await post_mcp(scheduler, {"X-Client-Id": "x", "X-API-Key": "y"})
    third = await post_mcp(scheduler, auth_headers())

    assert (first.status_code, first.headers["retry-after"]) == (503, "2")
    assert second.status_code == 503
    assert third.status_code == 200  # disarmed after `times`
    snapshot = await counters(scheduler.url)
    assert snapshot["faults_injected"] == 2
    assert snapshot["unauthorized"] == 0  # the fault answers before auth, like a gateway would


async def test_tool_filter_only_hits_named_tools(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        await arm(scheduler, status=500, tools=["scheduleConversation"])
        listed = await client.call_tool("listConversations", {})
        assert not listed.is_error
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a bare HTTP 500
            await client.call_tool("scheduleConversation", schedule_arguments())
        retried = await client.call_tool("scheduleConversation", schedule_arguments())
        assert not retried.is_error

    snapshot = await counters(scheduler.url)
    assert snapshot["tool_calls"]["scheduleConversation"] == 1  # type: ignore[index]
    assert snapshot["faults_injected"] == 1


async def test_delay_without_status_is_a_slow_but_healthy_scheduler(scheduler: SchedulerServer) -> None:
    await arm(scheduler, delay_seconds=0.3)
    started = time.monotonic()
    response = await post_mcp(scheduler, auth_headers())

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_hang_never_answers_until_the_client_gives_up(scheduler: SchedulerServer) -> None:
    await arm(scheduler, hang=True)
    async with httpx2.AsyncClient(timeout=0.3) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post(scheduler.mcp_url, json=DISCOVER, headers={**MODERN_HEADERS, **auth_headers()})

    assert (await post_mcp(scheduler, auth_headers())).status_code == 200


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param({"after_execute": True}, id="then-502"),
        pytest.param({"after_execute": True, "drop_connection": True}, id="then-drop"),
    ],
)
async def test_after_execute_runs_the_tool_and_then_fails(
    scheduler: SchedulerServer, plan: dict[str, object]
) -> None:
    before = await conversation_count(scheduler)
    await arm(scheduler, tools=["scheduleConversation"], **plan)

    # A 502 surfaces as an error from call_tool; a dropped connection tears the whole client down.
    with pytest.raises(Exception):  # noqa: B017 - the caller cannot tell whether the tool ran
        async with mcp_client(scheduler.mcp_url) as client:
            await client.call_tool("scheduleConversation", schedule_arguments())

    assert await conversation_count(scheduler) == before + 1  # ...but the Scheduler did book it
    assert (await counters(scheduler.url))["tool_calls"]["scheduleConversation"] == 1  # type: ignore[index]


async def conversation_count(scheduler: SchedulerServer) -> int:
    async with mcp_client(scheduler.mcp_url) as client:
        listed = (await client.call_tool("listConversations", {"limit": 100})).structured_content
    assert listed is not None
    return int(listed["count"])


async def test_after_execute_answers_502_by_default(scheduler: SchedulerServer) -> None:
    await arm(scheduler, after_execute=True)
    response = await post_mcp(scheduler, auth_headers())

    assert response.status_code == 502


async def test_control_api_validates_and_clears(scheduler: SchedulerServer) -> None:
    async with httpx2.AsyncClient(base_url=scheduler.url) as control:
        assert (await control.post("/_devstack/faults", json={"status": 99})).status_code == 400
        assert (
            await control.post("/_devstack/faults", json={"hang": True, "status": 503})
        ).status_code == 400
        assert (await control.post("/_devstack/faults", json={"surprise": 1})).status_code == 400
        await control.post("/_devstack/faults", json={"status": 503, "times": None})
        assert (await control.get("/_devstack/faults")).json()["plan"]["status"] == 503
        cleared = await control.delete("/_devstack/faults")
        assert cleared.json() == {"plan": None, "remaining": None}


async def test_after_execute_in_a_stateful_legacy_session(legacy_scheduler: SchedulerServer) -> None:
    """In the handshake era the POST answers over SSE; the fault still waits for the tool, then fails."""
    before = (await counters(legacy_scheduler.url))["tool_calls"]["scheduleConversation"]  # type: ignore[index]
    async with mcp_client(legacy_scheduler.mcp_url) as client:
        await arm(legacy_scheduler, tools=["scheduleConversation"], after_execute=True, status=504)
        with pytest.raises(Exception):  # noqa: B017 - the 504 reaches the caller as an MCP error
            await client.call_tool("scheduleConversation", schedule_arguments())
        still_usable = await client.call_tool("listConversations", {})

    assert not still_usable.is_error
    after = (await counters(legacy_scheduler.url))["tool_calls"]["scheduleConversation"]  # type: ignore[index]
    assert after == before + 1
