"""A snapshot of one endpoint's tools, with each input schema compiled once.

Validating arguments locally is what lets the bridge answer 400 without calling the Scheduler;
compiling the validator with the listing keeps that off the per-call path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from ..arguments.strict import leaf_names
from ..redaction import printable

_LOGGER = logging.getLogger(__name__)

MIN_TTL_SECONDS = 1.0
"""Floor under a server's TTL hint: `ttlMs: 0` would otherwise mean a tools/list before every call."""
MAX_TTL_SECONDS = 24 * 3600.0
MAX_VIOLATIONS = 20


@dataclass(frozen=True)
class CatalogTool:
    tool: types.Tool
    validator: Validator | None

    @property
    def read_only(self) -> bool:
        return bool(self.tool.annotations and self.tool.annotations.read_only_hint)

    @property
    def idempotent(self) -> bool:
        annotations = self.tool.annotations
        return bool(annotations and (annotations.read_only_hint or annotations.idempotent_hint))

    @property
    def task_support(self) -> str:
        """`forbidden`, `optional` or `required` (MCP `execution.taskSupport`; absent is forbidden)."""
        execution = self.tool.execution
        return (execution.task_support if execution is not None else None) or "forbidden"

    @cached_property
    def argument_leaves(self) -> frozenset[str]:
        """`arguments.strict.leaf_names` of the input schema, once per tool version."""
        return leaf_names(self.tool.input_schema)

    def violations(self, arguments: dict[str, Any]) -> list[dict[str, str]]:
        """Every way `arguments` breaks the tool's input schema, as JSON-pointer + message."""
        if self.validator is None:
            return []
        found = []
        for error in sorted(self.validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
            pointer = "".join(f"/{part}" for part in error.absolute_path)
            found.append({"pointer": pointer or "/", "message": error.message})
            if len(found) >= MAX_VIOLATIONS:
                break
        return found

    def describe(self) -> dict[str, Any]:
        tool = self.tool
        return {
            "name": tool.name,
            "title": tool.title or (tool.annotations.title if tool.annotations else None),
            "description": tool.description,
            "inputSchema": tool.input_schema,
            "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)
            if tool.annotations
            else {},
        }


@dataclass
class ToolCatalog:
    tools: dict[str, CatalogTool]
    expires_at: float
    fetched_at: float = field(default_factory=time.monotonic)

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at

    @classmethod
    def from_listing(
        cls,
        listed: list[types.Tool],
        *,
        ttl_hint_ms: int | None,
        default_ttl: float,
        previous: ToolCatalog | None = None,
    ) -> ToolCatalog:
        """The catalog for a fresh listing; validators of `previous` are kept for unchanged schemas.

        A server that hints `ttlMs: 0` is re-listed every second, and compiling a schema (with its
        meta-schema check) takes milliseconds of event-loop time per tool.
        """
        ttl = default_ttl if ttl_hint_ms is None else ttl_hint_ms / 1000
        ttl = min(max(ttl, MIN_TTL_SECONDS), MAX_TTL_SECONDS)
        known = previous.tools if previous is not None else {}
        return cls(
            tools={tool.name: _catalog_tool(tool, known.get(tool.name)) for tool in listed},
            expires_at=time.monotonic() + ttl,
        )


def _catalog_tool(tool: types.Tool, known: CatalogTool | None) -> CatalogTool:
    if known is not None and known.tool.input_schema == tool.input_schema:
        return CatalogTool(tool, known.validator)
    return CatalogTool(tool, _compile(tool))


def _compile(tool: types.Tool) -> Validator | None:
    schema = tool.input_schema
    if not isinstance(schema, dict) or not schema:
        return None
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema, format_checker=cls.FORMAT_CHECKER)
    except SchemaError:
        _LOGGER.warning(
            "Tool %s has an invalid input schema; arguments pass through unchecked", printable(tool.name)
        )
        return None
