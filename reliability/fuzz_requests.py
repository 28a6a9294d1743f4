"""A bad request as plain data, and the oracle that says a body is bad without asking the bridge.

A `BadRequest` (method, path, headers, body) can be written to and read from the replay corpus
(tests/fuzz/corpus/bad_requests.jsonl) unchanged. The oracle is Python's strict JSON reader and
`jsonschema` against the tool's published input schema, plus the strict-argument rule.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from jsonschema.validators import validator_for

MAX_DEPTH = 32


@dataclass(frozen=True)
class BadRequest:
    kind: str
    method: str
    path: str
    """Already percent-encoded, query string included."""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = [list(pair) for pair in self.headers]
        data["body"] = base64.b64encode(self.body).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BadRequest:
        return cls(
            kind=data["kind"],
            method=data["method"],
            path=data["path"],
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
            body=base64.b64decode(data["body"]),
        )


@dataclass
class Context:
    """What the generators need to know about the running app."""

    tools: dict[str, dict[str, Any]]
    """Tool name → input schema, from the live listing."""
    valid: dict[str, dict[str, Any]]
    """Tool name → arguments its schema accepts."""
    key_header: tuple[str, str]
    max_bytes: int
    read_role: str
    write_role: str
    validators: dict[str, Any] = field(default_factory=dict)

    def schema_refuses(self, tool: str, arguments: Any) -> bool:
        """Whether the tool's schema, or the strict-argument rule, rules `arguments` out."""
        if not isinstance(arguments, dict):
            return True
        schema = self.tools[tool]
        if set(arguments) - set(schema.get("properties", {})):
            return True
        if tool not in self.validators:
            self.validators[tool] = validator_for(schema)(schema)
        return not self.validators[tool].is_valid(arguments)


def body_refused(body: bytes, tool: str, ctx: Context) -> bool:
    """The oracle for a body: True when no correct reader of "a JSON object of arguments" accepts it."""
    if len(body) > ctx.max_bytes:
        return True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if text.startswith("\ufeff"):
        return False  # a BOM may be tolerated; not a bad input we can be sure of
    if not text.strip():
        return ctx.schema_refuses(tool, {})

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        value = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError):
        return True
    if not isinstance(value, dict) or _depth(value) > MAX_DEPTH:
        return True
    return ctx.schema_refuses(tool, value)


def _depth(value: Any) -> int:
    """Nesting depth of containers, without recursion (a generated body may be hundreds deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
