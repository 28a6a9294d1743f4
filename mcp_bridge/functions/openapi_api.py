"""`GET /api/openapi.json`: the HTTP API's OpenAPI 3.1 document.

Function-level, like the API it describes: the document names no secret, but it maps the surface
for anyone who finds the host, and every legitimate reader (a client generator, an API gateway
import, the fuzz tests) holds a function key anyway. It reflects `HEALTH_AUTH_LEVEL`, fixed when the
functions are indexed, and, with `SCHEDULER_TOOL_ROLES` set, the caller: an operation the caller
may not use is left out. Each variant is rendered once per process.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import azure.functions as func

from .health_api import health_auth_level
from .tools_api import respond

_LOGGER = logging.getLogger(__name__)

_STATUS_OPERATIONS = ("conversation_status", "conversation_status_query")

bp = func.Blueprint()


@lru_cache(maxsize=8)  # at most four variants: with or without the tool and the status operations
def _rendered(hidden: frozenset[str]) -> str:
    from .openapi import document  # pydantic is not needed to index the functions

    rendered = document(health_auth=health_auth_level().value.lower(), hidden=hidden)
    return json.dumps(rendered, separators=(",", ":"))


async def _hidden_from(req: func.HttpRequest) -> frozenset[str]:
    """The operations this request's caller may not use.

    With the settings unreadable the whole document is served, as before roles existed: every call
    answers 500 then anyway, and the document names no tool."""
    from ..callers.access import caller_of, may_call, may_call_any
    from ..config.settings import SettingsError
    from ..problems import Problem
    from ..runtime import ensure_settings

    try:
        settings = await ensure_settings()
    except (SettingsError, Problem):
        return frozenset()
    if settings.tool_roles is None:
        return frozenset()
    caller = caller_of(req.headers, settings)  # an unreadable principal is a 401, as on every route
    hidden: set[str] = set()
    if not may_call_any(caller, settings):
        hidden.add("call_tool")
    if not may_call(caller, settings.scheduler_status_tool, settings):
        hidden.update(_STATUS_OPERATIONS)
    return frozenset(hidden)


async def _openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        body=_rendered(await _hidden_from(req)),
        status_code=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _openapi, needs_settings=False)  # served whole even while settings are bad
