"""The health snapshot shared by every instance, kept in a blob of the `AzureWebJobsStorage` account.

In Azure a timer trigger runs on one instance only, so probe results held in memory would never
reach the instances that serve traffic. The probing instance writes a small JSON blob; every
instance reads it through a short cache and combines it with its own passive ejections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from ..config.settings import BridgeSettings
from ..config.upstreams import DEFAULT_UPSTREAM

_LOGGER = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 3.0


class BlobSnapshotStore:
    """Reads and writes the snapshot blob (azure-storage-blob aio over our httpx2 transport)."""

    def __init__(self, settings: BridgeSettings, *, credential: Any = None) -> None:
        from ..azure_services.blob_service import blob_service

        service = blob_service(settings, credential=credential)
        self._service = service
        self._container = service.get_container_client(settings.health_snapshot_container)
        self._blob = self._container.get_blob_client(settings.health_snapshot_blob)
        self._container_ready = False
        self.location = f"{settings.health_snapshot_container}/{settings.health_snapshot_blob}"

    async def write(self, snapshot: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError

        if not self._container_ready:
            try:
                await self._container.create_container()
            except ResourceExistsError:
                pass
            self._container_ready = True
        await self._blob.upload_blob(json.dumps(snapshot).encode(), overwrite=True)

    async def read(self) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = await self._blob.download_blob()
            return json.loads(await downloader.readall())
        except ResourceNotFoundError:
            return None

    async def aclose(self) -> None:
        await self._service.close()


class SnapshotFollower:
    """Keeps a `HealthBoard` in step with the shared snapshot, re-reading it at most every `ttl` s.

    The read happens in the background: a request never waits on storage. A snapshot older than
    three probe intervals is ignored (the prober is gone; local signals rule alone).
    """

    def __init__(self, store: BlobSnapshotStore, *, ttl: float, upstream: str = DEFAULT_UPSTREAM) -> None:
        self.store = store
        self.upstream = upstream  # whose part of the snapshot this follower adopts
        self._ttl = ttl
        self._read_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def maybe_refresh(self, board: Any) -> None:
        if self._task is None and time.monotonic() - self._read_at >= self._ttl:
            self._read_at = time.monotonic()
            self._task = asyncio.create_task(self.refresh(board))

    async def refresh_if_due(self, board: Any) -> None:
        """For a health read: wait for the re-read when one is due (a read is not latency-bound,
        and an answer that says "in-process" while a snapshot waits in storage would lie)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        elif time.monotonic() - self._read_at >= self._ttl:
            self._read_at = time.monotonic()
            self._task = asyncio.create_task(self.refresh(board))
            await asyncio.shield(self._task)

    async def refresh(self, board: Any) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                snapshot = await self.store.read()
            self.last_error = None
            self._read_at = time.monotonic()
            section = None if snapshot is None else section_of(snapshot, self.upstream)
            if section is not None:
                apply_snapshot(board, section, source=f"blob:{self.store.location}")
        except Exception as exc:
            self.last_error = type(exc).__name__
            _LOGGER.warning("Reading the health snapshot failed: %s", type(exc).__name__)
        finally:
            self._task = None


def apply_snapshot(board: Any, snapshot: dict[str, Any], *, source: str) -> bool:
    """Adopt `snapshot` unless it is stale; True when adopted."""
    age = time.time() - float(snapshot.get("written_at", 0))
    interval = float(snapshot.get("probe_interval_seconds") or 30)
    if age > 3 * interval:
        board.snapshot_source = f"{source} (stale, ignored)"
        board.snapshot_written_at = time.time() - age
        return False
    board.adopt(snapshot, source=source, age_seconds=round(age, 1))
    return True


def section_of(snapshot: dict[str, Any], upstream: str) -> dict[str, Any] | None:
    """One upstream's part of a shared snapshot, with the writer's time and probe interval; None
    when the writer had none for it. A snapshot without `upstreams` (the previous version's
    writer) is the default upstream's alone."""
    sections = snapshot.get("upstreams")
    if not isinstance(sections, dict):
        return snapshot if upstream == DEFAULT_UPSTREAM else None
    section = sections.get(upstream)
    if not isinstance(section, dict):
        return None
    return {
        **section,
        **{key: snapshot[key] for key in ("written_at", "probe_interval_seconds") if key in snapshot},
    }
