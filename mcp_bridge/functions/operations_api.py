"""The routes of long-running operations (docs/long-running.md):

    GET  /api/operations/{id}              the status monitor
    POST /api/operations/{id}/cancel       `tasks/cancel`; 409 once the operation has finished

and the same under `/api/servers/{server}/` for each upstream's operations (`servers_api`).

How a tool call becomes an operation (the 202 that names these routes) is `task_calls`.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import azure.functions as func

from .tools_api import respond

bp = func.Blueprint()


async def _get_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await _on_operation(req, cancel=False)


async def _cancel_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await _on_operation(req, cancel=True)


async def _on_operation(req: func.HttpRequest, *, cancel: bool) -> func.HttpResponse:
    from ..callers.access import caller_of, may_call
    from ..operations.service import operations_for
    from ..runtime import get_bridge
    from .tools_api import upstream_settings

    settings = upstream_settings(req)  # `/api/servers/{server}/operations/...`: that upstream's
    caller = caller_of(req.headers, settings)
    operation_id = req.route_params.get("operation_id", "")
    operations = await operations_for(await get_bridge(settings.upstream_name), settings)
    instance = urlsplit(req.url).path
    # The caller must still hold the tool's role: one taken away since hides the operation too.
    allowed = lambda tool: may_call(caller, tool, settings)  # noqa: E731
    action = operations.cancel if cancel else operations.read
    view, record = await action(operation_id, caller=caller, instance=instance, may_call=allowed)
    headers = {"Cache-Control": "no-store"}
    if not record.terminal:
        headers["Retry-After"] = str(max(1, math.ceil(record.poll_interval_ms / 1000)))
    return func.HttpResponse(
        body=view.to_json(), status_code=200, mimetype="application/json", headers=headers
    )


@bp.function_name("get_operation")
@bp.route(
    route="operations/{operation_id}", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION
)
async def get_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _get_operation)


@bp.function_name("cancel_operation")
@bp.route(
    route="operations/{operation_id}/cancel",
    methods=[func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def cancel_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _cancel_operation)
