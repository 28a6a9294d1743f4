"""The HTTP edge of the devstack Functions host: keys, and translating to and from `azure.functions` types.

Keys follow the real host: a key arrives as `?code=` or the `x-functions-key`
header; FUNCTION level accepts the function key or the master key, ADMIN
only the master key, ANONYMOUS nothing. A missing or wrong key is a 401 with
an empty body.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import azure.functions as func
from starlette.requests import Request
from starlette.responses import Response

_LOGGER = logging.getLogger(__name__)

FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"


@dataclass(frozen=True)
class HostKeys:
    """The function key (default key of every function) and the master key."""

    function_key: str
    master_key: str


def presented_key(request: Request) -> str | None:
    """The key the caller sent, header first (as the real host checks it)."""
    return request.headers.get(FUNCTION_KEY_HEADER) or request.query_params.get(FUNCTION_KEY_QUERY)


def is_authorized(auth_level: str, key: str | None, keys: HostKeys) -> bool:
    """Whether `key` satisfies `auth_level` ('anonymous', 'function' or 'admin')."""
    if auth_level == "anonymous":
        return True
    if not key:
        return False
    if _same(key, keys.master_key):
        return True
    return auth_level == "function" and _same(key, keys.function_key)


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def joined_headers(request: Request) -> dict[str, str]:
    """The request's headers by lower-case name, repeats joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def to_function_request(
    request: Request, route_params: dict[str, str], headers: dict[str, str] | None = None
) -> func.HttpRequest:
    """A real `azure.functions.HttpRequest`: full URL, headers (repeats joined, or `headers` as
    Easy Auth rewrote them), query, route values, body."""
    if headers is None:
        headers = joined_headers(request)
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params=dict(request.query_params),
        route_params=route_params,
        body=await request.body(),
    )


def from_function_response(result: object, *, method: str) -> Response:
    """Starlette response for what the function returned: an HttpResponse, str/bytes (200), or None (204)."""
    if result is None:
        return Response(status_code=204)
    if isinstance(result, str | bytes):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(
            f"HTTP function returned {type(result).__name__}, expected azure.functions.HttpResponse"
        )
    headers = [(name, value) for name, value in result.headers.items()]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", _content_type(result.mimetype, result.charset)))
    full_body = result.get_body()
    response = Response(content=b"" if method == "HEAD" else full_body, status_code=result.status_code)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers
        if name.lower() != "content-length"
    ] + [(b"content-length", str(len(full_body)).encode())]
    return response


def _content_type(mimetype: str | None, charset: str | None) -> str:
    mimetype = mimetype or "text/plain"
    if charset and (mimetype.startswith("text/") or mimetype.endswith(("json", "xml"))):
        return f"{mimetype}; charset={charset}"
    return mimetype
