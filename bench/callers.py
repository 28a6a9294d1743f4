"""The three ways to make the same tool call, each returning True on a successful tool result.

- `BridgeCaller`: the `call_tool` HTTP function invoked in-process with a real `func.HttpRequest`,
  as the Python worker does; it goes through the bridge's shared client and sessions.
- `RawClient`: one persistent `mcp.Client` over its own pooled httpx2 client (the transport's
  limit: what any caller pays at minimum).
- `naive_call`: a new httpx2 client, MCP client and session for every call, as a client without
  the bridge would.

Raw and naive send the bridge's kind of managed-identity token from the same identity endpoint, as
a default header of their httpx2 client, so all three pay the same auth cost at the server. Raw
fetches it once. Naive comes in two forms: with a token fetched per call (one plain
GET to the identity endpoint over its new client, none of azure-identity's machinery), and without,
reusing one token: the fastest a client per call can be.
"""

from __future__ import annotations

import json
import ssl
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .stack import STATUS_TOOL

# httpx2's default pool limits (what the SDK's own client uses), and timeouts no load here reaches.
TIMEOUT = httpx2.Timeout(connect=5.0, read=30.0, write=10.0, pool=30.0)


@dataclass(frozen=True)
class Identity:
    """Where the naive caller gets its per-call token: the devstack's managed-identity endpoint."""

    token_url: str
    header: str
    resource: str


_registered: dict[str, Any] = {}


def registered_function(name: str) -> Any:
    """A function of `function_app`, as the worker calls it (the app is indexed once: a second
    `get_functions()` refuses the names it has already seen)."""
    if not _registered:
        import function_app

        _registered.update(
            {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
        )
    return _registered[name]


class BridgeCaller:
    """`POST /api/tools/{tool}` through `function_app`, in-process."""

    def __init__(self, function_name: str = "call_tool") -> None:
        self._function = registered_function(function_name)

    async def invoke(
        self, arguments: dict[str, Any], tool: str = STATUS_TOOL, *, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        request = func.HttpRequest(
            method="POST",
            url=f"http://127.0.0.1:7071/api/tools/{tool}?code=bench-function-key",
            headers={"content-type": "application/json", **(headers or {})},
            params={},
            route_params={"tool_name": tool},
            body=json.dumps(arguments).encode(),
        )
        response = await self._function(request)
        return response.status_code, response.get_body()

    async def __call__(self, arguments: dict[str, Any], tool: str = STATUS_TOOL) -> bool:
        status, _ = await self.invoke(arguments, tool)
        return status == 200


def bearer_client(token: str, verify: ssl.SSLContext | bool = True) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, verify=verify)


class RawClient:
    """A persistent `mcp.Client`; enter and exit it from the same task (anyio task groups)."""

    def __init__(self, url: str, token: str, *, verify: ssl.SSLContext | bool = True) -> None:
        self._url = url
        self._token = token
        self._verify = verify
        self._stack = AsyncExitStack()
        self.client: Client | None = None

    async def __aenter__(self) -> RawClient:
        http = await self._stack.enter_async_context(bearer_client(self._token, self._verify))
        self.client = await self._stack.enter_async_context(
            Client(streamable_http_client(self._url, http_client=http), mode="auto")
        )
        await self.client.list_tools()  # what any long-lived client does first
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def __call__(self, arguments: dict[str, Any], tool: str = STATUS_TOOL) -> bool:
        assert self.client is not None
        result = await self.client.call_tool(tool, arguments)
        return not result.is_error


async def naive_call(
    url: str,
    token: str,
    arguments: dict[str, Any],
    tool: str = STATUS_TOOL,
    *,
    identity: Identity | None = None,
    verify: ssl.SSLContext | bool = True,
) -> bool:
    """New HTTP client, new MCP client, new handshake: every call. With `identity`, a token per call
    too, fetched over that same new client."""
    async with bearer_client(token, verify) as http:
        if identity is not None:
            response = await http.get(
                identity.token_url,
                params={"api-version": "2019-08-01", "resource": identity.resource},
                headers={"X-IDENTITY-HEADER": identity.header},
            )
            response.raise_for_status()
            http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            result = await client.call_tool(tool, arguments)
            return not result.is_error
