"""The OpenAPI document: exactly the live routes, and the live bodies match its schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mcp_bridge.functions.openapi import document
from mcp_bridge.runtime import get_bridge
from mcp_bridge.tool_openapi.live import as_callable

from .conftest import schedule_arguments

PROBLEM = "application/problem+json"


def live_http_functions(functions) -> dict[str, tuple[str, set[str], str]]:
    # `app.get_functions()` may run once per process (a second run sees duplicate names), so this
    # reads the functions the session's `functions` fixture took from it.
    found = {}
    for function in functions._functions.values():
        trigger = function.get_trigger()
        if type(trigger).__name__ != "HttpTrigger":
            continue
        methods = {str(getattr(m, "value", m)).lower() for m in trigger.methods}
        found[function.get_function_name()] = (trigger.route, methods, str(trigger.auth_level.value).lower())
    return found


def test_every_live_route_is_described_with_its_methods_and_nothing_else(functions):
    doc = document()
    described: dict[str, tuple[str, set[str], str]] = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            name = operation["operationId"]
            route, methods, _auth = described.get(name, (path.removeprefix("/"), set(), ""))
            described[name] = (route, methods | {method}, operation["x-auth-level"])
    live = live_http_functions(functions)
    assert "openapi" in live and "health" in live
    assert described == live


def test_security_follows_each_routes_auth_level():
    doc = document(health_auth="anonymous")
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "401" not in doc["paths"]["/health"]["get"]["responses"]
    for path in ("/tools", "/tools/{tool_name}", "/openapi.json"):
        operation = next(iter(doc["paths"][path].values()))
        assert {"functionKeyHeader": []} in operation["security"]
        assert "401" in operation["responses"]


async def test_the_document_is_served_at_api_openapi_json(configure, functions):
    await configure()
    reply = await functions("openapi", path="/api/openapi.json")
    assert reply.status == 200
    bridge = await get_bridge()
    _, listed = await bridge.list_tools()
    # As callers meet them: on a 2026-07-28 server with the tasks extension, every tool may answer 202.
    tools = [as_callable(bridge, entry.tool) for entry in listed]
    assert reply.json == json.loads(json.dumps(document(tools=tools)))
    assert reply.json["openapi"] == "3.1.0"
    Draft202012Validator.check_schema({"$defs": reply.json["components"]["schemas"]})


def schema_for(
    doc: dict[str, Any], path: str, method: str, status: int, content_type: str
) -> Draft202012Validator:
    response = doc["paths"][path][method]["responses"][str(status)]
    schema = response["content"][content_type]["schema"]
    return Draft202012Validator({**schema, "components": doc["components"]})


def assert_conforms(doc, path: str, method: str, reply) -> None:
    # In process a success response carries its type as `mimetype`, not as a header.
    content_type = reply.headers.get("Content-Type", "application/json").split(";")[0]
    errors = list(schema_for(doc, path, method, reply.status, content_type).iter_errors(reply.json))
    assert not errors, [e.message for e in errors]
    if path == "/health":
        return  # health_api.py renders its own body (default separators); its schema is checked above
    # The wire format: compact UTF-8 success bodies (pydantic's serializer), default-spaced problems.
    if content_type == PROBLEM:
        assert reply.body == json.dumps(reply.json).encode()
    else:
        assert reply.body == json.dumps(reply.json, separators=(",", ":"), ensure_ascii=False).encode()


async def test_live_bodies_match_the_documented_schemas(configure, functions, monkeypatch):
    await configure(max_request_bytes="2048")
    doc = document()
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments())
    conversation_id = scheduled.json["structuredContent"]["conversation_id"]
    cases = [
        ("/tools/{tool_name}", "post", scheduled),
        ("/tools/{tool_name}", "post", await functions.call_tool("listConversations", {})),
        ("/tools/{tool_name}", "post", await functions.call_tool("scheduleConversation", {"topic": 5})),
        ("/tools/{tool_name}", "post", await functions.call_tool("scheduleConversation", b"[1]")),
        ("/tools/{tool_name}", "post", await functions.call_tool("noSuchTool", {})),
        ("/tools/{tool_name}", "post", await functions.call_tool("listConversations", {"x": "y" * 4096})),
        ("/tools", "get", await functions("list_tools", path="/api/tools")),
        ("/conversations/{conversation_id}/status", "get", await functions.status(conversation_id)),
        ("/conversations/{conversation_id}/status", "get", await functions.status("conv-unknown")),
        ("/conversations/{conversation_id}/status", "get", await functions.status("bad id")),
        (
            "/conversation-status",
            "get",
            await functions(
                "conversation_status_query",
                path="/api/conversation-status",
                params={"conversation_id": conversation_id},
            ),
        ),
        (
            "/conversation-status",
            "get",
            await functions("conversation_status_query", path="/api/conversation-status"),
        ),
        ("/health", "get", await functions("health", path="/api/health")),
    ]
    monkeypatch.setenv("SCHEDULER_TIMEOUT_SECONDS", "-1")
    from mcp_bridge.config.loader import reset_settings
    from mcp_bridge.runtime import reset_bridge

    reset_settings()
    await reset_bridge()
    cases.append(("/tools", "get", await functions("list_tools", path="/api/tools")))
    statuses = sorted({reply.status for _, _, reply in cases})
    assert statuses == [200, 400, 404, 413, 422, 500]
    for path, method, reply in cases:
        assert_conforms(doc, path, method, reply)


@pytest.mark.parametrize("status", [403, 502, 503, 504])
def test_documented_problem_statuses_use_the_problem_schema(status):
    doc = document()
    content = doc["paths"]["/tools/{tool_name}"]["post"]["responses"][str(status)]["content"]
    assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
