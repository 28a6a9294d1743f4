"""An azure-core async transport that sends through the app's shared `httpx2.AsyncClient`.

Azure SDKs (azure-identity, Key Vault, Blob) default to aiohttp. We already have one HTTP stack,
with its pool, proxy and TLS settings and event hooks, so SDK traffic goes through it too instead of
a second, differently configured stack.

The transport mirrors azure-core's own transports (`_aiohttp.py`, `_requests_asyncio.py`). This
module is the request side; what comes back (both response kinds, streamed bodies, the error
mapping) is in `transport_responses.py`.

* It answers both request kinds a pipeline may carry: `azure.core.rest.HttpRequest` (every current
  SDK, azure-identity included) gets a rest response, legacy
  `azure.core.pipeline.transport.HttpRequest` gets a legacy response with `load_body`/`stream_download`.
* Non-stream responses are read in full and released before `send` returns; `stream=True` leaves
  the body on the wire for `iter_bytes`/`iter_raw`/`stream_download`.
* httpx2 errors become the azure-core errors the retry policy understands: "never sent" is
  `ServiceRequestError` (always safe to retry), "sent but no good answer" is `ServiceResponseError`
  (retried only for idempotent methods), a body cut short is `IncompleteReadError`.

Azure requests are built as bare `httpx2.Request`s and sent with `auth=None`, so the shared client's
base URL, default headers, cookies and auth (meant for our own upstreams) never reach Azure.
Nothing here logs headers or query strings: they carry bearer tokens and SAS signatures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import IO, Any, Final, overload

import httpx2
from azure.core.configuration import ConnectionConfiguration
from azure.core.pipeline.transport import AsyncHttpResponse as LegacyAsyncHttpResponse
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import AsyncHttpResponse as RestAsyncHttpResponse
from azure.core.rest import HttpRequest as RestHttpRequest

from .transport_responses import Httpx2TransportResponse, RestHttpx2TransportResponse, to_azure_error

__all__ = ["Httpx2Transport", "azure_client_kwargs"]

_LOGGER = logging.getLogger(__name__)

# Chunk size for streamed bodies. azure-core's 4 KiB default makes a 1 MB blob 256 awaits.
_BLOCK_SIZE: Final = 64 * 1024
_FILE_READ_SIZE: Final = 64 * 1024

VerifyTypes = bool | str | ssl.SSLContext
CertTypes = str | tuple[str, str] | tuple[str, str, str]


class _Unset:
    """Marks "kwarg not given", because `None` is a meaningful value (no timeout)."""


_UNSET: Final = _Unset()


class Httpx2Transport(AsyncHttpTransport[Any, Any]):
    """azure-core `AsyncHttpTransport` backed by a shared `httpx2.AsyncClient`.

    One instance may serve several SDK clients and credentials. SDK pipelines close their transport
    when they are closed (azure-identity credentials do so on `close()`), so by default closing this
    transport leaves the shared client open; pass `owns_client=True` only when this transport is the
    client's sole user and should end its life.

    :param client: the shared client. Redirects are never followed, whatever the client's setting.
    :param owns_client: close `client` when the transport is closed.
    :param verify: what `client` was built with (httpx2 does not expose it). A per-request
        `connection_verify`/`connection_cert` that differs gets its own client, created once per
        distinct value and closed with the transport.
    """

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        owns_client: bool = False,
        verify: VerifyTypes = True,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._verify = verify
        self._tls_clients: dict[tuple[VerifyTypes, CertTypes | None], httpx2.AsyncClient] = {}
        # azure-core's RetryPolicy reads `transport.connection_config.timeout` to clamp the connect
        # timeout to the remaining absolute retry budget; every stock transport has this attribute.
        self.connection_config = ConnectionConfiguration(
            connection_timeout=client.timeout.connect,
            read_timeout=client.timeout.read,
            connection_verify=verify,
            connection_data_block_size=_BLOCK_SIZE,
        )

    async def __aenter__(self) -> Httpx2Transport:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Nothing to open (the client pools lazily); fail early if the client is already closed."""
        if self._client.is_closed:
            raise RuntimeError(
                "Httpx2Transport: the httpx2 client has been closed; the transport cannot send any more."
            )

    async def close(self) -> None:
        """Close the per-verify clients; close the shared client only if this transport owns it."""
        tls_clients, self._tls_clients = self._tls_clients, {}
        for client in tls_clients.values():
            await client.aclose()
        if self._owns_client:
            await self._client.aclose()

    async def sleep(self, duration: float) -> None:
        """Retry back-off; the app runs on asyncio."""
        await asyncio.sleep(duration)

    @overload
    async def send(
        self, request: RestHttpRequest, *, stream: bool = False, **kwargs: Any
    ) -> RestAsyncHttpResponse: ...

    @overload
    async def send(
        self, request: LegacyHttpRequest, *, stream: bool = False, **kwargs: Any
    ) -> LegacyAsyncHttpResponse: ...

    async def send(
        self, request: RestHttpRequest | LegacyHttpRequest, *, stream: bool = False, **kwargs: Any
    ) -> RestAsyncHttpResponse | LegacyAsyncHttpResponse:
        """Send one request; the response kind follows the request kind.

        Honoured kwargs: `stream`, `connection_timeout` (number, or `(connect, read)` tuple as the
        requests transport allows), `read_timeout`, `connection_verify`, `connection_cert`. Unset
        timeouts fall back to the shared client's. Proxies belong on the httpx2 client, so a
        per-request `proxies`/`proxy` is refused rather than silently ignored.
        """
        await self.open()
        if kwargs.pop("proxies", None) or kwargs.pop("proxy", None):
            raise ValueError(
                "Httpx2Transport does not take per-request proxies; configure the httpx2 client."
            )
        client = self._client_for(
            kwargs.pop("connection_verify", _UNSET), kwargs.pop("connection_cert", None)
        )
        timeout = self._timeout(kwargs)
        if kwargs:
            _LOGGER.debug("Httpx2Transport ignores transport kwargs %s", sorted(kwargs))

        outgoing = _to_httpx_request(request, timeout)
        try:
            internal = await client.send(outgoing, stream=True, auth=None, follow_redirects=False)
        except httpx2.RequestError as exc:
            raise to_azure_error(exc, reading_body=False) from exc

        if isinstance(request, RestHttpRequest):
            rest_response = RestHttpx2TransportResponse(
                request=request, internal_response=internal, block_size=_BLOCK_SIZE
            )
            if not stream:
                try:
                    await rest_response.read()
                finally:
                    await rest_response.close()
            return rest_response

        legacy_response = Httpx2TransportResponse(request, internal, block_size=_BLOCK_SIZE)
        if not stream:
            await legacy_response.load_body()
        return legacy_response

    def _timeout(self, kwargs: dict[str, Any]) -> httpx2.Timeout:
        """Map azure-core's connect/read timeouts onto the shared client's httpx2 timeout.

        `connection_timeout` also bounds the wait for a pooled connection: the retry policy shrinks
        it to the remaining absolute budget and expects the whole "get connected" phase to obey.
        """
        base = self._client.timeout
        connect, read, write, pool = base.connect, base.read, base.write, base.pool
        connection_timeout = kwargs.pop("connection_timeout", _UNSET)
        if isinstance(connection_timeout, tuple):
            if "read_timeout" in kwargs:
                raise ValueError("Cannot set tuple connection_timeout and read_timeout together")
            connect, read = connection_timeout
            pool = connect
        elif not isinstance(connection_timeout, _Unset):
            connect = pool = connection_timeout
        read_timeout = kwargs.pop("read_timeout", _UNSET)
        if not isinstance(read_timeout, _Unset):
            read = read_timeout
        return httpx2.Timeout(connect=connect, read=read, write=write, pool=pool)

    def _client_for(self, verify: VerifyTypes | _Unset, cert: CertTypes | None) -> httpx2.AsyncClient:
        """The shared client, or a cached one whose TLS settings match this request's."""
        if isinstance(verify, _Unset):
            verify = self._verify
        if cert is None and (verify is self._verify or verify == self._verify):
            return self._client
        key = (verify, cert)
        client = self._tls_clients.get(key)
        if client is None:
            client = httpx2.AsyncClient(
                verify=_ssl_config(verify, cert, trust_env=self._client.trust_env),
                timeout=self._client.timeout,
                trust_env=self._client.trust_env,
                follow_redirects=False,
            )
            self._tls_clients[key] = client
            _LOGGER.debug(
                "Httpx2Transport: separate client for connection_verify=%r (client cert: %s)",
                verify,
                cert is not None,
            )
        return client


def _ssl_config(verify: VerifyTypes, cert: CertTypes | None, *, trust_env: bool) -> bool | ssl.SSLContext:
    """httpx2 `verify=` value for azure-core's `connection_verify`/`connection_cert`.

    httpx2 deprecates `verify=<path>` and `cert=`, so paths and client certificates are turned into an
    `SSLContext` here, the way azure-core's aiohttp transport does.
    """
    if cert is None and not isinstance(verify, str):
        return verify
    if isinstance(verify, ssl.SSLContext):
        raise ValueError("connection_cert cannot be combined with an SSLContext connection_verify")
    if isinstance(verify, str):
        if os.path.isdir(verify):
            ctx = ssl.create_default_context(capath=verify)
        else:
            ctx = ssl.create_default_context(cafile=verify)
    else:
        ctx = httpx2.create_ssl_context(verify=verify, trust_env=trust_env)
    if isinstance(cert, str):
        ctx.load_cert_chain(cert)
    elif cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def _to_httpx_request(
    request: RestHttpRequest | LegacyHttpRequest, timeout: httpx2.Timeout
) -> httpx2.Request:
    """Copy an azure-core request (either kind) into an httpx2 request.

    Both kinds expose `method`, `url`, `headers`, `data` and `files` (rest requests via their
    backcompat attributes), which is what azure-core's own transports read.
    """
    if request.files:
        raise NotImplementedError("Httpx2Transport does not send multipart (files=) request bodies")
    headers = dict(request.headers.items())
    data: Any = request.data
    content: bytes | AsyncIterable[bytes] | None = None
    form: dict[str, Any] | None = None
    if data is None:
        pass
    elif isinstance(data, bytes | bytearray | memoryview):
        content = bytes(data)
    elif isinstance(data, str):
        content = data.encode("utf-8")
        # azure-core sets Content-Length to len(str); for non-ASCII text that is not the byte count.
        for name in headers:
            if name.lower() == "content-length":
                headers[name] = str(len(content))
    elif isinstance(data, dict):
        form = data  # azure-core's form-urlencoded bodies (e.g. token requests)
    elif hasattr(data, "read"):
        content = _read_file(data)
    elif isinstance(data, AsyncIterable):
        content = data
    elif isinstance(data, Iterable):
        content = _iterate(data)
    else:
        raise TypeError(f"Httpx2Transport cannot send a request body of type {type(data).__name__}")
    return httpx2.Request(
        request.method,
        request.url,
        headers=headers,
        content=content,
        data=form,
        extensions={"timeout": timeout.as_dict()},
    )


async def _read_file(body: IO[Any]) -> AsyncIterator[bytes]:
    """Stream a file-like body. Read at send time so the retry policy's seek-back still works."""
    while chunk := body.read(_FILE_READ_SIZE):
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


async def _iterate(body: Iterable[bytes]) -> AsyncIterator[bytes]:
    """An AsyncClient only sends async streams; wrap a sync iterable of chunks."""
    for chunk in body:
        yield chunk


def azure_client_kwargs(transport: Httpx2Transport) -> dict[str, Any]:
    """Keyword arguments that make an azure SDK client or credential use `transport`.

    One place to grow if SDKs ever need more than `transport=` to stay on our stack.
    """
    return {"transport": transport}
