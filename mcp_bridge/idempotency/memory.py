"""The in-process store: used when no storage account is configured (`AzureWebJobsStorage` unset).

It protects one instance only: a repeat that lands on another instance, or after a restart, runs
the call again. `/api/health` says so (`idempotency.store: in-process`). Everything runs on one
event loop, so plain dict operations are atomic; expired records are swept as new ones arrive.
"""

from __future__ import annotations

import itertools
import logging
import time

from .stores import Changed, Exists

_LOGGER = logging.getLogger(__name__)

SWEEP_EVERY = 256


class MemoryStore:
    kind = "in-process"

    def __init__(self) -> None:
        self._records: dict[str, tuple[bytes, str, float]] = {}
        self._etags = itertools.count(1)
        self._writes = 0

    async def create(self, name: str, data: bytes, *, expires_at: float) -> str:
        if name in self._records:
            raise Exists(name)
        return self._put(name, data, expires_at)

    async def read(self, name: str) -> tuple[bytes, str] | None:
        found = self._records.get(name)
        return None if found is None else (found[0], found[1])

    async def replace(self, name: str, data: bytes, *, etag: str, expires_at: float) -> str:
        found = self._records.get(name)
        if found is None or found[1] != etag:
            raise Changed(name)
        return self._put(name, data, expires_at)

    async def delete(self, name: str, *, etag: str) -> None:
        found = self._records.get(name)
        if found is not None and found[1] != etag:
            raise Changed(name)
        self._records.pop(name, None)

    async def aclose(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def _put(self, name: str, data: bytes, expires_at: float) -> str:
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            now = time.time()
            for stale in [key for key, (_, _, expires) in self._records.items() if expires <= now]:
                del self._records[stale]
        etag = f'"{next(self._etags)}"'
        self._records[name] = (data, etag, expires_at)
        return etag
