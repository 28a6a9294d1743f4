"""Long-running operations against the devstack Scheduler's `findCommonSlot` (taskSupport
`optional`) in both protocol eras: the 2026-07-28 regions (the `io.modelcontextprotocol/tasks`
extension) and the handshake-era region (core tasks, 2025-11-25)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .test_operations import cancel, get, header, operation_of

CALENDARS = ["ana@contoso.example", "bo@contoso.example", "cy@contoso.example"]
WEEKDAYS = {"window_start": "2030-01-07T00:00:00Z", "window_end": "2030-01-08T23:00:00Z"}  # Mon-Tue
WEEKEND = {"window_start": "2030-01-05T00:00:00Z", "window_end": "2030-01-06T23:00:00Z"}  # Sat-Sun
FIND = "findCommonSlot"


def slot(scan_seconds: float, window: dict[str, str] = WEEKDAYS) -> dict[str, Any]:
    return {"calendars": CALENDARS, "scan_seconds": scan_seconds, **window}


@pytest.fixture(params=["modern", "legacy"])
def era(request, stack) -> str:
    return request.param


@pytest.fixture
async def scheduler(era, stack, configure) -> Any:
    region = stack.east if era == "modern" else stack.legacy
    await configure(endpoints=[region.mcp_url])
    return region


async def until_done(functions: Any, operation_id: str, limit: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        reply = await get(functions, operation_id, {})
        assert reply.status == 200, reply.body
        if reply.json["status"] not in ("NotStarted", "Running") or loop.time() > end:
            return reply
        await asyncio.sleep(0.3)


async def test_respond_async_makes_an_operation_that_succeeds(scheduler, functions):
    started = await functions.call_tool(FIND, slot(1.5), headers={"Prefer": "respond-async"})

    assert started.status == 202, started.body
    assert header(started, "Preference-Applied") == "respond-async"
    operation_id = operation_of(started)
    running = await get(functions, operation_id, {})
    assert running.json["status"] in ("Running", "Succeeded")

    done = await until_done(functions, operation_id)

    body = done.json
    assert body["status"] == "Succeeded", body
    assert body["result"]["tool"] == FIND
    assert body["result"]["structuredContent"]["calendars_checked"] == 3
    assert body["result"]["structuredContent"]["start_time"].startswith("2030-01-07T")


async def test_without_prefer_an_optional_task_tool_is_an_ordinary_call(scheduler, functions):
    reply = await functions.call_tool(FIND, slot(0.2))

    assert reply.status == 200, reply.body
    assert header(reply, "Operation-Location") is None
    assert reply.json["structuredContent"]["calendars_checked"] == 3


async def test_a_tool_error_in_a_task_is_failed_with_tool_error(scheduler, functions):
    started = await functions.call_tool(FIND, slot(0.2, WEEKEND), headers={"Prefer": "respond-async"})
    assert started.status == 202, started.body

    done = await until_done(functions, operation_of(started))

    assert done.json["status"] == "Failed", done.json
    assert done.json["error"]["type"].endswith(":tool-error")
    assert "no common free slot" in done.json["error"]["content"][0]["text"]


async def test_cancel_a_running_search(scheduler, functions):
    started = await functions.call_tool(FIND, slot(8), headers={"Prefer": "respond-async"})
    operation_id = operation_of(started)

    canceled = await cancel(functions, operation_id, {})

    assert canceled.status == 200, canceled.body
    assert canceled.json["status"] == "Canceled"
    assert (await cancel(functions, operation_id, {})).status == 409


async def test_respond_async_with_wait_answers_the_result_when_it_is_ready_in_time(scheduler, functions):
    """RFC 7240 4.3: `respond-async, wait=N`: the answer itself if ready within N seconds, else 202."""
    quick = await functions.call_tool(FIND, slot(0.3), headers={"Prefer": "respond-async, wait=5"})
    slow = await functions.call_tool(FIND, slot(4), headers={"Prefer": "respond-async, wait=1"})

    assert quick.status == 200, quick.body
    assert quick.json["structuredContent"]["calendars_checked"] == 3
    assert header(quick, "Preference-Applied") == "respond-async, wait=5"
    assert slow.status == 202, slow.body
    assert header(slow, "Preference-Applied") == "respond-async, wait=1"
    await cancel(functions, operation_of(slow), {})


async def test_progress_shows_as_percent_complete_where_the_server_sends_it(scheduler, era, functions):
    """2025-11-25: the task's progress token stays valid, and the devstack sends `notifications/progress`
    with a total on the session's stream. 2026-07-28 tasks carry no progress: `statusMessage` only."""
    calendars = [f"p{n}@contoso.example" for n in range(8)]
    arguments = {"calendars": calendars, "scan_seconds": 4, **WEEKDAYS}
    started = await functions.call_tool(FIND, arguments, headers={"Prefer": "respond-async"})
    assert started.status == 202, started.body
    operation_id = operation_of(started)

    seen: list[dict[str, Any]] = []
    for _ in range(30):
        reply = await get(functions, operation_id, {})
        seen.append(reply.json.get("progress") or {})
        if reply.json["status"] != "Running":
            break
        await asyncio.sleep(0.4)

    percents = [p["percentComplete"] for p in seen if "percentComplete" in p]
    messages = {p.get("statusMessage") for p in seen} - {None}
    assert any("of 8 calendars" in message for message in messages), messages
    if era == "legacy":
        assert any(0 < percent < 100 for percent in percents), seen
        assert percents == sorted(percents)
    else:
        assert percents == []
