"""Server-Sent Events for callers that send `Accept: text/event-stream`: progress, then the answer.

`POST /api/tools/{name}` runs exactly as without the header, in a task of its own, while the
`tools/call` progress (mcp_bridge.calls.progress) is relayed as `progress` events. The answer the
call would have had becomes the last event: `result` (the 200 body) or `problem` (the RFC 9457
body, its `status` inside). A call that fails before any progress arrives (bad input, a refused
role, an unknown tool) keeps its ordinary problem+json answer and status: nothing was streamed yet.

Events are `event: <name>` and one `data:` line of compact JSON. A comment line goes out every
`KEEP_ALIVE_SECONDS` of silence, so proxies do not take a slow tool for a dead connection. A caller
that goes away does not cancel the call (as on the ordinary path): it runs to its end and is audited.
Events are sent only when the caller prefers them to JSON (`prefers_events`): MCP clients accept
both and keep getting JSON.

Streaming needs HTTP streams on (mcp_bridge.functions.http_streams); with them off, the header is
ignored and the ordinary answer goes out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from . import http_streams

_LOGGER = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
KEEP_ALIVE_SECONDS = 15.0
FIRST_EVENT_GRACE_SECONDS = 1.0
"""How long an answer may take before the stream starts: a quick refusal keeps its own status."""


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its name and its JSON data."""

    name: str
    data: Any

    def encode(self) -> bytes:
        payload = bytes(self.data) if isinstance(self.data, bytes | bytearray) else _compact(self.data)
        data = b"".join(b"data: " + line + b"\n" for line in payload.splitlines() or [b""])
        return b"event: " + self.name.encode() + b"\n" + data + b"\n"


KEEP_ALIVE = b": keep-alive\n\n"
_RUNNING: set[asyncio.Task[Any]] = set()


class EventStreamResponse(http_streams.StreamedAnswer):
    """A 200 `text/event-stream` whose body is `events`, sent as they come (HTTP streams only)."""

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        super().__init__(
            events, mimetype=MEDIA_TYPE, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )


def requested(req: func.HttpRequest) -> bool:
    """Whether the caller asked for events and this app can stream them."""
    if not http_streams.enabled():  # the usual case: one flag, nothing else on the ordinary path
        return False
    accept = req.headers.get("accept")
    return accept is not None and prefers_events(accept)


def prefers_events(accept: str) -> bool:
    """Whether `accept` ranks `text/event-stream` above JSON (RFC 9110 q-values; a tie keeps JSON).

    `Accept: text/event-stream` streams; `application/json, text/event-stream` (what MCP clients
    send) and `*/*` keep the ordinary answer.
    """
    lowered = accept.lower()
    if MEDIA_TYPE not in lowered:  # the usual case, without parsing
        return False
    events = json_q = 0.0
    events_rank = json_rank = -1
    for part in lowered.split(","):
        media, _, parameters = part.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip()
        events_match = {"text/event-stream": 2, "text/*": 1, "*/*": 0}.get(media, -1)
        json_match = {"application/json": 2, "application/*": 1, "*/*": 0}.get(media, -1)
        if events_match > events_rank:
            events, events_rank = quality, events_match
        if json_match > json_rank:
            json_q, json_rank = quality, json_match
    return events > 0 and events > json_q


async def relay_call(run: Callable[[], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Run the ordinary handler `run` with its progress relayed; see the module docstring."""
    from ..calls.progress import Progress, watching

    queue: asyncio.Queue[Progress] = asyncio.Queue()

    async def watched() -> func.HttpResponse:
        with watching(queue.put_nowait):
            return await run()

    call = asyncio.create_task(watched(), name="event-stream-call")
    _RUNNING.add(call)  # held here: a caller that goes away must not leave the call to the collector
    call.add_done_callback(_RUNNING.discard)
    first = asyncio.create_task(queue.get())
    done, _ = await asyncio.wait(
        {call, first}, timeout=FIRST_EVENT_GRACE_SECONDS, return_when="FIRST_COMPLETED"
    )
    if call in done and first not in done and call.result().status_code != 200:
        first.cancel()
        return call.result()  # refused or failed before anything was streamed: the ordinary problem
    return EventStreamResponse(_call_events(call, queue, first))


async def _call_events(
    call: asyncio.Task[func.HttpResponse], queue: asyncio.Queue[Any], first: asyncio.Task[Any]
) -> AsyncIterator[bytes]:
    pending_get: asyncio.Task[Any] = first
    try:
        while True:
            done, _ = await asyncio.wait(
                {call, pending_get}, timeout=KEEP_ALIVE_SECONDS, return_when="FIRST_COMPLETED"
            )
            if pending_get in done:
                yield Event("progress", pending_get.result().to_json()).encode()
                pending_get = asyncio.create_task(queue.get())
                continue
            if call in done:
                break
            yield KEEP_ALIVE
        while not queue.empty():  # progress that arrived with the answer still goes first
            yield Event("progress", queue.get_nowait().to_json()).encode()
        yield answer_event(call.result()).encode()
    finally:
        pending_get.cancel()


def answer_event(answer: func.HttpResponse) -> Event:
    """The last event: the 200 body as `result`; a 202 (the call became a long-running operation) as
    `operation`, its status monitor (follow it at `/api/operations/{id}`); anything else as `problem`."""
    name = {200: "result", 202: "operation"}.get(answer.status_code, "problem")
    return Event(name, answer.get_body())


async def events_of(snapshots: AsyncIterator[Event]) -> func.HttpResponse:
    """A stream of ready-made events (an operation's status changes), with keep-alives in the gaps."""
    return EventStreamResponse(_with_keep_alive(snapshots))


async def _with_keep_alive(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    iterator = events.__aiter__()
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_SECONDS)
            if not done:
                yield KEEP_ALIVE
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None if done else pending
            yield event.encode()
    finally:
        if pending is not None:
            pending.cancel()


TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Canceled"})
MonitorRead = Callable[[], Awaitable[tuple[dict[str, Any], float]]]
"""Reads an operation's status monitor once: its JSON body, and the seconds until the next read."""


async def poll_monitor(
    read: MonitorRead, first: tuple[dict[str, Any], float]
) -> AsyncIterator[dict[str, Any]]:
    """The status monitor, read again after each `Retry-After`, until its status is terminal.

    `first` is the read made before the stream started (so a 404 stays an ordinary 404). Reads go
    through the operations' own poller, which asks the server at most once per poll interval per
    instance however many callers watch.
    """
    monitor, wait = first
    while True:
        yield monitor
        if monitor.get("status") in TERMINAL_STATUSES:
            return
        await asyncio.sleep(wait)
        monitor, wait = await read()


async def monitor_events(
    snapshots: AsyncIterator[dict[str, Any]], *, instance: str | None = None
) -> AsyncIterator[Event]:
    """An operation's events: a `progress` event per changed status monitor (without its payload),
    then `result` (the monitor's `result`) or `problem` (its `error`; the monitor itself if it has none).

    A read that fails once the stream has started (the region holding the task unreachable, ...)
    ends it with that `problem`; the caller reads the monitor again after its `Retry-After`.
    """
    from ..problems import Problem

    last: dict[str, Any] | None = None
    try:
        async for monitor in snapshots:
            status = monitor.get("status")
            if status in TERMINAL_STATUSES:
                if status == "Succeeded" and "result" in monitor:
                    yield Event("result", monitor["result"])
                else:
                    yield Event("problem", monitor.get("error") or monitor)
                return
            progress = {key: value for key, value in monitor.items() if key not in ("result", "error")}
            if progress != last:
                yield Event("progress", progress)
                last = progress
    except Problem as problem:
        yield Event("problem", problem.to_dict(instance))


def _compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
