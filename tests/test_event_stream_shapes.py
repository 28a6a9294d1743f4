"""The event stream's shapes without a server: SSE framing, and an operation's monitor as events.

(The streams over real HTTP are tests/test_event_stream.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mcp_bridge.calls.progress import Progress
from mcp_bridge.functions import event_stream
from mcp_bridge.functions.event_stream import Event, monitor_events, poll_monitor


def test_an_event_is_a_name_and_one_data_line_per_line():
    assert Event("progress", {"progress": 1}).encode() == b'event: progress\ndata: {"progress":1}\n\n'
    assert Event("result", b'{"a":\n1}').encode() == b'event: result\ndata: {"a":\ndata: 1}\n\n'
    assert Event("problem", {"title": "é"}).encode().decode() == 'event: problem\ndata: {"title":"é"}\n\n'


def test_progress_says_percent_only_when_the_server_gives_a_total():
    assert Progress(2, 8, "two").to_json() == {
        "progress": 2,
        "total": 8,
        "percentComplete": 25.0,
        "message": "two",
    }
    assert Progress(3).to_json() == {"progress": 3}
    assert Progress(5, 0).percent_complete is None


async def _snapshots(*monitors: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for monitor in monitors:
        yield monitor


async def _collect(events: AsyncIterator[Event]) -> list[tuple[str, Any]]:
    return [(event.name, event.data) async for event in events]


async def test_a_monitor_becomes_progress_on_each_change_then_the_result():
    running = {"id": "op", "status": "Running", "percentComplete": 50.0}
    events = await _collect(
        monitor_events(
            _snapshots(
                {"id": "op", "status": "NotStarted"},
                running,
                dict(running),  # unchanged: no event
                {"id": "op", "status": "Succeeded", "result": {"tool": "t"}},
            )
        )
    )
    assert events == [
        ("progress", {"id": "op", "status": "NotStarted"}),
        ("progress", running),
        ("result", {"tool": "t"}),
    ]


async def test_failed_and_canceled_end_with_a_problem():
    error = {"type": "urn:problem:tool-error", "status": 422}
    failed = await _collect(monitor_events(_snapshots({"status": "Failed", "error": error})))
    canceled = await _collect(monitor_events(_snapshots({"id": "op", "status": "Canceled"})))
    assert failed == [("problem", error)]
    assert canceled == [("problem", {"id": "op", "status": "Canceled"})]


async def test_the_monitor_is_read_again_after_retry_after_until_terminal():
    reads = iter(
        [({"status": "Running", "percentComplete": 60.0}, 0.01), ({"status": "Succeeded", "result": {}}, 1)]
    )

    async def read() -> tuple[dict[str, Any], float]:
        return next(reads)

    seen = [m async for m in poll_monitor(read, ({"status": "Running"}, 0.01))]
    assert [m["status"] for m in seen] == ["Running", "Running", "Succeeded"]


async def test_a_quiet_stream_sends_keep_alive_comments(monkeypatch):
    monkeypatch.setattr(event_stream, "KEEP_ALIVE_SECONDS", 0.05)

    async def slow() -> AsyncIterator[Event]:
        await asyncio.sleep(0.12)
        yield Event("result", {})

    answer = await event_stream.events_of(slow())
    chunks = [chunk async for chunk in answer.chunks]  # type: ignore[attr-defined]
    assert chunks[:2] == [event_stream.KEEP_ALIVE, event_stream.KEEP_ALIVE]
    assert chunks[-1] == b"event: result\ndata: {}\n\n"


def test_events_only_when_preferred_over_json():
    prefers = event_stream.prefers_events
    assert prefers("text/event-stream")
    assert prefers("text/event-stream, */*;q=0.1")
    assert prefers("application/json;q=0.5, text/event-stream")
    assert not prefers("application/json, text/event-stream")  # what MCP clients send: a tie keeps JSON
    assert not prefers("*/*")
    assert not prefers("application/json")
    assert not prefers("text/event-stream;q=0")
    assert not prefers("text/event-stream;q=oops, application/json;q=0.1")


async def test_a_read_that_fails_mid_stream_ends_it_with_that_problem():
    from mcp_bridge.problems import Unavailable

    async def then_unreachable() -> AsyncIterator[dict[str, Any]]:
        yield {"id": "op", "status": "Running"}
        raise Unavailable("the region holding the task is unreachable")

    events = await _collect(monitor_events(then_unreachable(), instance="/api/operations/op"))
    assert events[0] == ("progress", {"id": "op", "status": "Running"})
    assert events[1][0] == "problem" and events[1][1]["status"] == 503
    assert events[1][1]["instance"] == "/api/operations/op"
