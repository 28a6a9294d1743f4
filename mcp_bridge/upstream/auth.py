"""Per-request credentials for the Scheduler, as `httpx2.Auth` flows.

Credentials are attached to each request as it leaves, never baked into a session at start-up, so
a refreshed token or a rotated key is used at once by sessions that stay open for hours. A 401 from
the Scheduler forces one token refresh and one resend inside the flow: the server rejected the
request before running it, so resending is always safe.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

import httpx2

from ..problems import IdentityUnavailable
from .tokens import TokenProvider
from .wire import current_trace


class BearerTokenAuth(httpx2.Auth):
    """`Authorization: Bearer` from the shared `TokenProvider`."""

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._token_or_none(self._tokens.get_token())
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or token is None:
            return
        fresh = await self._token_or_none(self._tokens.force_refresh(token))
        if fresh is None:
            return
        request.headers["Authorization"] = f"Bearer {fresh}"
        response = yield request
        if response.status_code == 401:
            _note_second_401()

    @staticmethod
    async def _token_or_none(fetch: Awaitable[str]) -> str | None:
        # Raising here would tear down the MCP transport (this runs in its POST task); record the
        # failure for the caller instead and let the request go out without credentials.
        try:
            return await fetch
        except IdentityUnavailable as exc:
            trace = current_trace.get()
            if trace is not None:
                trace.identity_error = exc
            return None


class HeaderKeyAuth(httpx2.Auth):
    """Client id and API key headers, read per request so a rotated key applies at once."""

    def __init__(
        self,
        *,
        client_id_header: str,
        api_key_header: str,
        credentials: Callable[[], tuple[str, str]],
        on_unauthorized: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._client_id_header = client_id_header
        self._api_key_header = api_key_header
        self._credentials = credentials
        self._on_unauthorized = on_unauthorized

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        sent = self._apply(request)
        response = yield request
        if response.status_code != 401 or self._on_unauthorized is None:
            return
        # A concurrent request may already have picked up rotated credentials: then resend with
        # them at once instead of asking for (and being refused, within the minute) another re-read.
        if self._credentials() == sent and not await self._on_unauthorized():
            return
        self._apply(request)
        response = yield request
        if response.status_code == 401:
            _note_second_401()

    def _apply(self, request: httpx2.Request) -> tuple[str, str]:
        client_id, api_key = credentials = self._credentials()
        request.headers[self._client_id_header] = client_id
        request.headers[self._api_key_header] = api_key
        return credentials


def _note_second_401() -> None:
    trace = current_trace.get()
    if trace is not None:
        trace.unauthorized_after_refresh = True
