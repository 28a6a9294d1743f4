"""The bodies of the tool and conversation routes, which `tools_api` registers: parse, check, call
the shared bridge, shape the answer.

This module imports what they use at the top, once: `tools_api` imports it on the first request
(`tools_api.handlers()`), never at indexing, so the host still indexes the functions without
pydantic, the MCP SDK or the settings. A function-level import runs again on every call, about 1 µs
each; the dozen the handlers made cost 13.6 µs a call (docs/performance.md, "Where the time goes").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from .. import models, redaction
from ..callers import audit
from ..callers.access import caller_of, may_call, require
from ..callers.audit import AuditRecord
from ..calls.outcomes import dump_content, result_text
from ..config.loader import load_settings
from ..config.settings import BridgeSettings
from ..config.upstreams import DEFAULT_UPSTREAM
from ..idempotency.keys import idempotency_key
from ..idempotency.once import Policy, call_once
from ..idempotency.records import REPLAYED_HEADER
from ..idempotency.shared import store_for
from ..problems import BadRequest, Problem, UnknownServer
from ..runtime import ensure_settings, get_bridge
from .request_body import MISSING_ID_MESSAGE, check_conversation_id, read_arguments
from .task_calls import requires_task, start_operation, wants_task, wants_task_listed

# What `tools_api` reaches through `handlers()`; `ensure_settings` is the runtime's, for `respond`.
__all__ = ["call_tool", "ensure_settings", "list_tools", "status_of", "upstream_settings"]


def _json(body: models.ToolCallResult | models.ToolList | models.ConversationStatus) -> func.HttpResponse:
    return func.HttpResponse(
        body=body.to_json(),
        status_code=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


def upstream_settings(req: func.HttpRequest) -> BridgeSettings:
    """The settings of the upstream a route names (`/api/servers/{server}/...`, any case), or the
    default's on the routes without one. Raises `UnknownServer` (404) listing the known names."""
    settings = load_settings()
    server = req.route_params.get("server")
    if server is None:
        return settings
    own = settings.upstreams.get(server.lower())
    if own is None:
        known = list(settings.upstreams)
        raise UnknownServer(
            f"no server is named {redaction.printable(server[:64])!r}; known: {', '.join(known)}",
            servers=known,
        )
    return own


async def call_tool(req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/tools/{tool_name}` (and `/api/servers/{server}/tools/{tool_name}`)."""
    settings = upstream_settings(req)
    upstream = settings.upstream_name
    name = req.route_params.get("tool_name", "")
    with audit.tool_call(
        name, idempotency_key=req.headers.get("idempotency-key"), upstream=upstream
    ) as record:
        record.caller = caller = caller_of(req.headers, settings)
        require(caller, name, settings)  # before the body is even read: a refusal costs nothing
        key = idempotency_key(req.headers)  # a bad key is a 400 before the body is read
        arguments = read_arguments(req, settings.max_request_bytes)
        bridge = await get_bridge(upstream)

        async def call() -> func.HttpResponse:
            task = wants_task(bridge, name, req.headers)
            if task is None and req.headers.get("prefer"):  # a preference needs the listing: fetch it
                task = await wants_task_listed(bridge, name, req.headers)
            if task:  # an MCP task: 200 if it ends in time, else 202 (task_calls)
                return await start_operation(req, bridge, settings, name, arguments, caller)
            try:
                outcome = await bridge.call_tool(name, arguments)
            except Problem as problem:
                if requires_task(bridge, name, problem):
                    # The server refused, unrun, a tool that runs only as a task, and nothing listed
                    # said so before (a fresh process, or a 2026-07-28 server): start it as one.
                    return await start_operation(req, bridge, settings, name, arguments, caller)
                raise
            result = outcome.result
            return _json(
                models.ToolCallResult(
                    tool=outcome.tool,
                    endpoint=outcome.endpoint,
                    content=dump_content(result),
                    structured_content=result.structured_content,
                )
            )

        if key is None:
            return await call()
        scope = caller.id if caller.is_principal and caller.id else "key"
        if upstream != DEFAULT_UPSTREAM:  # one key, two servers' tools: two records
            scope = f"{upstream}/{scope}"
        return await _call_once(req, record, key, scope, name, arguments, settings, call)


async def _call_once(
    req: func.HttpRequest,
    record: AuditRecord,
    key: str,
    scope: str,
    name: str,
    arguments: dict[str, Any],
    settings: BridgeSettings,
    call: Callable[[], Awaitable[func.HttpResponse]],
) -> func.HttpResponse:
    """The call under its `Idempotency-Key` (mcp_bridge.idempotency); the audit record says what the
    caller got when that was not a fresh run (a replay, 409, 422), since the call path never saw it."""
    response = await call_once(
        await store_for(settings),
        key=key,
        tool=name,
        arguments=arguments,
        policy=Policy(settings.scheduler_timeout_seconds, settings.idempotency_ttl_seconds),
        call=call,
        instance=urlsplit(req.url).path,
        scope=scope,
    )
    if response.headers.get(REPLAYED_HEADER):
        record.outcome, record.status = "replayed", response.status_code
    elif response.status_code != 200 and record.outcome in (None, "ok"):
        record.outcome, record.status = _problem_slug(response), response.status_code
    return response


def _problem_slug(response: func.HttpResponse) -> str:
    try:
        return str(json.loads(response.get_body())["type"]).rsplit(":", 1)[-1]
    except (ValueError, KeyError, TypeError):
        return "error"


async def list_tools(req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/tools`: the tools this caller may call."""
    settings = upstream_settings(req)
    caller = caller_of(req.headers, settings)
    bridge = await get_bridge(settings.upstream_name)
    endpoint, tools = await bridge.list_tools()
    visible = [t for t in tools if may_call(caller, t.tool.name, settings)]  # only what it may call
    return _json(
        models.ToolList(
            endpoint=endpoint, tools=[models.ToolDescription.model_validate(t.describe()) for t in visible]
        )
    )


async def status_of(req: func.HttpRequest, conversation_id: str | None) -> func.HttpResponse:
    """The conversation status routes: the configured status tool, called with `conversation_id`."""
    settings = load_settings()
    tool = settings.scheduler_status_tool
    with audit.tool_call(tool, upstream=settings.upstream_name) as record:
        record.caller = caller = caller_of(req.headers, settings)
        require(caller, tool, settings)
        if not conversation_id:
            raise BadRequest(MISSING_ID_MESSAGE)
        check_conversation_id(conversation_id)
        bridge = await get_bridge()
        outcome = await bridge.call_tool(tool, {settings.scheduler_status_argument: conversation_id})
    result = outcome.result
    status = result.structured_content if result.structured_content is not None else result_text(result)
    return _json(
        models.ConversationStatus(conversation_id=conversation_id, status=status, endpoint=outcome.endpoint)
    )
