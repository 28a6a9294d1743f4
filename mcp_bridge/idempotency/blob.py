"""The shared store: one blob per key in the `AzureWebJobsStorage` account (Azurite locally).

Every instance sees the same records, so a repeat is answered the same wherever it lands. The
claim is a blob created with `If-None-Match: *` (exactly one request wins, on any instance), and
every later write is conditional on the etag that request read (`If-Match`). Blobs are named by a
digest of the key and carry the record's expiry as metadata; a lifecycle rule on the container
can delete old ones (docs/calling-from-code.md).

Each operation is bounded (`OPERATION_TIMEOUT_SECONDS`, one SDK retry); anything but a lost race
is `StoreUnavailable`. Storage goes through azure-storage-blob's aio client over the bridge's
httpx2 transport, as the health snapshot does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .stores import Changed, Exists, StoreUnavailable

if TYPE_CHECKING:
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

OPERATION_TIMEOUT_SECONDS = 5.0
_T = TypeVar("_T")


class BlobStore:
    def __init__(self, settings: BridgeSettings, *, credential: Any = None) -> None:
        from ..azure_services.blob_service import blob_service

        service = blob_service(settings, credential=credential)
        self._service = service
        self._container = service.get_container_client(settings.idempotency_container)
        self.kind = f"blob:{settings.idempotency_container}"

    async def create(self, name: str, data: bytes, *, expires_at: float) -> str:
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        async def put() -> str:
            blob = self._container.get_blob_client(name)
            written = await blob.upload_blob(data, overwrite=False, metadata=_metadata(expires_at))
            return str(written["etag"])

        try:
            try:
                return await self._bounded(put)
            except ResourceNotFoundError:  # the container is missing: created on first use
                await self._bounded(self._create_container)
                return await self._bounded(put)
        except (ResourceExistsError, ResourceModifiedError):
            raise Exists(name) from None

    async def read(self, name: str) -> tuple[bytes, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        async def get() -> tuple[bytes, str]:
            downloader = await self._container.get_blob_client(name).download_blob()
            return await downloader.readall(), str(downloader.properties.etag)

        try:
            return await self._bounded(get)
        except ResourceNotFoundError:
            return None

    async def replace(self, name: str, data: bytes, *, etag: str, expires_at: float) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        async def put() -> str:
            written = await self._container.get_blob_client(name).upload_blob(
                data,
                overwrite=True,
                metadata=_metadata(expires_at),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
            return str(written["etag"])

        try:
            return await self._bounded(put)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise Changed(name) from None

    async def delete(self, name: str, *, etag: str) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        async def remove() -> None:
            await self._container.get_blob_client(name).delete_blob(
                etag=etag, match_condition=MatchConditions.IfNotModified
            )

        try:
            await self._bounded(remove)
        except ResourceNotFoundError:
            return
        except ResourceModifiedError:
            raise Changed(name) from None

    async def aclose(self) -> None:
        await self._service.close()

    async def _create_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass

    async def _bounded(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one storage operation; a failure that is not a precondition is `StoreUnavailable`."""
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_SECONDS):
                return await operation()
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise
        except TimeoutError:
            raise StoreUnavailable(f"storage did not answer within {OPERATION_TIMEOUT_SECONDS:g} s") from None
        except AzureError as exc:
            raise StoreUnavailable(f"storage failed ({type(exc).__name__})") from None


def _metadata(expires_at: float) -> dict[str, str]:
    return {"expires_at": str(int(expires_at))}
