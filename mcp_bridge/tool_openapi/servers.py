"""Every upstream in the OpenAPI document: its routes and its tools under a tag of its own.

The default upstream's tools keep the paths they always had (`/tools/<name>`), under the tag of its
name. Each other upstream gets concrete paths (`/servers/rooms/tools`, `/servers/rooms/tools/<name>`,
`/servers/rooms/operations/{operation_id}` ...), copied from the default's generic operations, with
operationIds and component names prefixed by its name: a generated client gets one method per
server and tool, and two servers' tools of the same name keep their own schemas.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from mcp_types import Tool

from .operations import add_tool_operations

# The default's generic operations a server has too: (path, method, function name).
_GENERIC = (
    ("/tools/{tool_name}", "post", "call_tool"),
    ("/tools", "get", "list_tools"),
    ("/operations/{operation_id}", "get", "get_operation"),
    ("/operations/{operation_id}/cancel", "post", "cancel_operation"),
)


_SERVER = {
    "name": "server",
    "in": "path",
    "required": True,
    "description": "An upstream's name (MCP_UPSTREAMS), lower case; `scheduler` is the default upstream.",
    "schema": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]{0,31}$"},
}
_UNKNOWN_SERVER = "unknown-server: no upstream has this name (`servers` lists the known ones); "


def add_server_routes(doc: dict[str, Any], *, hidden: frozenset[str]) -> None:
    """The live `/servers/{server}/...` functions (`functions.servers_api`), derived from the
    default's generic operations: the same answers, a `server` path parameter, and 404
    `unknown-server`. Their function names are `server_<name>`; `hidden` may name them."""
    paths: dict[str, Any] = doc["paths"]
    for path, method, function_name in _GENERIC:
        if f"server_{function_name}" in hidden or method not in paths.get(path, {}):
            continue
        described = copy.deepcopy(paths[path][method])
        described["operationId"] = f"server_{function_name}"
        described["summary"] = f"{described.get('summary', '')} (any upstream, by name)".strip()
        described["parameters"] = [_SERVER, *described.get("parameters", [])]
        not_found = described["responses"].get("404")
        if not_found is not None:
            not_found["description"] = _UNKNOWN_SERVER + not_found["description"]
        paths.setdefault("/servers/{server}" + path, {})[method] = described


def tag_description(upstream: str, *, default: bool) -> str:
    if default:
        return (
            f"The default upstream ({upstream}): its tools, typed by their MCP schemas, at /api/tools/<name>."
        )
    where = f"/api/servers/{upstream}/tools/<name>"
    return f"The {upstream} server: its tools, typed by their MCP schemas, at {where}."


def add_server(
    doc: dict[str, Any], upstream: str, tools: Sequence[Tool] | None, *, hidden: frozenset[str]
) -> None:
    """Add `upstream`'s routes, and an operation per tool in `tools` (None: its listing is not known
    yet, only the generic routes are described). `hidden`: function names the caller may not use."""
    paths: dict[str, Any] = doc["paths"]
    prefix = f"/servers/{upstream}"
    for path, method, function_name in _GENERIC:
        if function_name in hidden or method not in paths.get(path, {}):
            continue
        described = copy.deepcopy(paths[path][method])
        described["operationId"] = f"{upstream}_{described['operationId']}"
        described["tags"] = [upstream]
        described["summary"] = f"{described.get('summary', '')} ({upstream})".strip()
        paths.setdefault(prefix + path, {})[method] = described
    description = tag_description(upstream, default=False)
    if tools is not None and prefix + "/tools/{tool_name}" in paths:
        add_tool_operations(
            doc,
            tools,
            generic_path=prefix + "/tools/{tool_name}",
            tag=upstream,
            tag_description=description,
            id_prefix=f"{upstream}_",
        )
    else:
        doc.setdefault("tags", []).append({"name": upstream, "description": description})
