"""Where an operation lives: one record per operation in the store the idempotency keys use.

A record, not a signed or encrypted id (docs/long-running.md, "Where an operation lives"): the
route back to the task includes the MCP session id, which must never reach the caller even
encrypted; the end of an operation (its result, a cancel, "the task is lost") must read the same on
every instance after the server has forgotten the task; and a record can expire and be counted
(the per-caller limit) without a key to keep and rotate.

Records are written at the start and once at the end (and on cancel); polls only read. Every
write is conditional on the etag read, so two instances finishing the same operation agree.
A per-caller index record holds the caller's live operations, for `OPERATIONS_MAX_PER_CALLER`.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..idempotency.stores import Changed, Exists, Store, StoreUnavailable
from ..problems import IdempotencyStoreUnavailable, TooManyOperations
from ..upstream.task_wire import TaskRoute
from . import ids

Status = Literal["NotStarted", "Running", "Succeeded", "Failed", "Canceled"]
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed", "Canceled"})
_INDEX_RETRIES = 4


class OperationRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    owner: str
    upstream: str = "scheduler"
    """Which upstream (MCP_UPSTREAMS) runs the task: its routes alone show the operation."""
    tool: str
    endpoint: str
    protocol_version: str
    session_id: str | None = None
    task_id: str
    created_at: str
    updated_at: str
    expires_at: float
    poll_interval_ms: int = 1000
    status: Status = "Running"
    status_message: str | None = None
    input_message: str | None = None
    """What the task asked for, as first seen (2025-11-25 shows it only on the `tasks/result` stream)."""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def route(self) -> TaskRoute:
        return TaskRoute(self.endpoint, self.protocol_version, self.session_id)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class OperationStore:
    """Operation records (and per-caller indexes) in an idempotency `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, operation_id: str, record: OperationRecord) -> str:
        """Store a new record; returns its etag, for the one write at its end."""
        try:
            return await self.store.create(
                ids.record_name(operation_id), record.encode(), expires_at=record.expires_at
            )
        except Exists:  # 192 random bits never collide; a stored record is never overwritten
            raise RuntimeError("operation id collision") from None
        except StoreUnavailable:
            raise _unavailable() from None

    async def read(self, operation_id: str) -> tuple[OperationRecord, str] | None:
        """The record and its etag; None when absent or expired."""
        try:
            found = await self.store.read(ids.record_name(operation_id))
        except StoreUnavailable:
            raise _unavailable() from None
        if found is None:
            return None
        data, etag = found
        record = OperationRecord.model_validate_json(data)
        if record.expires_at <= time.time():
            return None
        return record, etag

    async def update(self, operation_id: str, record: OperationRecord, etag: str) -> str:
        """Replace a running operation's record (it learnt something); returns the new etag."""
        try:
            return await self.store.replace(
                ids.record_name(operation_id), record.encode(), etag=etag, expires_at=record.expires_at
            )
        except (Changed, StoreUnavailable):
            raise _unavailable() from None

    async def finish(self, operation_id: str, record: OperationRecord, etag: str) -> OperationRecord:
        """Write the terminal `record`; if another instance wrote first, the stored end wins."""
        try:
            await self.store.replace(
                ids.record_name(operation_id), record.encode(), etag=etag, expires_at=record.expires_at
            )
            return record
        except Changed:
            stored = await self.read(operation_id)
            return stored[0] if stored is not None else record
        except StoreUnavailable:
            raise _unavailable() from None

    # -- the per-caller limit ---------------------------------------------------------------------

    async def admit(self, owner: str, operation_id: str, *, limit: int, expires_at: float) -> None:
        """Count `operation_id` among `owner`'s live operations, or refuse with 429 at `limit`."""

        def add(live: dict[str, float]) -> dict[str, float]:
            if len(live) >= limit:
                soonest = min(live.values())
                raise TooManyOperations(
                    f"this caller already has {len(live)} operations in progress (the limit is {limit}); "
                    "wait for one to finish, or cancel one",
                    retry_after=min(60.0, max(1.0, soonest - time.time())),
                    limit=limit,
                )
            return {**live, ids.digest(operation_id): expires_at}

        await self._update_index(owner, add)

    async def release(self, owner: str, operation_id: str) -> None:
        key = ids.digest(operation_id)
        await self._update_index(owner, lambda live: {k: v for k, v in live.items() if k != key})

    async def _update_index(self, owner: str, change: Any) -> None:
        name = "operations/callers/" + hashlib.sha256(owner.encode()).hexdigest()
        try:
            for _ in range(_INDEX_RETRIES):
                found = await self.store.read(name)
                now = time.time()
                live: dict[str, float] = {}
                if found is not None:
                    live = {k: v for k, v in json.loads(found[0]).items() if v > now}
                updated = change(live)
                expires = max(updated.values(), default=now + 60)
                data = json.dumps(updated).encode()
                try:
                    if found is None:
                        await self.store.create(name, data, expires_at=expires)
                    else:
                        await self.store.replace(name, data, etag=found[1], expires_at=expires)
                    return
                except (Exists, Changed):
                    continue  # another start or end raced this one: read again
        except StoreUnavailable:
            raise _unavailable() from None
        raise _unavailable()


def _unavailable() -> IdempotencyStoreUnavailable:
    return IdempotencyStoreUnavailable(
        "the operations store (the idempotency store) did not answer; try again", retry_after=2
    )
