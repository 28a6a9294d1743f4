"""HTTP streams in the devstack host, decided and served as the Python worker does.

The worker turns HTTP streams on for the whole app when `PYTHON_ENABLE_INIT_INDEXING` is true and a
web extension (`azurefunctions-extensions-http-fastapi`) was imported while the app was indexed
(azure-functions-python-worker `http_v2.py`). The host then proxies each HTTP request to the
worker, which passes the function a FastAPI `Request` carrying the route values as `path_params`,
and sends back the FastAPI response the function returns, streamed as it is produced. This host
does the same in-process: the Starlette request (FastAPI's `Request` is Starlette's), with Easy
Auth's rewritten headers, goes to the function; its response is served as it is, so a
`StreamingResponse` reaches the client chunk by chunk.

An app that imports the extension without `PYTHON_ENABLE_INIT_INDEXING` would hang in Azure (the
worker waits for a proxied request the host never sends), so this host refuses to start instead.
"""

from __future__ import annotations

import os
import sys

from starlette.requests import Request
from starlette.responses import Response

INIT_INDEXING = "PYTHON_ENABLE_INIT_INDEXING"
_TRUE = ("1", "true")


class HttpStreamsMisconfigured(RuntimeError):
    """The app imports the HTTP streams extension but the setting that enables it is off."""


def streams_enabled() -> bool:
    """Whether the loaded app runs with HTTP streams, by the worker's rule (call after indexing)."""
    base = sys.modules.get("azurefunctions.extensions.base")
    imported = base is not None and base.ModuleTrackerMeta.module_imported()  # type: ignore[attr-defined]
    if not imported:
        return False
    if os.environ.get(INIT_INDEXING, "").strip().lower() not in _TRUE:
        raise HttpStreamsMisconfigured(
            f"the app imports an HTTP streams extension but {INIT_INDEXING} is not 1: "
            "Azure would never deliver its HTTP requests; set it (docs/streaming.md)"
        )
    return True


def stream_request(request: Request, route_values: dict[str, str], headers: dict[str, str] | None) -> Request:
    """The request the worker hands the function: route values as path params, Easy Auth's headers."""
    scope = dict(request.scope)
    scope["path_params"] = dict(route_values)
    if headers is not None:
        scope["headers"] = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
    return Request(scope, request.receive)


def stream_response(result: object) -> Response:
    if not isinstance(result, Response):
        raise TypeError(
            f"an HTTP streams function returned {type(result).__name__}, expected a FastAPI response"
        )
    return result
