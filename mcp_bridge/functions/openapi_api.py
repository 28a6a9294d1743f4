"""`GET /api/openapi.json`: the HTTP API's OpenAPI 3.1 document.

Function-level, like the API it describes: the document names no secret, but it maps the surface
for anyone who finds the host, and every legitimate reader (a client generator, an API gateway
import, the fuzz tests) holds a function key anyway. It is built once per process; the only
setting it reflects, `HEALTH_AUTH_LEVEL`, is fixed when the functions are indexed.
"""

from __future__ import annotations

import json
import logging
from functools import cache

import azure.functions as func

from .health_api import health_auth_level
from .tools_api import respond

_LOGGER = logging.getLogger(__name__)

bp = func.Blueprint()


@cache
def _rendered() -> str:
    from .openapi import document  # pydantic is not needed to index the functions

    return json.dumps(document(health_auth=health_auth_level().value.lower()), separators=(",", ":"))


async def _openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        body=_rendered(),
        status_code=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _openapi, needs_settings=False)  # a static document: no setting needed
