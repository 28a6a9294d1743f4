"""What the flow needs from a store: create-if-absent, read, and replace/delete only if unchanged.

Both stores give the same guarantees, so `once` holds the only copy of the rules: `create` fails
with `Exists` when anything is there (blob: `If-None-Match: *`), `replace` and `delete` fail with
`Changed` when the record is not the one read (blob: `If-Match: <etag>`). `StoreUnavailable` is
anything else: the request with a key is then refused (503), never run unprotected.
"""

from __future__ import annotations

import logging
from typing import Protocol

_LOGGER = logging.getLogger(__name__)


class Exists(Exception):
    """`create` found a record already there."""


class Changed(Exception):
    """The record is no longer the one read (replaced, deleted, or never there)."""


class StoreUnavailable(Exception):
    """The store did not answer, or answered with an error that waiting may fix."""


class Store(Protocol):
    @property
    def kind(self) -> str:
        """`in-process`, or `blob:<container>`: what `/api/health` shows."""
        ...

    async def create(self, name: str, data: bytes, *, expires_at: float) -> str:
        """Store `data` under `name` if nothing is there; returns its etag. Raises `Exists`."""
        ...

    async def read(self, name: str) -> tuple[bytes, str] | None:
        """The record and its etag, or None."""
        ...

    async def replace(self, name: str, data: bytes, *, etag: str, expires_at: float) -> str:
        """Replace the record if its etag is still `etag`; returns the new etag. Raises `Changed`."""
        ...

    async def delete(self, name: str, *, etag: str) -> None:
        """Delete the record if its etag is still `etag` (gone already is fine). Raises `Changed`."""
        ...

    async def aclose(self) -> None: ...
