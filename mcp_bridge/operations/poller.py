"""Reading a task: at most one `tasks/get` per operation per poll interval on this instance.

However many callers poll one operation (a dashboard, retries, 50 browser tabs), they share one
reading: concurrent polls wait on the one request in flight (single-flight), and later polls are
answered from that reading until the server's poll interval has passed. A failed reading is kept
for the same interval, so an unreachable region is not hammered either.

On 2025-11-25 a `completed` or `failed` task's result comes from `tasks/result`, which blocks until
the task is terminal: it is asked only after `tasks/get` said so, inside the same single flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx2

from ..upstream import task_progress, task_wire
from ..upstream.task_wire import TaskRoute, TaskSnapshot, TaskWireError

MIN_INTERVAL_SECONDS = 0.2
MAX_INTERVAL_SECONDS = 30.0
DEFAULT_INTERVAL_SECONDS = 1.0
MAX_FOLLOWED = 10_000
"""Readings kept per instance (least recently polled dropped first)."""


@dataclass
class _Reading:
    fresh_until: float = 0.0
    snapshot: TaskSnapshot | None = None
    error: TaskWireError | None = None
    pending: asyncio.Task[TaskSnapshot] | None = None


def interval_seconds(poll_interval_ms: int | None) -> float:
    if not poll_interval_ms:
        return DEFAULT_INTERVAL_SECONDS
    return min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, poll_interval_ms / 1000))


class TaskPoller:
    """One per worker process: the shared readings of every task this instance follows."""

    def __init__(self, http: httpx2.AsyncClient, *, timeout: float) -> None:
        self._http = http
        self._timeout = timeout
        self._readings: OrderedDict[str, _Reading] = OrderedDict()
        self.gets = 0
        """`tasks/get` requests sent (the bench's `task_polls_per_interval`)."""

    async def read(
        self, key: str, route: TaskRoute, task_id: str, *, interval_ms: int | None
    ) -> TaskSnapshot:
        """The task's state, fresh within its poll interval; raises `TaskWireError`."""
        reading = self._readings.get(key)
        if reading is None:
            reading = self._readings[key] = _Reading()
            while len(self._readings) > MAX_FOLLOWED:
                self._readings.popitem(last=False)
        else:
            self._readings.move_to_end(key)
        if reading.pending is None and time.monotonic() < reading.fresh_until:
            if reading.error is not None:
                raise reading.error
            assert reading.snapshot is not None
            return reading.snapshot
        if reading.pending is None:
            reading.pending = asyncio.create_task(
                self._fetch(key, reading, route, task_id, interval_ms), context=contextvars.Context()
            )
        return await asyncio.shield(reading.pending)

    def forget(self, key: str) -> None:
        """Stop keeping a reading (the operation is finished and recorded)."""
        self._readings.pop(key, None)

    async def _fetch(
        self, key: str, reading: _Reading, route: TaskRoute, task_id: str, interval_ms: int | None
    ) -> TaskSnapshot:
        interval = interval_ms
        try:
            self.gets += 1
            snapshot = await task_wire.get(self._http, route, task_id, within=self._timeout)
            if snapshot.status in ("completed", "failed") and snapshot.result is None and not route.modern:
                try:
                    snapshot.result = await task_wire.result(self._http, route, task_id, within=self._timeout)
                except TaskWireError as error:
                    if snapshot.status == "completed" or error.kind in ("unreachable", "unknown"):
                        raise
                    snapshot.error = {"code": error.code, "message": str(error)}
            snapshot.progress = task_progress.latest(task_progress.token_for(key))
            reading.snapshot, reading.error = snapshot, None
            interval = snapshot.poll_interval_ms or interval_ms
            return snapshot
        except TaskWireError as error:
            reading.error = error
            raise
        finally:
            reading.fresh_until = time.monotonic() + interval_seconds(interval)
            reading.pending = None
