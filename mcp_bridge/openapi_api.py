"""`GET /api/openapi.json`: the HTTP API's OpenAPI 3.1 document, one operation per callable tool.

Function-level, like the API it describes: the document names no secret, but it maps the surface
for anyone who finds the host, and every legitimate reader (a client generator, an API gateway
import, the fuzz tests) holds a function key anyway. The tools come from the bridge's own listing
(`tool_openapi.live`), so the document follows the catalog, `tools/list_changed` included; it
carries an `ETag`, and `If-None-Match` with the current one answers 304 without a body.
"""

from __future__ import annotations

import logging

import azure.functions as func

from .health_api import health_auth_level
from .http_api import respond

_LOGGER = logging.getLogger(__name__)

bp = func.Blueprint()


async def _openapi(req: func.HttpRequest) -> func.HttpResponse:
    from .runtime import get_bridge
    from .tool_openapi.live import CACHE_CONTROL, live_document

    bridge = await get_bridge()
    rendered = await live_document.current(bridge, health_auth=health_auth_level().value.lower())
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
