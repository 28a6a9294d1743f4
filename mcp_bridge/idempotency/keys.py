"""The `Idempotency-Key` header and the fingerprint of a call.

The IETF draft ("The Idempotency-Key HTTP Header Field") makes the key a Structured Field String
(`Idempotency-Key: "8e03978e-40d5"`); most clients send it bare (`Idempotency-Key: 8e03978e-40d5`).
Both are accepted and mean the same key. A key is 1 to 255 visible ASCII characters (0x21-0x7E);
anything else is a 400 before the body is even read.

The fingerprint is SHA-256 over canonical JSON of the tool's name and its arguments (keys sorted,
no whitespace, integral numbers without a fraction), so `{"a":1,"b":2.0}` and `{"b":2, "a":1}` are
the same call. Only the fingerprint is stored, never the arguments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from ..problems import BadRequest

_LOGGER = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
_VISIBLE = re.compile(r"^[\x21-\x7e]+$")
_SF_STRING = re.compile(r'^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$')
_EXACT_INTEGERS = 2**53


def idempotency_key(headers: Any) -> str | None:
    """The request's key, or None without the header. Raises `BadRequest` for an invalid one."""
    raw = headers.get(HEADER.lower())
    if raw is None:
        return None
    value = raw.strip(" \t")
    if value.startswith('"'):
        quoted = _SF_STRING.fullmatch(value)
        if quoted is None:
            raise BadRequest(f"the {HEADER} header starts a quoted string but is not one")
        value = re.sub(r"\\(.)", r"\1", quoted.group(1))
    if not value:
        raise BadRequest(f"the {HEADER} header is empty")
    if len(value) > MAX_LENGTH:
        raise BadRequest(f"the {HEADER} header is longer than {MAX_LENGTH} characters")
    if not _VISIBLE.fullmatch(value):
        raise BadRequest(
            f"the {HEADER} header must be visible ASCII characters only (0x21-0x7E), "
            "as a bare value or one quoted string"
        )
    return value


def storage_name(key: str, *, scope: str = "key") -> str:
    """Where the key's record lives: a digest, so any key is a valid blob name and none is stored.

    Keys are scoped to the caller (`scope`: a principal's id, or "key" for function-key callers):
    another service that sends the same key gets its own record, never this caller's answer.
    """
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


def fingerprint(tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 of the call as canonical JSON: the same tool and arguments, the same fingerprint."""
    canonical = json.dumps(
        {"tool": tool, "arguments": _canonical(arguments)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value
