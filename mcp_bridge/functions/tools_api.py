"""The HTTP functions: plain JSON in and out, problem+json on every failure.

Handlers only parse and shape. Everything that touches the Scheduler goes through the shared
`SchedulerBridge`, so bad input is refused here before any upstream call is made.

The bridge, its settings and everything they pull in (mcp, httpx2, pydantic, jsonschema,
azure-identity) are imported on the first request, not here: the host imports this module to
index the functions, and indexing needs only the decorators (cold start; README "Performance").
The handlers' bodies live in `tool_handlers`, which imports all of that at its top; `handlers()`
imports it once and keeps it, so no call pays for an import statement again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import azure.functions as func

from .. import redaction
from ..problems import Misconfigured, Problem
from . import event_stream
from .request_body import (  # noqa: F401  (the routes' request checks, long imported from here)
    CONVERSATION_ID,
    MAX_ARGUMENT_DEPTH,
    MISSING_ID_MESSAGE,
    check_conversation_id,
    read_arguments,
)

if TYPE_CHECKING:  # imported by the handlers, not at indexing time
    from ..config.settings import BridgeSettings

_LOGGER = logging.getLogger(__name__)

bp = func.Blueprint()

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]

_handlers: ModuleType | None = None


def handlers() -> ModuleType:
    """`tool_handlers`, imported on the first request and kept for the life of the process."""
    global _handlers
    if _handlers is None:
        from . import tool_handlers

        _handlers = tool_handlers
    return _handlers


async def respond(
    req: func.HttpRequest, handler: Handler, *, needs_settings: bool = True
) -> func.HttpResponse:
    """Run `handler`, turning every failure into problem+json without internals or secrets."""
    redaction.install()
    instance = urlsplit(req.url).path  # never the query string: it may hold the function key
    try:
        if needs_settings:
            await handlers().ensure_settings()  # resolves Key Vault references on first use; then a cache hit
        return await handler(req)
    except Problem as problem:
        return problem.to_response(instance)
    except Exception as exc:
        from ..config.loader import SettingsError  # on a failure only: a success imports nothing

        if isinstance(exc, SettingsError):
            return Misconfigured(
                "the bridge's app settings are invalid: " + str(exc),
                settings=[{"name": name, "problem": message} for name, message in exc.problems],
            ).to_response(instance)
        _LOGGER.exception("Unhandled error in %s", redaction.printable(instance))
        return Problem("an unexpected error occurred; see the function's logs").to_response(instance)


def upstream_settings(req: func.HttpRequest) -> BridgeSettings:
    """The settings of the upstream a route names (`/api/servers/{server}/...`, any case), or the
    default's on the routes without one. Raises `UnknownServer` (404) listing the known names."""
    return handlers().upstream_settings(req)


async def _call_tool(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers().call_tool(req)


async def _list_tools(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers().list_tools(req)


async def _conversation_status(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers().status_of(req, req.route_params.get("conversation_id", ""))


async def _conversation_status_query(req: func.HttpRequest) -> func.HttpResponse:
    return await handlers().status_of(req, req.params.get("conversation_id"))


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
