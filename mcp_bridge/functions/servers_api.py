"""`/api/servers/{server}/tools` and `/api/servers/{server}/tools/{tool}`: the same two operations as
`/api/tools` and `/api/tools/{tool}`, on the upstream `{server}` names (`MCP_UPSTREAMS`).

The handlers are the tools routes' own (`tools_api`): they read `{server}` from the route and pick
that upstream's settings, roles and bridge. `/api/servers/scheduler/...` is the default upstream,
the same as the routes without a server. An unknown server is a 404 `unknown-server` problem that
lists the known ones, answered before the body is read or any upstream is called.
"""

from __future__ import annotations

import azure.functions as func

from .tools_api import _call_tool, _list_tools, respond

bp = func.Blueprint()


@bp.function_name("server_call_tool")
@bp.route(
    route="servers/{server}/tools/{tool_name}",
    methods=[func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def server_call_tool(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _call_tool)


@bp.function_name("server_list_tools")
@bp.route(route="servers/{server}/tools", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def server_list_tools(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _list_tools)
