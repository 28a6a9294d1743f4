"""Strict arguments: a name the tool's input schema does not declare is refused, at every level.

Most tools publish schemas without `additionalProperties: false` (pydantic and the MCP SDKs leave it
out), so JSON Schema alone accepts `{"duration_minuts": 45}` and the tool silently books the
default. The check walks the arguments alongside the schema and reports each undeclared name with
the closest declared one.

What counts as declared, per object:

- the names under `properties` and the patterns under `patternProperties`, collected over every
  branch of `allOf`, `anyOf`, `oneOf`, `if`/`then`/`else` and local `$ref`s (a name any branch
  declares is accepted: the schema check decides which branch applies);
- an object whose schema says `additionalProperties: true` (or gives it a schema), or
  `unevaluatedProperties` likewise, takes any name: that schema allows extras explicitly;
- below the top level, an object schema that declares no properties at all is a free-form map and
  takes any name; the top level is the tool's argument list and is always checked.

Schemas the walk cannot follow (a remote `$ref`, `$dynamicRef`) are treated as allowing anything,
so strictness never refuses what it cannot see.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..problems import InvalidArguments

_LOGGER = logging.getLogger(__name__)

MAX_REPORTED = 20
_MAX_NAMED_IN_DETAIL = 5
_MAX_DECLARED_LISTED = 12
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_CONDITIONALS = ("if", "then", "else")


@dataclass(frozen=True)
class UnknownArgument:
    """One undeclared name: where it is, what it is, and the closest declared name (if any)."""

    pointer: str
    name: str
    suggestion: str | None
    declared: tuple[str, ...]

    @property
    def message(self) -> str:
        parent = self.pointer.rsplit("/", 1)[0]
        where = f" in {parent}" if parent else ""
        text = f"unknown argument {self.name!r}{where}"
        if self.suggestion is not None:
            return f"{text} — did you mean {self.suggestion!r}?"
        if not self.declared:
            return f"{text}; this object takes no arguments"
        listed = ", ".join(self.declared[:_MAX_DECLARED_LISTED])
        more = ", ..." if len(self.declared) > _MAX_DECLARED_LISTED else ""
        return f"{text}; declared: {listed}{more}"

    def violation(self) -> dict[str, str]:
        found = {"pointer": self.pointer, "message": self.message}
        if self.suggestion is not None:
            found["suggestion"] = self.suggestion
        return found


def unknown_arguments(
    schema: Any, arguments: dict[str, Any], *, leaves: frozenset[str] = frozenset()
) -> list[UnknownArgument]:
    """Every argument name (at any depth) that `schema` does not declare; at most `MAX_REPORTED`.

    `leaves` is `leaf_names(schema)`, computed once per tool version: arguments named only from it
    have nothing to report, and are not walked (the walk cost 12 µs a call for a one-argument tool)."""
    if not isinstance(schema, dict) or not schema:
        return []
    if leaves and leaves.issuperset(arguments):
        return []
    found: list[UnknownArgument] = []
    _Walk(schema, found).visit(schema, arguments, "", top=True)
    return found


_WALKED = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "unevaluatedProperties",
        "items",
        "prefixItems",
        "additionalItems",
        "$ref",
        "$dynamicRef",
        "$recursiveRef",
        *_COMBINATORS,
        *_CONDITIONALS,
    }
)
"""The keywords the walk follows; a subschema with none of them is a leaf it never looks inside."""


def leaf_names(schema: Any) -> frozenset[str]:
    """The top-level argument names `schema` declares whose values the walk never looks inside (each
    one's subschema is a leaf: no keyword of `_WALKED`), when the top level declares its names in
    `properties` alone; else empty. Arguments named only from this set have no unknown name."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return frozenset()
    if any(keyword in schema for keyword in _WALKED - {"properties", "additionalProperties"}):
        return frozenset()  # branches, refs or patterns at the top: always walk
    return frozenset(
        name
        for name, sub in schema["properties"].items()
        if not isinstance(sub, dict) or _WALKED.isdisjoint(sub)
    )


def invalid_arguments(
    tool: str, *, unknown: list[UnknownArgument], violations: list[dict[str, str]]
) -> InvalidArguments:
    """The 400 for a call whose arguments have undeclared names and/or break the schema."""
    listed = [item.violation() for item in unknown] + violations
    if not unknown:
        detail = f"{len(violations)} argument(s) do not match the input schema of {tool!r}"
    else:
        named = "; ".join(item.message for item in unknown[:_MAX_NAMED_IN_DETAIL])
        others = len(listed) - min(len(unknown), _MAX_NAMED_IN_DETAIL)
        detail = named + (f"; and {others} more problem(s)" if others else "")
    return InvalidArguments(detail, tool=tool, violations=listed[:MAX_REPORTED])


class _Walk:
    def __init__(self, root: dict[str, Any], found: list[UnknownArgument]) -> None:
        self.root = root
        self.found = found

    def visit(self, schema: Any, value: Any, pointer: str, *, top: bool = False) -> None:
        if len(self.found) >= MAX_REPORTED:
            return
        found = list(self._branches(schema))
        branches = [branch for branch in found if branch is not None]
        if len(branches) < len(found):
            return  # something the walk cannot follow: allow anything below
        if isinstance(value, dict):
            self._visit_object(branches, value, pointer, top=top)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                child = _either(self._item_schemas(branches, index))
                if child is not None:
                    self.visit(child, item, f"{pointer}/{index}")

    def _visit_object(
        self, branches: list[dict[str, Any]], value: dict[str, Any], pointer: str, *, top: bool
    ) -> None:
        declared: dict[str, list[Any]] = {}
        patterns: list[tuple[str, Any]] = []
        extras: list[Any] = []
        open_ = False
        for branch in branches:
            for name, sub in (branch.get("properties") or {}).items():
                declared.setdefault(name, []).append(sub)
            patterns.extend((branch.get("patternProperties") or {}).items())
            for keyword in ("additionalProperties", "unevaluatedProperties"):
                allowed = branch.get(keyword)
                if allowed is True or isinstance(allowed, dict):
                    open_ = True
                    if isinstance(allowed, dict) and keyword == "additionalProperties":
                        extras.append(allowed)
        checked = top or bool(declared) or bool(patterns)
        for name, item in value.items():
            subs = list(declared.get(name, ()))
            subs += [sub for pattern, sub in patterns if _matches(pattern, name)]
            if not subs and checked and not open_:
                self._report(pointer, name, tuple(declared))
                continue
            child = _either(subs or extras)
            if child is not None:
                self.visit(child, item, f"{pointer}/{_escape(name)}")

    def _report(self, pointer: str, name: str, declared: tuple[str, ...]) -> None:
        if len(self.found) < MAX_REPORTED:
            self.found.append(
                UnknownArgument(f"{pointer}/{_escape(name)}", name, _closest(name, declared), declared)
            )

    def _item_schemas(self, branches: list[dict[str, Any]], index: int) -> list[Any]:
        schemas: list[Any] = []
        for branch in branches:
            prefix = branch.get("prefixItems")
            items = branch.get("items")
            if isinstance(items, list):  # draft 4-7 tuple form
                prefix, items = items, branch.get("additionalItems")
            if isinstance(prefix, list) and index < len(prefix):
                schemas.append(prefix[index])
            elif isinstance(items, dict):
                schemas.append(items)
        return schemas

    def _branches(self, schema: Any) -> Iterator[dict[str, Any] | None]:
        """`schema` and every subschema that applies to the same instance, `$ref`s followed."""
        pending, seen = [schema], set()
        while pending:
            current = pending.pop()
            if not isinstance(current, dict) or id(current) in seen:
                continue
            seen.add(id(current))
            if "$dynamicRef" in current or "$recursiveRef" in current:
                yield None
                return
            ref = current.get("$ref")
            if isinstance(ref, str):
                target = self._resolve(ref)
                if target is None:
                    yield None
                    return
                pending.append(target)
            yield current
            for keyword in _COMBINATORS:
                subs = current.get(keyword)
                if isinstance(subs, list):
                    pending.extend(subs)
            pending.extend(current[keyword] for keyword in _CONDITIONALS if keyword in current)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return None
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node


def _either(schemas: list[Any]) -> Any:
    if not schemas:
        return None
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return True  # a pattern Python cannot compile: do not refuse on its account


def _closest(name: str, declared: tuple[str, ...]) -> str | None:
    folded = {candidate.lower(): candidate for candidate in declared}
    if name.lower() in folded:
        return folded[name.lower()]
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    return close[0] if close else None


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
