"""`GET /api/openapi.json`: the HTTP API's OpenAPI 3.1 document, one operation per callable tool.

Function-level, like the API it describes: the document names no secret, but it maps the surface
for anyone who finds the host, and every legitimate reader (a client generator, an API gateway
import, the fuzz tests) holds a function key anyway. The tools come from the bridge's own listing
(`tool_openapi.live`), so the document follows the catalog, `tools/list_changed` included. It
reflects `HEALTH_AUTH_LEVEL`, fixed when the functions are indexed, and, with
`SCHEDULER_TOOL_ROLES` set, the caller: an operation or a tool the caller may not use is left out.
It carries an `ETag`; `If-None-Match` with the current one answers 304 without a body.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from .health_api import health_auth_level
from .tools_api import respond

if TYPE_CHECKING:
    from ..callers.principal import Caller
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

_STATUS_OPERATIONS = ("conversation_status", "conversation_status_query")
_OPERATION_ROUTES = ("get_operation", "cancel_operation")
"""A caller who may call no tool can own no long-running operation either."""

bp = func.Blueprint()


def _hidden_from(caller: Caller | None, settings: BridgeSettings) -> frozenset[str]:
    """The generic operations this caller may not use (none without `SCHEDULER_TOOL_ROLES`)."""
    from ..callers.access import may_call, may_call_any

    if caller is None:
        return frozenset()
    hidden: set[str] = set()
    if not may_call_any(caller, settings):
        hidden.update(("call_tool", *_OPERATION_ROUTES))
    if not may_call(caller, settings.scheduler_status_tool, settings):
        hidden.update(_STATUS_OPERATIONS)
    return frozenset(hidden)


async def _openapi(req: func.HttpRequest) -> func.HttpResponse:
    from ..callers.access import caller_of, may_call
    from ..config.loader import load_settings
    from ..runtime import get_bridge
    from ..tool_openapi.live import CACHE_CONTROL, live_document
    from .openapi import document

    settings = load_settings()
    # An unreadable principal is a 401, as on every route; without roles the caller changes nothing.
    caller = caller_of(req.headers, settings) if settings.tool_roles is not None else None
    hidden = _hidden_from(caller, settings)
    listing = await live_document.tools(await get_bridge())
    tools = listing if caller is None else tuple(t for t in listing if may_call(caller, t.name, settings))
    health = health_auth_level().value.lower()
    rendered = live_document.render(
        tools,
        variant=(health, hidden, None if caller is None else frozenset(t.name for t in tools)),
        build=lambda shown: document(health_auth=health, hidden=hidden, tools=shown),
    )
    headers = {"ETag": rendered.etag, "Cache-Control": CACHE_CONTROL}
    if rendered.matches(req.headers.get("if-none-match")):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(
        body=rendered.body, status_code=200, mimetype="application/json", headers=headers
    )


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _openapi)
