"""Per-tool operations: `POST /tools/<name>` typed by the tool's own schemas.

Each callable tool gets a path item of its own, derived from the generic `POST /tools/{tool_name}`
(same security, same problem answers, same `Idempotency-Key` header), with:

- a stable `operationId`: the tool's name when it is an identifier no generic route uses, else the
  name cleaned up plus 8 hex digits of its SHA-256 (so it never depends on the other tools);
- the tool's `inputSchema` as the request body and its `outputSchema` as `structuredContent` of the
  200, both as published. OpenAPI 3.1 schemas are JSON Schema 2020-12, so only local references
  move: `$defs` (and draft-07 `definitions`) become components, and `#/...` pointers are rewritten
  to where the schema now lives;
- the MCP annotations under `x-mcp-annotations`, the tool's name under `x-mcp-tool`.

The generic route keeps working for any name and lists the callable ones as an enum.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any
from urllib.parse import quote

from mcp_types import Tool

_LOGGER = logging.getLogger(__name__)

TAG = "tools"
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")
_COMPONENT = "#/components/schemas/"
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples", "example"})
_NAME_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})


def operation_id(name: str, reserved: Collection[str] = ()) -> str:
    """The tool's `operationId`: stable for a given name, whatever else the catalog holds."""
    if _IDENTIFIER.fullmatch(name) and name not in reserved:
        return name
    cleaned = _NOT_NAME.sub("_", name).strip("_") or "tool"
    if not cleaned[0].isalpha():
        cleaned = "tool_" + cleaned
    return f"{cleaned}_{_digest(name)}"


def add_tool_operations(
    doc: dict[str, Any],
    tools: Sequence[Tool],
    *,
    generic_path: str,
    tag: str = TAG,
    tag_description: str = "One operation per Scheduler tool, typed by its MCP schemas.",
    id_prefix: str = "",
) -> None:
    """Add one operation per tool to `doc` (in name order) and the names' enum to `generic_path`.

    Each upstream's tools go under its own `tag`, beside its generic route (`/tools/...` for the
    default, `/servers/<name>/tools/...` for another), with operationIds and schema names that
    start with `id_prefix` so that two servers' tools of the same name keep their own schemas."""
    paths: dict[str, Any] = doc["paths"]
    schemas: dict[str, Any] = doc["components"]["schemas"]
    generic = paths[generic_path]["post"]
    # Within the prefix's namespace: "rooms_" + a name is taken only by another "rooms_" operation.
    reserved = {
        op["operationId"].removeprefix(id_prefix)
        for item in paths.values()
        for op in item.values()
        if op["operationId"].startswith(id_prefix)
    }
    ordered = sorted(tools, key=lambda tool: tool.name)
    base = generic_path.removesuffix("{tool_name}")
    for tool in ordered:
        op_id = id_prefix + operation_id(tool.name, reserved)
        path = base + quote(tool.name, safe="")
        if path in paths:  # a tool literally named "{tool_name}"; the generic route covers it
            continue
        names = _Names(op_id, tool.name, schemas)
        paths[path] = {"post": _operation(tool, op_id, generic, schemas, names, path=path, tag=tag)}
    if ordered:
        parameters = copy.deepcopy(generic["parameters"])
        for parameter in parameters:
            if parameter["in"] == "path":
                parameter["schema"]["enum"] = [tool.name for tool in ordered]
        generic["parameters"] = parameters
    doc.setdefault("tags", []).append({"name": tag, "description": tag_description})


class _Names:
    """Component names for one tool: `<operationId><Role>`, hashed only on a clash."""

    def __init__(self, op_id: str, tool: str, taken: Collection[str]) -> None:
        self._base = op_id
        self._tool = tool
        self._taken = taken

    def __call__(self, role: str) -> str:
        candidate = self._base + role
        if candidate in self._taken:
            candidate = f"{self._base}_{_digest(self._tool)}{role}"
        return candidate


def _operation(
    tool: Tool,
    op_id: str,
    generic: dict[str, Any],
    schemas: dict[str, Any],
    names: _Names,
    *,
    path: str,
    tag: str,
) -> dict[str, Any]:
    input_schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    arguments = _hoist(input_schema or {"type": "object"}, names("Arguments"), schemas, names)
    result_name = names("Result")
    result = copy.deepcopy(schemas["ToolCallResult"])
    result["title"] = result_name
    result["description"] = f"200 from `POST /api{path}`."
    properties = result["properties"]
    properties["tool"] = {**properties["tool"], "const": tool.name}
    if isinstance(tool.output_schema, dict) and tool.output_schema:
        output = _hoist(tool.output_schema, names("Output"), schemas, names)
        properties["structuredContent"] = {"$ref": output}
    schemas[result_name] = result
    responses = copy.deepcopy(generic["responses"])
    responses["200"]["content"]["application/json"]["schema"] = {"$ref": _COMPONENT + result_name}
    parameters = [copy.deepcopy(p) for p in generic["parameters"] if p["in"] != "path"]
    support = tool.execution.task_support if tool.execution is not None else None
    if support in ("optional", "required") and "202" in responses:
        # A task tool: its 202's monitor carries this tool's typed result once it has Succeeded.
        monitor = copy.deepcopy(schemas["OperationMonitor"])
        monitor["title"] = names("Operation")
        monitor["description"] = f"The status monitor of a `POST /api{path}` operation."
        monitor["properties"]["result"] = {"anyOf": [{"$ref": _COMPONENT + result_name}, {"type": "null"}]}
        schemas[monitor["title"]] = monitor
        responses["202"]["content"]["application/json"]["schema"] = {"$ref": _COMPONENT + monitor["title"]}
    else:  # never a task: no 202, and Prefer changes nothing
        responses.pop("202", None)
        parameters = [p for p in parameters if p["name"] != "Prefer"]
    annotations = tool.annotations
    described: dict[str, Any] = {
        "operationId": op_id,
        "summary": tool.title or (annotations.title if annotations else None) or tool.name,
        "tags": [tag],
        "parameters": parameters,
        "requestBody": {
            "required": bool(input_schema.get("required")),
            "description": "The tool's arguments (its MCP inputSchema). Names it does not declare are "
            "refused with 400 invalid-arguments unless SCHEDULER_STRICT_ARGUMENTS=false.",
            "content": {"application/json": {"schema": {"$ref": arguments}}},
        },
        "responses": responses,
        "security": copy.deepcopy(generic["security"]),
        "x-auth-level": generic["x-auth-level"],
        "x-mcp-tool": tool.name,
        "x-mcp-annotations": annotations.model_dump(by_alias=True, exclude_none=True) if annotations else {},
    }
    if tool.description:
        described["description"] = tool.description
    return described


def _hoist(schema: dict[str, Any], name: str, schemas: dict[str, Any], names: _Names) -> str:
    """Store `schema` as component `name`, its `$defs` beside it; returns the reference to it."""
    schema = copy.deepcopy(schema)
    moved: dict[tuple[str, str], str] = {}
    hoisted: dict[str, Any] = {}
    for keyword in ("$defs", "definitions"):
        block = schema.pop(keyword, None)
        if isinstance(block, dict):
            for def_name, definition in block.items():
                target = name + _NOT_NAME.sub("_", def_name)
                if target in schemas or target in hoisted:
                    target = f"{name}_{_digest(def_name)}"
                moved[(keyword, def_name)] = target
                hoisted[target] = definition

    def where(ref: str) -> str:
        pointer = ref[1:]
        for (keyword, def_name), target in moved.items():
            prefix = f"/{keyword}/{_escape(def_name)}"
            if pointer == prefix or pointer.startswith(prefix + "/"):
                return _COMPONENT + target + pointer[len(prefix) :]
        return _COMPONENT + name + pointer

    for target, definition in [(name, schema), *hoisted.items()]:
        schemas[target] = _rewrite(definition, where)
    return _COMPONENT + name


def _rewrite(node: Any, where: Callable[[str], str]) -> Any:
    """A copy of schema `node` with its local `$ref`s moved; values of data keywords are left alone."""
    if isinstance(node, list):
        return [_rewrite(item, where) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#"):
            rewritten[key] = where(value)
        elif key in _DATA_KEYWORDS:
            rewritten[key] = value
        elif key in _NAME_MAPS and isinstance(value, dict):  # names → schemas: names are not keywords
            rewritten[key] = {name: _rewrite(schema, where) for name, schema in value.items()}
        else:
            rewritten[key] = _rewrite(value, where)
    return rewritten


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]
