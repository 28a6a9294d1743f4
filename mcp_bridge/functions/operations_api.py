"""The routes of long-running operations (docs/long-running.md):

    GET  /api/operations/{id}              the status monitor; with `Accept: text/event-stream` (and
                                           HTTP streams on) its changes as events, then the end
    POST /api/operations/{id}/cancel       `tasks/cancel`; 409 once the operation has finished

and the same under `/api/servers/{server}/` for each upstream's operations (`servers_api`).

How a tool call becomes an operation (the 202 that names these routes) is `task_calls`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from . import event_stream
from .tools_api import respond

bp = func.Blueprint()


async def _get_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await _on_operation(req, cancel=False)


async def _cancel_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await _on_operation(req, cancel=True)


async def _watch_operation(req: func.HttpRequest) -> func.HttpResponse:
    """The status monitor as Server-Sent Events (mcp_bridge.functions.event_stream): a `progress`
    event per change, then `result` or `problem`. Reads go through the operations' shared poller
    (`operations.watch`); a 404 or 503 before the first snapshot is the ordinary problem."""
    import json

    from ..callers.access import caller_of, may_call
    from ..operations.service import operations_for
    from ..operations.watch import watch
    from ..runtime import get_bridge
    from .tools_api import upstream_settings

    settings = upstream_settings(req)  # `/api/servers/{server}/operations/...`: that upstream's
    caller = caller_of(req.headers, settings)
    operations = await operations_for(await get_bridge(settings.upstream_name), settings)
    instance = urlsplit(req.url).path
    snapshots = watch(
        operations,
        req.route_params.get("operation_id", ""),
        caller=caller,
        instance=instance,
        may_call=lambda tool: may_call(caller, tool, settings),
    ).__aiter__()
    first = await snapshots.__anext__()  # raises the ordinary problem before anything is streamed

    async def monitors() -> AsyncIterator[dict[str, Any]]:
        yield json.loads(first.monitor.to_json())
        async for snapshot in snapshots:
            yield json.loads(snapshot.monitor.to_json())

    return await event_stream.events_of(event_stream.monitor_events(monitors(), instance=instance))


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
    if event_stream.requested(req):
        return await respond(req, _watch_operation)
    return await respond(req, _get_operation)


@bp.function_name("cancel_operation")
@bp.route(
    route="operations/{operation_id}/cancel",
    methods=[func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def cancel_operation(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _cancel_operation)
