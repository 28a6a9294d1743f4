"""The process's one idempotency store, chosen by the settings.

With `AzureWebJobsStorage` (a connection string, or identity-based `__blobServiceUri` /
`__accountName` with the bridge's managed identity) the records live in a blob container that every
instance shares; without it they live in this process only, and `/api/health` says so. The store is
built on the first request with a key and rebuilt only if the settings object changes (tests).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .memory import MemoryStore
from .stores import Store

if TYPE_CHECKING:
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

_store: Store | None = None
_settings: BridgeSettings | None = None


async def store_for(settings: BridgeSettings) -> Store:
    """The store for `settings`, built on first use (no await before it is installed: one per loop)."""
    global _store, _settings
    # One store for every upstream: each has its own settings object, but storage is shared and
    # the default upstream's settings stand for all of them (config/upstreams.py).
    settings = next(iter(settings.upstreams.values()))
    if _store is not None and _settings is settings:
        return _store
    previous, _store, _settings = _store, _build(settings), settings
    _LOGGER.info("Idempotency records: %s", _store.kind)
    if previous is not None:
        await previous.aclose()
    return _store


def describe(settings: BridgeSettings) -> dict[str, Any]:
    """For `/api/health`: where records are kept, whether every instance sees them, for how long."""
    shared = settings.has_shared_storage
    return {
        "store": f"blob:{settings.idempotency_container}" if shared else "in-process",
        "shared": shared,
        "ttl_seconds": settings.idempotency_ttl_seconds,
    }


def _build(settings: BridgeSettings) -> Store:
    if not settings.has_shared_storage:
        return MemoryStore()
    from .blob import BlobStore

    credential = None
    if settings.storage_connection_string is None:
        from ..runtime import shared_credential

        credential, _ = shared_credential(settings)
    return BlobStore(settings, credential=credential)
