"""Operation ids: 192 random bits, so an id cannot be guessed, and a store name that is a digest of
the id, so neither storage listings nor logs ever hold a usable id.

A malformed id is answered exactly like an unknown one (404) without touching the store.
"""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "op_"
_WELL_FORMED = re.compile(r"^op_[A-Za-z0-9_-]{32}$")


def new_id() -> str:
    return PREFIX + secrets.token_urlsafe(24)  # 24 bytes: 32 URL-safe characters


def well_formed(operation_id: str) -> bool:
    return _WELL_FORMED.fullmatch(operation_id) is not None


def digest(operation_id: str) -> str:
    return hashlib.sha256(operation_id.encode()).hexdigest()


def record_name(operation_id: str) -> str:
    """The store name of an operation's record."""
    return "operations/" + digest(operation_id)


def short(operation_id: str) -> str:
    """What logs, spans and audit records name an operation by: a digest prefix, never the id."""
    return digest(operation_id)[:16]
