"""`/api/servers/{server}/tools`, `/api/servers/{server}/tools/{tool}` and
`/api/servers/{server}/operations/{id}[/cancel]`: the routes of `/api/tools...` and
`/api/operations...`, on the upstream `{server}` names (`MCP_UPSTREAMS`).

The handlers are those routes' own (`tools_api`, `operations_api`): they read `{server}` from the
route and pick that upstream's settings, roles, bridge and operations.
`/api/servers/scheduler/...` is the default upstream, the same as the routes without a server. An
unknown server is a 404 `unknown-server` problem that lists the known ones, answered before the
body is read or any upstream is called.
"""

from __future__ import annotations

import azure.functions as func

from . import event_stream
from .operations_api import _cancel_operation, _get_operation, _watch_operation
from .tools_api import _call_tool, _list_tools, respond

bp = func.Blueprint()


@bp.function_name("server_call_tool")
@bp.route(
    route="servers/{server}/tools/{tool_name}",
    methods=[func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def server_call_tool(req: func.HttpRequest) -> func.HttpResponse:
    if event_stream.requested(req):  # Accept: text/event-stream, with HTTP streams on
        return await event_stream.relay_call(lambda: respond(req, _call_tool))
    return await respond(req, _call_tool)


@bp.function_name("server_list_tools")
@bp.route(route="servers/{server}/tools", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def server_list_tools(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _list_tools)


@bp.function_name("server_get_operation")
@bp.route(
    route="servers/{server}/operations/{operation_id}",
    methods=[func.HttpMethod.GET],
    auth_level=func.AuthLevel.FUNCTION,
)
async def server_get_operation(req: func.HttpRequest) -> func.HttpResponse:
    if event_stream.requested(req):
        return await respond(req, _watch_operation)
    return await respond(req, _get_operation)


@bp.function_name("server_cancel_operation")
@bp.route(
    route="servers/{server}/operations/{operation_id}/cancel",
    methods=[func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def server_cancel_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _cancel_operation)
