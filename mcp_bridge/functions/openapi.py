"""The OpenAPI 3.1 document of the HTTP API, built from the models the handlers serialize.

Every route is declared once here with its method, parameters, success model and the problems it
can answer; tests compare this table with the functions `function_app` registers, so a new route
without a description (or a description without a route) fails the suite. Schemas come from
`models.py` through pydantic's JSON Schema (2020-12, which OpenAPI 3.1 uses as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import models
from .tools_api import CONVERSATION_ID

PROBLEM_CONTENT_TYPE = "application/problem+json"
_REF = "#/components/schemas/{model}"

# What each status means on this API (the slugs are in the README's error table).
_PROBLEM_TEXT = {
    400: "bad-request or invalid-arguments: the Scheduler was not called",
    403: "tool-not-allowed, or caller-not-allowed: the caller holds no role for the tool",
    404: "tool-not-found",
    413: "payload-too-large",
    422: "tool-error: the tool ran and reported an error",
    500: "misconfigured: an app setting is missing or invalid",
    502: "upstream-error, upstream-response-too-large or outcome-unknown",
    503: "unavailable or identity-unavailable, with Retry-After",
    504: "deadline-exceeded",
}
_UPSTREAM = (500, 502, 503, 504)


@dataclass(frozen=True)
class Operation:
    """One HTTP function as the document describes it."""

    function_name: str
    route: str
    method: str
    summary: str
    ok: type[BaseModel] | None
    problems: tuple[int, ...]
    parameters: tuple[dict[str, Any], ...] = ()
    body: bool = False
    auth: str = "function"  # "health" follows HEALTH_AUTH_LEVEL
    extra_responses: dict[str, Any] = field(default_factory=dict)


_TOOL_NAME = {
    "name": "tool_name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_CONVERSATION_ID_SCHEMA = {"type": "string", "pattern": CONVERSATION_ID.pattern}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "call_tool",
        "tools/{tool_name}",
        "post",
        "Call a Scheduler tool with a JSON object of arguments",
        models.ToolCallResult,
        (400, 403, 404, 413, 422, *_UPSTREAM),
        parameters=(_TOOL_NAME,),
        body=True,
    ),
    Operation(
        "list_tools",
        "tools",
        "get",
        "List the Scheduler's tools (allowlist applied)",
        models.ToolList,
        _UPSTREAM,
    ),
    Operation(
        "conversation_status",
        "conversations/{conversation_id}/status",
        "get",
        "Status of one conversation",
        models.ConversationStatus,
        (400, 403, 422, *_UPSTREAM),
        parameters=(
            {"name": "conversation_id", "in": "path", "required": True, "schema": _CONVERSATION_ID_SCHEMA},
        ),
    ),
    Operation(
        "conversation_status_query",
        "conversation-status",
        "get",
        "Status of one conversation (the original integration guide's query-string form)",
        models.ConversationStatus,
        (400, 403, 422, *_UPSTREAM),
        parameters=(
            {"name": "conversation_id", "in": "query", "required": True, "schema": _CONVERSATION_ID_SCHEMA},
        ),
    ),
    Operation(
        "health",
        "health",
        "get",
        "This instance's view of endpoint health",
        models.HealthView,
        (500,),
        auth="health",
        extra_responses={
            "503": {
                "description": "no endpoint is usable (same body, status unavailable)",
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="HealthView")}}},
            }
        },
    ),
    Operation("openapi", "openapi.json", "get", "This document", None, ()),
)

_SECURITY_SCHEMES = {
    "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
    "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
}
_KEYED = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def document(
    *, health_auth: str = "function", server_url: str = "/api", hidden: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `health_auth` is the live `HEALTH_AUTH_LEVEL`, and the operations
    named in `hidden` (function names) are left out: the caller may not use them."""
    named = [models.ToolCallResult, models.ToolList, models.ConversationStatus, models.HealthView]
    _, schemas = models_json_schema(
        [(model, "serialization") for model in named] + [(models.ProblemDetails, "serialization")],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        if operation.function_name in hidden:
            continue
        auth = health_auth if operation.auth == "health" else operation.auth
        paths.setdefault("/" + operation.route, {})[operation.method] = _operation(operation, auth)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Scheduler Bridge",
            "version": "0.1.0",
            "description": "Plain HTTP in front of the Scheduler's MCP server. Errors are RFC 9457 problems.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": schemas["$defs"], "securitySchemes": _SECURITY_SCHEMES},
    }


def _operation(operation: Operation, auth: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if operation.ok is not None:
        responses["200"] = {
            "description": "success",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=operation.ok.__name__)}}},
        }
    else:
        responses["200"] = {
            "description": "success",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    responses.update(operation.extra_responses)
    for status in operation.problems:
        responses.setdefault(
            str(status),
            {
                "description": _PROBLEM_TEXT[status],
                "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _REF.format(model="ProblemDetails")}}},
            },
        )
    if auth != "anonymous":
        responses["401"] = {
            "description": "missing or wrong function key (answered by the Functions host), or "
            "invalid-principal: App Service Authentication's principal could not be read"
        }
    described: dict[str, Any] = {
        "operationId": operation.function_name,
        "summary": operation.summary,
        "parameters": list(operation.parameters),
        "responses": responses,
        "security": [] if auth == "anonymous" else _KEYED,
        "x-auth-level": auth,
    }
    if operation.body:
        described["requestBody"] = {
            "required": False,
            "description": "The tool's arguments as one JSON object; an empty body means {}.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return described
