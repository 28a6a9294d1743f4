"""The OpenAPI 3.1 document of the HTTP API, built from the models the handlers serialize.

Every route is declared once here with its method, parameters, success model and the problems it
can answer; tests compare this table with the functions `function_app` registers, so a new route
without a description (or a description without a route) fails the suite. Schemas come from
`models.py` through pydantic's JSON Schema (2020-12, which OpenAPI 3.1 uses as is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import models
from ..config.upstreams import DEFAULT_UPSTREAM
from ..tool_openapi.servers import add_server_routes, tag_description
from .tools_api import CONVERSATION_ID

if TYPE_CHECKING:
    from mcp_types import Tool

PROBLEM_CONTENT_TYPE = "application/problem+json"
_REF = "#/components/schemas/{model}"

# What each status means on this API (the slugs are in the README's error table).
_PROBLEM_TEXT = {
    400: "bad-request (also a bad Idempotency-Key) or invalid-arguments: the Scheduler was not called",
    403: "tool-not-allowed, or caller-not-allowed: the caller holds no role for the tool",
    404: "tool-not-found; on the operation routes operation-not-found (an unknown, foreign, malformed or "
    "expired id: always the same answer)",
    409: "request-in-progress: a call with this Idempotency-Key is still running, with Retry-After; "
    "or operation-finished: a cancel of an operation that has already finished",
    413: "payload-too-large",
    422: "tool-error: the tool ran and reported an error; or idempotency-key-reused",
    429: "too-many-operations: the caller has OPERATIONS_MAX_PER_CALLER operations in progress; Retry-After",
    500: "misconfigured: an app setting is missing or invalid",
    502: "upstream-error, upstream-response-too-large or outcome-unknown",
    503: "unavailable, identity-unavailable, idempotency-store-unavailable or operation-region-unreachable "
    "(the region holding an operation's task cannot be reached now), with Retry-After",
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
    ok_headers: dict[str, Any] = field(default_factory=dict)


_TOOL_NAME = {
    "name": "tool_name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
IDEMPOTENCY_KEY_PATTERN = r'^(?:[\x21\x23-\x7e][\x21-\x7e]*|"(?:[\x21\x23-\x5b\x5d-\x7e]|\\["\\])+")$'
"""Bare visible ASCII, or the draft's quoted string of it (`idempotency.keys`)."""
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "One key per logical operation (IETF draft 'The Idempotency-Key HTTP Header Field'): "
    "a repeat with the same key and body gets the first answer, byte for byte, with "
    "Idempotent-Replayed: true, and the Scheduler is not called again. 1 to 255 visible ASCII characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
}
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true: the stored answer to an earlier request with the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_CONVERSATION_ID_SCHEMA = {"type": "string", "pattern": CONVERSATION_ID.pattern}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "RFC 7240. `respond-async`: a tool that can run as an MCP task answers 202 at once. "
    "`wait=N`: wait at most N seconds (less than SCHEDULER_TIMEOUT_SECONDS) for a task before the 202. "
    "Ignored for tools that cannot be tasks; Preference-Applied names what was applied.",
    "schema": {"type": "string"},
}
ACCEPTED = {
    "description": "the call runs as a long-running operation (an MCP task): poll Operation-Location "
    "(with your function key) until status is Succeeded, Failed or Canceled",
    "headers": {
        "Operation-Location": {"description": "The status monitor's URL.", "schema": {"type": "string"}},
        "Retry-After": {"description": "Seconds to wait before polling.", "schema": {"type": "integer"}},
        "Preference-Applied": {"description": "The Prefer tokens applied.", "schema": {"type": "string"}},
        **REPLAYED,
    },
    "content": {"application/json": {"schema": {"$ref": _REF.format(model="OperationMonitor")}}},
}
_OPERATION_ID = {
    "name": "operation_id",
    "in": "path",
    "required": True,
    "description": "From Operation-Location.",
    "schema": {"type": "string"},
}
_POLL_AGAIN = {
    "Retry-After": {"description": "While not finished: seconds to wait.", "schema": {"type": "integer"}}
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "call_tool",
        "tools/{tool_name}",
        "post",
        "Call a Scheduler tool with a JSON object of arguments",
        models.ToolCallResult,
        (400, 403, 404, 409, 413, 422, 429, *_UPSTREAM),
        parameters=(_TOOL_NAME, IDEMPOTENCY_KEY, PREFER),
        body=True,
        extra_responses={"202": ACCEPTED},
    ),
    Operation(
        "get_operation",
        "operations/{operation_id}",
        "get",
        "The status monitor of a long-running operation",
        models.OperationMonitor,
        (404, 500, 502, 503),
        parameters=(_OPERATION_ID,),
        ok_headers=_POLL_AGAIN,
    ),
    Operation(
        "cancel_operation",
        "operations/{operation_id}/cancel",
        "post",
        "Cancel a long-running operation (MCP tasks/cancel)",
        models.OperationMonitor,
        (404, 409, 500, 503),
        parameters=(_OPERATION_ID,),
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
    Operation(
        "openapi",
        "openapi.json",
        "get",
        "This document: these routes and one typed operation per callable tool",
        None,
        _UPSTREAM,
        parameters=(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The ETag of a copy you hold: 304 without a body while it is current.",
                "schema": {"type": "string"},
            },
        ),
        extra_responses={"304": {"description": "not modified: the ETag given is still current"}},
    ),
)

_SECURITY_SCHEMES = {
    "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
    "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
}
_KEYED = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def document(
    *,
    health_auth: str = "function",
    server_url: str = "/api",
    hidden: frozenset[str] = frozenset(),
    tools: Sequence[Tool] | None = None,
    upstream: str = DEFAULT_UPSTREAM,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `health_auth` is the live `HEALTH_AUTH_LEVEL`, the operations named
    in `hidden` (function names) are left out: the caller may not use them. `tools` are the tools
    this caller may call (allowlist and roles applied); each gets an operation (`tool_openapi`).

    The default `upstream`'s tools keep the tag `tools` they had before there were several
    upstreams: a generated client names its modules by tag (`<client>.api.tools`), so renaming it
    would break every client generated before."""
    named = [
        models.ToolCallResult,
        models.ToolList,
        models.ConversationStatus,
        models.HealthView,
        models.OperationMonitor,
    ]
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
    described = {
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
    if tools is not None and "call_tool" not in hidden:
        from ..tool_openapi.operations import TAG, add_tool_operations

        add_tool_operations(
            described,
            tools,
            generic_path="/tools/{tool_name}",
            tag=TAG,
            tag_description=tag_description(upstream, default=True),
        )
    add_server_routes(described, hidden=hidden)  # after the tools: their enum is not a server's
    return described


def _operation(operation: Operation, auth: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if operation.ok is not None:
        responses["200"] = {
            "description": "success",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=operation.ok.__name__)}}},
        }
        if operation.body:
            responses["200"]["headers"] = REPLAYED
        if operation.ok_headers:
            responses["200"]["headers"] = operation.ok_headers
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
