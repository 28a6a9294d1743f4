"""HTTP streams on Azure Functions: the app-wide switch, and the adapter that keeps the handlers as they are.

A Python function streams a response only through HTTP streams, the
`azurefunctions-extensions-http-fastapi` extension (Functions host 4.34.1 or later, the v2
programming model, `PYTHON_ENABLE_INIT_INDEXING=1`). The switch belongs to the whole app, not to a
route: once the extension is imported while the worker indexes the app, the host proxies every HTTP
request to the worker's own HTTP server, and the worker hands every HTTP function a FastAPI
`Request` and sends back whatever FastAPI response it returns (azure-functions-python-worker,
`http_v2.py` and the invocation path of `dispatcher.py`). A streaming route beside ordinary ones in
the same app is not possible.

So the bridge decides once, at indexing, from the `HTTP_STREAMS` app setting (and only with
`PYTHON_ENABLE_INIT_INDEXING=1`, without which Azure would never deliver a request):

- off: the extension is never imported and nothing here runs; `Accept: text/event-stream` is
  ignored and the ordinary answer goes out.
- on: `enable(app)` imports the extension and wraps every HTTP function of the app (the bridge's
  and any added later) in an adapter: the FastAPI request becomes the same `func.HttpRequest` the
  handler always got (method, URL, headers with repeats joined, query, route values, body), and the
  handler's `func.HttpResponse` becomes a FastAPI response with the same status, headers and bytes,
  or a `StreamingResponse` for a `StreamedAnswer` (mcp_bridge.functions.event_stream makes them).

The adapter swaps the user function inside each registered `azure.functions` function builder:
azure-functions offers no public way to do that after registration (tests/test_http_streams.py
fails loudly if that ever changes).
"""

from __future__ import annotations

import inspect
import logging
import os
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import azure.functions as func
from azure.functions.decorators.constants import HTTP_TRIGGER

_LOGGER = logging.getLogger(__name__)

SETTING = "HTTP_STREAMS"  # the EnvVar names, spelt here too: settings.py is not imported at indexing
INIT_INDEXING_SETTING = "PYTHON_ENABLE_INIT_INDEXING"
_TRUE = ("1", "true", "yes")
_active = False


class StreamedAnswer(func.HttpResponse):
    """An answer whose body is an async iterator of chunks, sent as they come (HTTP streams only)."""

    def __init__(self, chunks: AsyncIterator[bytes], *, mimetype: str, headers: dict[str, str]) -> None:
        super().__init__(status_code=200, mimetype=mimetype, charset="utf-8", headers=headers)
        self.chunks = chunks


def configured() -> bool:
    """Whether to turn HTTP streams on (read at indexing): `HTTP_STREAMS` and init indexing both on.

    The worker tells the host where to proxy requests only with `PYTHON_ENABLE_INIT_INDEXING`;
    importing the extension without it would leave every HTTP request waiting in Azure, so the
    bridge then stays classic and says why.
    """
    if os.environ.get(SETTING, "").strip().lower() not in _TRUE:
        return False
    if os.environ.get(INIT_INDEXING_SETTING, "").strip().lower() not in _TRUE:
        _LOGGER.warning(
            "%s is on but %s is not 1: HTTP streams stay off (Azure needs both; docs/streaming.md)",
            SETTING,
            INIT_INDEXING_SETTING,
        )
        return False
    return True


def enabled() -> bool:
    """Whether this app was indexed with HTTP streams on, so a handler may return a stream."""
    return _active


def enable(app: func.FunctionApp) -> int:
    """Turn HTTP streams on for `app` (before the worker indexes it); returns the functions adapted."""
    global _active
    # Importing the extension is what switches the worker (and the host) to HTTP streams.
    from azurefunctions.extensions.http.fastapi import Request, Response

    adapted = 0
    for builder in app._function_builders:  # no public hook; see the module docstring
        function = builder._function
        trigger = function.get_trigger()  # (is_http_function() is only set once the app is built)
        if trigger is None or trigger.get_binding_name() != HTTP_TRIGGER:
            continue
        if not getattr(function._func, "_http_stream_adapter", False):
            function._func = _adapter(function._func, trigger.name, Request, Response)
            adapted += 1
    _active = True
    return adapted


def _adapter(
    handler: Callable[..., Awaitable[func.HttpResponse]],
    trigger: str,
    request_type: type,
    response_type: type,
) -> Callable[..., Awaitable[Any]]:
    """`handler` taking the FastAPI request and answering a FastAPI response, as the worker expects."""
    hints = typing.get_type_hints(handler)
    signature = inspect.signature(handler)
    parameters = [
        parameter.replace(
            annotation=request_type if name == trigger else hints.get(name, parameter.annotation)
        )
        for name, parameter in signature.parameters.items()
    ]

    async def streamed(**kwargs: Any) -> Any:
        kwargs[trigger] = await function_request(kwargs[trigger])
        return fastapi_response(await handler(**kwargs))

    streamed.__name__, streamed.__qualname__ = handler.__name__, handler.__qualname__
    streamed.__module__, streamed.__doc__ = handler.__module__, handler.__doc__
    streamed.__signature__ = signature.replace(parameters=parameters, return_annotation=response_type)  # type: ignore[attr-defined]
    streamed.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": response_type}
    streamed._http_stream_adapter = True  # type: ignore[attr-defined]
    return streamed


async def function_request(request: Any) -> func.HttpRequest:
    """The `func.HttpRequest` the classic worker would have built from this FastAPI request."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params=dict(request.query_params),
        route_params=dict(request.path_params),
        body=await request.body(),
    )


def fastapi_response(answer: func.HttpResponse) -> Any:
    """The FastAPI response for a handler's answer: same status, headers and bytes, or a stream."""
    from starlette.responses import Response, StreamingResponse

    headers = [
        (name.lower(), value) for name, value in answer.headers.items() if name.lower() != "content-length"
    ]
    if not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", _content_type(answer.mimetype, answer.charset)))
    if isinstance(answer, StreamedAnswer):
        streaming = StreamingResponse(answer.chunks, status_code=answer.status_code)
        streaming.raw_headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        return streaming
    body = answer.get_body()
    response = Response(content=body, status_code=answer.status_code)
    response.raw_headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers] + [
        (b"content-length", str(len(body)).encode())
    ]
    return response


def _content_type(mimetype: str | None, charset: str | None) -> str:
    mimetype = mimetype or "text/plain"
    if charset and (mimetype.startswith("text/") or mimetype.endswith(("json", "xml"))):
        return f"{mimetype}; charset={charset}"
    return mimetype
