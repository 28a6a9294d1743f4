"""The HTTP functions: plain JSON in and out, problem+json on every failure.

Handlers only parse and shape. Everything that touches the Scheduler goes through the shared
`SchedulerBridge`, so bad input is refused here before any upstream call is made.

The bridge, its settings and everything they pull in (mcp, httpx2, pydantic, jsonschema,
azure-identity) are imported by the handlers on first use, not here: the host imports this module
to index the functions, and indexing needs only the decorators (cold start; README "Performance").
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func

from .. import redaction
from ..problems import BadRequest, Misconfigured, PayloadTooLarge, Problem
from . import event_stream

if TYPE_CHECKING:  # pydantic models are imported by the handlers, not at indexing time
    from .. import models
    from ..callers.audit import AuditRecord
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

CONVERSATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MISSING_ID_MESSAGE = "Please pass a conversation_id on the query string"
MAX_ARGUMENT_DEPTH = 32

bp = func.Blueprint()

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def _json(body: models.ToolCallResult | models.ToolList | models.ConversationStatus) -> func.HttpResponse:
    return func.HttpResponse(
        body=body.to_json(),
        status_code=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def respond(
    req: func.HttpRequest, handler: Handler, *, needs_settings: bool = True
) -> func.HttpResponse:
    """Run `handler`, turning every failure into problem+json without internals or secrets."""
    from ..config.loader import SettingsError

    redaction.install()
    instance = urlsplit(req.url).path  # never the query string: it may hold the function key
    try:
        if needs_settings:
            from ..runtime import ensure_settings

            await ensure_settings()  # resolves Key Vault references on first use; then a cache hit
        return await handler(req)
    except Problem as problem:
        return problem.to_response(instance)
    except SettingsError as exc:
        return Misconfigured(
            "the bridge's app settings are invalid: " + str(exc),
            settings=[{"name": name, "problem": message} for name, message in exc.problems],
        ).to_response(instance)
    except Exception:
        _LOGGER.exception("Unhandled error in %s", redaction.printable(instance))
        return Problem("an unexpected error occurred; see the function's logs").to_response(instance)


def upstream_settings(req: func.HttpRequest) -> BridgeSettings:
    """The settings of the upstream a route names (`/api/servers/{server}/...`, any case), or the
    default's on the routes without one. Raises `UnknownServer` (404) listing the known names."""
    from ..config.loader import load_settings
    from ..problems import UnknownServer

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


def read_arguments(req: func.HttpRequest, max_bytes: int) -> dict[str, Any]:
    """The JSON object of tool arguments; an empty body means `{}`."""
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes", max_bytes=max_bytes)
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes", max_bytes=max_bytes)
    if not body.strip():
        return {}
    try:
        # RFC 8259: JSON between systems is UTF-8, and NaN/Infinity are not JSON.
        arguments = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except _NotJson as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body's JSON is nested too deeply") from None
    if not isinstance(arguments, dict):
        raise BadRequest(f"the body must be a JSON object of tool arguments, not {type(arguments).__name__}")
    if _nesting(arguments) > MAX_ARGUMENT_DEPTH:
        # Deeper than any tool's schema goes, and past what the MCP SDK can serialize.
        raise BadRequest(f"the body's JSON is nested deeper than {MAX_ARGUMENT_DEPTH} levels")
    return arguments


def _nesting(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


class _NotJson(ValueError):
    pass


def _not_json(constant: str) -> Any:
    raise _NotJson(f"{constant} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_not_json)
"""Built once: `json.loads` with any keyword builds a new decoder (and scanner) per call."""


def check_conversation_id(conversation_id: str) -> str:
    if not CONVERSATION_ID.fullmatch(conversation_id):
        raise BadRequest(
            "conversation_id must be 1 to 128 characters from A-Z, a-z, 0-9, '.', '_', ':' and '-'"
        )
    return conversation_id


async def _call_tool(req: func.HttpRequest) -> func.HttpResponse:
    from .. import models
    from ..callers import audit
    from ..callers.access import caller_of, require
    from ..calls.outcomes import dump_content
    from ..config.upstreams import DEFAULT_UPSTREAM
    from ..idempotency.keys import idempotency_key
    from ..runtime import get_bridge
    from .task_calls import requires_task, start_operation, wants_task, wants_task_listed

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
    from ..idempotency.once import Policy, call_once
    from ..idempotency.records import REPLAYED_HEADER
    from ..idempotency.shared import store_for

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


async def _list_tools(req: func.HttpRequest) -> func.HttpResponse:
    from .. import models
    from ..callers.access import caller_of, may_call
    from ..runtime import get_bridge

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


async def _status_of(req: func.HttpRequest, conversation_id: str | None) -> func.HttpResponse:
    from .. import models
    from ..callers import audit
    from ..callers.access import caller_of, require
    from ..calls.outcomes import result_text
    from ..config.loader import load_settings
    from ..runtime import get_bridge

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


async def _conversation_status(req: func.HttpRequest) -> func.HttpResponse:
    return await _status_of(req, req.route_params.get("conversation_id", ""))


async def _conversation_status_query(req: func.HttpRequest) -> func.HttpResponse:
    return await _status_of(req, req.params.get("conversation_id"))


@bp.function_name("call_tool")
@bp.route(route="tools/{tool_name}", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.FUNCTION)
async def call_tool(req: func.HttpRequest) -> func.HttpResponse:
    if event_stream.requested(req):  # Accept: text/event-stream, with HTTP streams on
        return await event_stream.relay_call(lambda: respond(req, _call_tool))
    return await respond(req, _call_tool)


@bp.function_name("list_tools")
@bp.route(route="tools", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def list_tools(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _list_tools)


@bp.function_name("conversation_status")
@bp.route(
    route="conversations/{conversation_id}/status",
    methods=[func.HttpMethod.GET],
    auth_level=func.AuthLevel.FUNCTION,
)
async def conversation_status(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _conversation_status)


@bp.function_name("conversation_status_query")
@bp.route(route="conversation-status", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def conversation_status_query(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _conversation_status_query)
