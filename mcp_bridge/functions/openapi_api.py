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
from typing import TYPE_CHECKING, Any

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
    from ..callers.access import caller_of
    from ..config.loader import load_settings
    from ..tool_openapi.live import CACHE_CONTROL, live_document
    from .openapi import document

    settings = load_settings()
    # An unreadable principal is a 401, as on every route; without roles the caller changes nothing.
    caller = caller_of(req.headers, settings) if _any_roles(settings) else None
    hidden = _hidden_from(caller, settings)
    # Every upstream's tools, default first; one document, each upstream under its own tag.
    shown = {name: await _tools_of(name, own, caller) for name, own in settings.upstreams.items()}
    hidden_of = {name: _hidden_from(caller, own) for name, own in settings.upstreams.items()}
    default, *others = shown
    health = health_auth_level().value.lower()

    def build(_: tuple[Any, ...]) -> dict[str, Any]:
        from ..tool_openapi.servers import add_server

        # A `/servers/{server}/...` route is left out only when no upstream lets the caller use it.
        everywhere = frozenset.intersection(*hidden_of.values())
        described = document(
            health_auth=health,
            hidden=hidden | {f"server_{name}" for name in everywhere},
            tools=shown[default],
            upstream=default,
        )
        for name in others:
            add_server(described, name, shown[name], hidden=hidden_of[name])
        return described

    everything = tuple(tool for tools in shown.values() for tool in tools or ())
    rendered = live_document.render(
        everything,
        variant=(
            health,
            tuple(sorted(hidden_of.items())),
            tuple((name, None if tools is None else len(tools)) for name, tools in shown.items()),
            None
            if caller is None
            else frozenset((n, t.name) for n, tools in shown.items() for t in tools or ()),
        ),
        build=build,
    )
    headers = {"ETag": rendered.etag, "Cache-Control": CACHE_CONTROL}
    if rendered.matches(req.headers.get("if-none-match")):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(
        body=rendered.body, status_code=200, mimetype="application/json", headers=headers
    )


def _any_roles(settings: BridgeSettings) -> bool:
    return any(own.tool_roles is not None for own in settings.upstreams.values())


async def _tools_of(upstream: str, settings: BridgeSettings, caller: Caller | None) -> tuple[Any, ...] | None:
    """The tools of `upstream` this caller may call. The default's listing failing with nothing
    listed before is the document's failure (a client generator must fail loudly); another
    upstream's leaves its tools out (None) and the rest of the document stands."""
    from ..callers.access import may_call
    from ..config.upstreams import DEFAULT_UPSTREAM
    from ..problems import Problem
    from ..runtime import get_bridge
    from ..tool_openapi.live import listing_for

    is_default = upstream == DEFAULT_UPSTREAM
    try:
        listing = await listing_for(upstream, default=is_default).tools(await get_bridge(upstream))
    except Problem as problem:
        if is_default:
            raise
        _LOGGER.warning("OpenAPI document without %s's tools: listing failed (%s)", upstream, problem.slug)
        return None
    if caller is None or settings.tool_roles is None:
        return listing
    return tuple(tool for tool in listing if may_call(caller, tool.name, settings))


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _openapi)
