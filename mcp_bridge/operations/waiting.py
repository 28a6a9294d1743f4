"""Waiting for a task that was just started, up to the call's deadline: the 2025-11-25 blocking
`tasks/result`, or 2026-07-28 polls at the server's interval through the shared poller."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from ..upstream import task_wire
from ..upstream.task_wire import TaskSnapshot, TaskWireError
from . import ids
from .poller import interval_seconds
from .records import OperationRecord

if TYPE_CHECKING:
    import httpx2

    from .poller import TaskPoller


async def reread(
    poller: TaskPoller, operation_id: str, record: OperationRecord, task: TaskSnapshot
) -> TaskSnapshot:
    try:
        return await poller.read(
            ids.digest(operation_id), record.route, record.task_id, interval_ms=record.poll_interval_ms
        )
    except TaskWireError:
        return task


async def follow(
    poller: TaskPoller,
    http: httpx2.AsyncClient,
    operation_id: str,
    record: OperationRecord,
    snapshot: TaskSnapshot,
    wait: float,
) -> TaskSnapshot:
    """The task's state after waiting up to `wait` seconds for its end."""
    if snapshot.terminal:
        return snapshot
    if not record.route.modern:
        return await await_result(http, record, snapshot, wait)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not snapshot.terminal:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.sleep(
            min(interval_seconds(snapshot.poll_interval_ms or record.poll_interval_ms), remaining)
        )
        if loop.time() >= deadline:
            break
        try:
            snapshot = await poller.read(
                ids.digest(operation_id),
                record.route,
                record.task_id,
                interval_ms=record.poll_interval_ms,
            )
        except TaskWireError:
            break  # the 202 answers now; the status monitor says what became of it
    return snapshot


async def await_result(
    http: httpx2.AsyncClient, record: OperationRecord, snapshot: TaskSnapshot, wait: float
) -> TaskSnapshot:
    """2025-11-25: `tasks/result` blocks until the task ends, so waiting costs one request and
    ends the moment the task does, with no poll interval lost. A request for input met on the way
    is left unanswered (the task keeps waiting for it) and shown; the caller gets the 202."""
    try:
        raw = await task_wire.result(http, record.route, record.task_id, within=wait, stop_at_input=True)
    except TaskWireError as error:
        if error.kind == "input":
            return replace(
                snapshot,
                status="input_required",
                input_requests={"asked": {"method": "elicitation/create", "params": {"message": str(error)}}},
            )
        return snapshot  # not ended in time, or unreadable now: the 202, and the monitor tells
    failed = raw.get("isError") is True
    return replace(snapshot, status="failed" if failed else "completed", result=raw)
