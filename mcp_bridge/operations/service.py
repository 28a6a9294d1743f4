"""Operations: start a tool call as a task, read its status monitor, cancel it.

One `Operations` per worker process (`operations_for`). Starting admits the caller against its
limit, creates the task (`calls.tasks`), records the operation, then, unless the caller asked for
`respond-async`, follows the task until the call's ordinary deadline (or `Prefer: wait=N`): a task
that ends in time is answered as a synchronous call would be, one that does not gets the 202.

Every read of an unfinished operation asks the poller, which sends at most one `tasks/get` per
poll interval per instance. A task the server no longer knows ends the operation `Failed`
(`task-lost`) on every instance; an unreachable region answers 503 and changes nothing. Nothing
here ever starts a task again: only the caller can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..callers.principal import Caller
from ..calls.tasks import start_task
from ..problems import (
    OperationFinished,
    OperationNotFound,
    RegionUnreachable,
    TaskLost,
    UpstreamFailed,
)
from ..upstream import task_progress, task_wire
from ..upstream.task_wire import TaskSnapshot, TaskWireError
from ..upstream.wire import keep_session
from . import events, ids, monitor, waiting
from .poller import TaskPoller, interval_seconds
from .records import OperationRecord, OperationStore

if TYPE_CHECKING:
    from .. import models
    from ..calls.bridge import SchedulerBridge
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

NOT_FOUND = "no operation with this id exists for this caller"
"""The one answer for unknown, foreign, malformed and expired ids: none of them tells anything."""


@dataclass
class Started:
    """What `start` gave: a finished call (`record` terminal, or `result` from a server that answered
    at once), or a running operation to answer with 202."""

    operation_id: str | None
    record: OperationRecord | None
    result: dict[str, Any] | None = None
    snapshot: TaskSnapshot | None = None


MayCall = Callable[[str], bool]


def anyone(_tool: str) -> bool:
    return True


def owner_of(caller: Caller) -> str:
    """Who owns an operation: the principal, or "key" for function-key callers (as idempotency)."""
    return f"principal:{caller.id}" if caller.is_principal and caller.id else "key"


class Operations:
    def __init__(self, bridge: SchedulerBridge, settings: BridgeSettings, store: OperationStore) -> None:
        self.bridge = bridge
        self.settings = settings
        self.store = store
        self.poller = TaskPoller(bridge.http_client, timeout=min(10.0, settings.scheduler_timeout_seconds))

    async def start(
        self, name: str, arguments: dict[str, Any], *, caller: Caller, wait: float | None, instance: str
    ) -> Started:
        """Start `name` as a task; with `wait` (seconds) follow it that long before answering 202."""
        settings = self.settings
        began = asyncio.get_running_loop().time()
        owner = owner_of(caller)
        operation_id = ids.new_id()
        retention = settings.operations_retention_seconds
        expires_at = time.time() + retention
        await self.store.admit(
            owner, operation_id, limit=settings.operations_max_per_caller, expires_at=expires_at
        )
        try:
            started = await start_task(
                self.bridge,
                name,
                arguments,
                ttl_ms=int(retention * 1000),
                progress_token=task_progress.token_for(ids.digest(operation_id)),
            )
        except BaseException:
            await _quietly(self.store.release(owner, operation_id))
            raise
        if started.task is None:
            await self.store.release(owner, operation_id)
            assert started.result is not None
            if started.result.is_error:
                raise monitor.tool_error(name, started.endpoint, started.result)
            return Started(None, None, result=monitor.result_body(name, started.endpoint, started.result))
        task = started.task
        if started.route.session_id:
            keep_session(started.route.session_id)
        created = task.created_at or monitor.now_iso()
        record = OperationRecord(
            owner=owner,
            upstream=settings.upstream_name,
            tool=name,
            endpoint=started.endpoint,
            protocol_version=started.route.protocol_version,
            session_id=started.route.session_id,
            task_id=task.task_id,
            created_at=created,
            updated_at=task.last_updated_at or created,
            expires_at=expires_at,
            poll_interval_ms=task.poll_interval_ms or 1000,
            status_message=task.status_message,
        )
        etag = await self.store.create(operation_id, record)
        events.record(
            "started", operation_id=operation_id, tool=name, caller=caller, outcome="running", status=202
        )
        snapshot = task
        if task.terminal and task.status != "cancelled" and task.result is None and task.error is None:
            snapshot = await waiting.reread(
                self.poller, operation_id, record, task
            )  # ended at once: fetch how
        if wait and (left := wait - (asyncio.get_running_loop().time() - began)) > 0:
            # to the call's deadline
            snapshot = await waiting.follow(
                self.poller, self.bridge.http_client, operation_id, record, snapshot, left
            )
        if snapshot.status == "input_required" and snapshot.input_requests:
            asked = next(iter(snapshot.input_requests.values()), {}).get("params", {}).get("message")
            record = record.model_copy(update={"input_message": asked})
            etag = await self.store.update(operation_id, record, etag)
        if snapshot.terminal:
            record = await self._finish(operation_id, record, etag, snapshot, caller, instance)
        return Started(operation_id, record, snapshot=snapshot)

    async def read(
        self, operation_id: str, *, caller: Caller, instance: str, may_call: MayCall = anyone
    ) -> tuple[models.OperationMonitor, OperationRecord]:
        """The status monitor (raises 404 for anything but the owner's live or finished operation)."""
        record, etag = await self._owned(operation_id, caller, may_call)
        if record.terminal:
            return monitor.view(operation_id, record, None), record
        key = ids.digest(operation_id)
        gets = self.poller.gets
        try:
            snapshot = await self.poller.read(
                key, record.route, record.task_id, interval_ms=record.poll_interval_ms
            )
        except TaskWireError as error:
            if error.kind == "lost":
                lost = monitor.fail(
                    record,
                    TaskLost(
                        f"the Scheduler no longer knows this operation's task ({error}); "
                        "it was not started again",
                        tool=record.tool,
                        endpoint=record.endpoint,
                    ),
                    instance,
                )
                record = await self._store_end(operation_id, lost, etag, caller)
                return monitor.view(operation_id, record, None), record
            if error.kind == "rpc":
                raise UpstreamFailed(
                    f"reading the task failed: {error}",
                    tool=record.tool,
                    endpoint=record.endpoint,
                    jsonrpc_code=error.code,
                ) from None
            raise RegionUnreachable(
                f"the region holding this operation ({record.endpoint}) cannot be reached; "
                "the task may still be running there. Poll again later.",
                retry_after=max(error.retry_after or 0, interval_seconds(record.poll_interval_ms)),
                endpoint=record.endpoint,
            ) from None
        if self.poller.gets != gets:
            events.record(
                "polled", operation_id=operation_id, tool=record.tool, caller=caller, outcome=snapshot.status
            )
        if snapshot.terminal:
            record = await self._finish(operation_id, record, etag, snapshot, caller, instance)
        return monitor.view(operation_id, record, snapshot), record

    async def cancel(
        self, operation_id: str, *, caller: Caller, instance: str, may_call: MayCall = anyone
    ) -> tuple[models.OperationMonitor, OperationRecord]:
        """`tasks/cancel`; 409 when the operation has already finished."""
        record, etag = await self._owned(operation_id, caller, may_call)
        if record.terminal:
            raise OperationFinished(
                f"the operation has already finished ({record.status})", status_now=record.status
            )
        events.record(
            "canceled", operation_id=operation_id, tool=record.tool, caller=caller, outcome="requested"
        )
        message = None
        try:
            snapshot = await task_wire.cancel(
                self.bridge.http_client, record.route, record.task_id, within=10.0
            )
        except TaskWireError as error:
            if error.kind in ("unreachable", "unknown", "timeout"):
                raise RegionUnreachable(
                    f"the region holding this operation ({record.endpoint}) cannot be reached to cancel it; "
                    "try again later",
                    retry_after=interval_seconds(record.poll_interval_ms),
                    endpoint=record.endpoint,
                ) from None
            if error.kind == "lost" or "terminal" in str(error).lower():
                _, record = await self.read(operation_id, caller=caller, instance=instance)
                if record.terminal:
                    raise OperationFinished(
                        f"the operation has already finished ({record.status})", status_now=record.status
                    ) from None
                raise RegionUnreachable(
                    f"the Scheduler did not take the cancel ({error}); try again later",
                    retry_after=interval_seconds(record.poll_interval_ms),
                    endpoint=record.endpoint,
                ) from None
            # The server cannot cancel tasks (e.g. no tasks/cancel handler): the bridge stops
            # following the task, and says so; the server may run it until its TTL.
            message = f"the Scheduler could not cancel the task ({error}); the bridge stopped following it"
            snapshot = None
        if snapshot is not None and snapshot.terminal and snapshot.status != "cancelled":
            record = await self._finish(operation_id, record, etag, snapshot, caller, instance)
            raise OperationFinished(
                f"the operation had already finished ({record.status})", status_now=record.status
            )
        canceled = record.model_copy(
            update={
                "status": "Canceled",
                "updated_at": monitor.now_iso(),
                "status_message": message
                or (snapshot.status_message if snapshot else None)
                or "canceled by its caller",
            }
        )
        record = await self._store_end(operation_id, canceled, etag, caller)
        return monitor.view(operation_id, record, None), record

    async def _owned(
        self, operation_id: str, caller: Caller, may_call: MayCall
    ) -> tuple[OperationRecord, str]:
        """The caller's own operation, whose tool it may still call; anything else is the one 404."""
        if not ids.well_formed(operation_id):
            raise OperationNotFound(NOT_FOUND)
        found = await self.store.read(operation_id)
        if (
            found is None
            or found[0].owner != owner_of(caller)
            or found[0].upstream != self.settings.upstream_name  # another upstream's: its routes only
            or not may_call(found[0].tool)
        ):
            raise OperationNotFound(NOT_FOUND)
        return found

    async def _finish(
        self,
        operation_id: str,
        record: OperationRecord,
        etag: str,
        snapshot: TaskSnapshot,
        caller: Caller,
        instance: str,
    ) -> OperationRecord:
        return await self._store_end(operation_id, monitor.conclude(record, snapshot, instance), etag, caller)

    async def _store_end(
        self, operation_id: str, ended: OperationRecord, etag: str, caller: Caller
    ) -> OperationRecord:
        record = await self.store.finish(operation_id, ended, etag)
        self.poller.forget(ids.digest(operation_id))
        task_progress.forget(task_progress.token_for(ids.digest(operation_id)))
        await _quietly(self.store.release(record.owner, operation_id))
        slug = str((record.error or {}).get("type", "")).rsplit(":", 1)[-1] or record.status.lower()
        events.record(
            "finished", operation_id=operation_id, tool=record.tool, caller=caller,
            outcome=slug, status=(record.error or {}).get("status", 200),
        )  # fmt: skip
        return record


async def _quietly(step: Any) -> None:
    """Best effort: the per-caller index also forgets entries when they expire."""
    try:
        await step
    except Exception as exc:
        _LOGGER.info("Updating the per-caller operation index failed: %s", type(exc).__name__)


_operations: dict[str, Operations] = {}


async def operations_for(bridge: SchedulerBridge, settings: BridgeSettings) -> Operations:
    """The process's one `Operations` per upstream (`settings.upstream_name`), rebuilt when the
    bridge or the store changes (tests)."""
    from ..idempotency.shared import store_for

    store = await store_for(settings)
    current = _operations.get(settings.upstream_name)
    if current is None or current.bridge is not bridge or current.store.store is not store:
        current = _operations[settings.upstream_name] = Operations(bridge, settings, OperationStore(store))
    return current
