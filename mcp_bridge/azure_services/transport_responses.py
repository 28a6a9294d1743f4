"""What comes back through `Httpx2Transport`: azure-core responses over an `httpx2.Response`.

Both response kinds a pipeline may expect are here: the rest `azure.core.rest.AsyncHttpResponse`
(every current SDK) and the legacy `azure.core.pipeline.transport.AsyncHttpResponse` with
`load_body`/`stream_download`. Streamed bodies are read in 64 KiB chunks, and httpx2 errors become
the azure-core errors the retry policy understands (`to_azure_error`, used on the request side too).
Nothing here logs headers: they carry bearer tokens and SAS signatures.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx2
from azure.core.exceptions import (
    AzureError,
    DecodeError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import AsyncHttpResponse as LegacyAsyncHttpResponse
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import HttpRequest as RestHttpRequest

# Private module, but it is the base every azure-core transport (and azure-core-experimental's)
# builds its rest response on; re-implementing the rest ABC plus its backcompat surface
# (`internal_response`, `block_size`, `stream_download`, `body()`) would be far larger and drift.
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import case_insensitive_dict

__all__ = ["Httpx2TransportResponse", "RestHttpx2TransportResponse", "to_azure_error"]

_LOGGER = logging.getLogger(__name__)


def to_azure_error(exc: httpx2.RequestError, *, reading_body: bool) -> AzureError:
    """The azure-core error for an httpx2 error, so azure's retry policy decides correctly.

    Before any byte could have reached the server (connect, pool wait, proxy, local protocol
    problems) it is a `ServiceRequestError`. Once the request was (possibly) sent it is a
    `ServiceResponseError`; write failures count as sent because the server may have acted on a
    partial upload. While reading a body, the peer hanging up early is an `IncompleteReadError`.
    """
    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return ServiceRequestTimeoutError(exc, error=exc)
    if isinstance(
        exc, httpx2.ConnectError | httpx2.ProxyError | httpx2.UnsupportedProtocol | httpx2.LocalProtocolError
    ):
        return ServiceRequestError(exc, error=exc)
    if isinstance(exc, httpx2.TimeoutException):  # read or write timeout
        return ServiceResponseTimeoutError(exc, error=exc)
    if reading_body and isinstance(exc, httpx2.RemoteProtocolError):
        _LOGGER.warning("Incomplete download: the server closed the connection mid-body.")
        return IncompleteReadError(exc, error=exc)
    if isinstance(exc, httpx2.DecodingError):
        return DecodeError(exc, error=exc)
    if isinstance(exc, httpx2.TransportError):  # read/write/close errors, remote protocol errors
        return ServiceResponseError(exc, error=exc)
    return ServiceRequestError(exc, error=exc)


def _azure_headers(headers: httpx2.Headers) -> MutableMapping[str, str]:
    """Case-insensitive response headers keeping the server's spelling.

    httpx2's `Headers.items()` lower-cases names; Blob metadata (`x-ms-meta-<Name>`) is case-preserving,
    so the raw names are used. Repeated headers are joined with ", " as aiohttp's adapter does.
    """
    merged: MutableMapping[str, str] = case_insensitive_dict()
    for raw_name, raw_value in headers.raw:
        name, value = raw_name.decode(headers.encoding), raw_value.decode(headers.encoding)
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


class _Httpx2StreamDownloadGenerator(AsyncIterator[bytes]):
    """Body chunks of a streamed response, with httpx2 errors mapped and the response released.

    Serves both the rest responses (`iter_bytes`/`iter_raw`, which construct it as
    `(pipeline=None, response=..., decompress=...)`) and legacy `stream_download(pipeline)`.
    `decompress=True` undoes `Content-Encoding` (httpx2 decoders); `False` yields the wire bytes.
    """

    def __init__(self, pipeline: Any, response: Any, *, decompress: bool = True, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"Got an unexpected keyword argument: {next(iter(kwargs))}")
        self.pipeline = pipeline
        self.request = response.request
        self.response = response
        self.block_size: int = response.block_size
        self._internal: httpx2.Response = response.internal_response
        self.content_length = int(self._internal.headers.get("Content-Length", 0))
        self._chunks = (
            self._internal.aiter_bytes(self.block_size)
            if decompress
            else self._internal.aiter_raw(self.block_size)
        )

    def __len__(self) -> int:
        return self.content_length

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            await self._internal.aclose()
            raise
        except httpx2.RequestError as exc:
            await self._internal.aclose()
            raise to_azure_error(exc, reading_body=True) from exc
        except BaseException:
            await self._internal.aclose()
            raise


class Httpx2TransportResponse(LegacyAsyncHttpResponse):
    """Response to a legacy `azure.core.pipeline.transport.HttpRequest`.

    `body()`/`text()` work after `load_body()` (done by the transport unless `stream=True`); holds
    the decoded body, like the requests transport.
    """

    def __init__(
        self, request: LegacyHttpRequest, internal_response: httpx2.Response, block_size: int | None = None
    ) -> None:
        super().__init__(request, internal_response, block_size=block_size)
        self.status_code = internal_response.status_code
        self.headers = _azure_headers(internal_response.headers)
        self.reason = internal_response.reason_phrase
        self.content_type = self.headers.get("Content-Type")
        self._content: bytes | None = None

    def body(self) -> bytes:
        if self._content is None:
            raise ValueError(
                "Body is not available. Call async method load_body, or do your call with stream=False."
            )
        return self._content

    def text(self, encoding: str | None = None) -> str:
        if encoding is None and self.internal_response is not None:  # None once unpickled
            encoding = self.internal_response.charset_encoding
        if encoding:
            try:
                encoding = codecs.lookup(encoding).name
            except LookupError:
                encoding = None
        if encoding in (None, "utf-8"):
            encoding = "utf-8-sig"  # tolerate a BOM, as azure-core does
        return self.body().decode(encoding)

    async def load_body(self) -> None:
        """Read the whole (decoded) body so the sync accessors work."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in _Httpx2StreamDownloadGenerator(None, self)])

    def stream_download(
        self, pipeline: Any, *, decompress: bool = True, **kwargs: Any
    ) -> AsyncIterator[bytes]:
        return _Httpx2StreamDownloadGenerator(pipeline, self, decompress=decompress, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        # LRO continuation tokens pickle the initial response; the live httpx2 response cannot be.
        self.body()
        state = self.__dict__.copy()
        state["internal_response"] = None
        return state


class RestHttpx2TransportResponse(AsyncHttpResponseImpl):
    """Response to an `azure.core.rest.HttpRequest` (the `azure.core.rest.AsyncHttpResponse` API)."""

    def __init__(
        self, *, request: RestHttpRequest, internal_response: httpx2.Response, block_size: int
    ) -> None:
        headers = _azure_headers(internal_response.headers)
        super().__init__(
            request=request,
            internal_response=internal_response,
            block_size=block_size,
            status_code=internal_response.status_code,
            reason=internal_response.reason_phrase,
            headers=headers,
            content_type=headers.get("Content-Type"),
            stream_download_generator=_Httpx2StreamDownloadGenerator,
        )

    async def close(self) -> None:
        """Release the connection (the base class would call a sync `close()`)."""
        if not self.is_closed:
            self._is_closed = True
            await self._internal_response.aclose()

    def __getstate__(self) -> dict[str, Any]:
        self.content  # noqa: B018 -- raises ResponseNotReadError if the body was never read
        state = self.__dict__.copy()
        state["_internal_response"] = None
        return state
