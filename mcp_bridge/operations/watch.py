"""Following one operation to its end, for streaming (Server-Sent Events on `GET /api/operations/{id}`).

    from mcp_bridge.operations.service import operations_for
    from mcp_bridge.operations.watch import watch

    operations = await operations_for(bridge, settings)
    async for snapshot in watch(operations, operation_id, caller=caller, instance=path, may_call=allowed):
        send("progress" if not snapshot.terminal else ("result" if snapshot.succeeded else "problem"),
             snapshot.monitor.to_json())

`watch` yields an `OperationSnapshot` now, then each time the status monitor changes (status,
message, progress, input requests), and stops after the terminal one. It reads through the same
poller as `GET` (one `tasks/get` per poll interval per instance, however many watchers), so a
stream costs the server nothing extra. A problem raised before the first snapshot (404, 503) is the
answer to give instead of a stream; a region that becomes unreachable mid-stream is retried at the
poll interval until `give_up_after` seconds pass without a reading, then raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .. import models
from ..callers.principal import Caller
from ..problems import RegionUnreachable
from .poller import interval_seconds
from .records import OperationRecord
from .service import MayCall, Operations, anyone


@dataclass(frozen=True)
class OperationSnapshot:
    monitor: models.OperationMonitor
    record: OperationRecord

    @property
    def terminal(self) -> bool:
        return self.record.terminal

    @property
    def succeeded(self) -> bool:
        return self.record.status == "Succeeded"


async def watch(
    operations: Operations,
    operation_id: str,
    *,
    caller: Caller,
    instance: str,
    may_call: MayCall = anyone,
    give_up_after: float = 60.0,
) -> AsyncIterator[OperationSnapshot]:
    """Snapshots of the operation until it ends (see the module docstring)."""
    last: str | None = None
    unreachable_since: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        try:
            monitor, record = await operations.read(
                operation_id, caller=caller, instance=instance, may_call=may_call
            )
        except RegionUnreachable:
            if last is None:
                raise
            now = loop.time()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > give_up_after:
                raise
            await asyncio.sleep(1.0)
            continue
        unreachable_since = None
        rendered = monitor.to_json()
        if rendered != last:
            last = rendered
            yield OperationSnapshot(monitor, record)
        if record.terminal:
            return
        await asyncio.sleep(interval_seconds(record.poll_interval_ms))
