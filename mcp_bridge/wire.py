"""What the HTTP layer saw during one bridge call, and a transport that never tears a session down.

The MCP SDK runs each request's POST in a task of the session's transport. If that task raises
(connection refused, a reset mid-body), the SDK cancels the whole transport, failing every other
call in flight on the session and hiding *why* it failed. Two things fix both:

- `ShieldedTransport` turns transport exceptions into a synthetic response (status 599) and broken
  bodies into a `StreamError` the SDK already handles per request, so one failed POST fails one call;
- `WireTrace`, held in a context variable, records what happened. The SDK starts each POST task in
  the *sender's* context, so the trace the caller set is the one its own POST writes to. The call
  path reads it afterwards to tell "never reached the server" from "outcome unknown".
"""

from __future__ import annotations

import email.utils
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

import httpx2

SYNTHETIC_STATUS = 599
"""Status of the stand-in response for a request that got no HTTP response at all."""

Failure = Literal[
    "connect",  # refused / unreachable: never reached the server
    "connect_timeout",  # never reached the server
    "pool_timeout",  # never left this process
    "write_timeout",  # may have reached the server
    "read_timeout",  # reached the server, outcome unknown
    "read_error",  # reset mid-response, outcome unknown
    "protocol",  # malformed HTTP, outcome unknown
    "too_large",  # the response exceeded the bridge's cap
]

NEVER_SENT: frozenset[Failure] = frozenset({"connect", "connect_timeout", "pool_timeout"})


@dataclass
class WireTrace:
    """HTTP-level facts about one logical call, possibly several HTTP requests long."""

    statuses: list[int] = field(default_factory=list)
    failure: Failure | None = None
    retry_after: float | None = None
    unauthorized_after_refresh: bool = False
    identity_error: BaseException | None = None
    session_lost: bool = False

    @property
    def last_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def never_sent(self) -> bool:
        return self.failure in NEVER_SENT


current_trace: ContextVar[WireTrace | None] = ContextVar("scheduler_bridge_wire_trace", default=None)


def classify(exc: httpx2.TransportError) -> Failure:
    if isinstance(exc, httpx2.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx2.PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, httpx2.ConnectError):
        return "connect"
    if isinstance(exc, httpx2.WriteTimeout):
        return "write_timeout"
    if isinstance(exc, httpx2.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, httpx2.ProtocolError):
        return "protocol"
    return "read_error"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header in delta-seconds or HTTP-date form."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BrokenUpstreamBody(httpx2.StreamError):
    """The response body broke off; a `StreamError` so the SDK fails only the call it belongs to."""


class _ShieldedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, trace: WireTrace | None, limit: int | None) -> None:
        self._inner = inner
        self._trace = trace
        self._limit = limit

    async def __aiter__(self):  # type: ignore[override]
        received = 0
        try:
            async for chunk in self._inner:
                received += len(chunk)
                if self._limit is not None and received > self._limit:
                    self._note("too_large")
                    raise BrokenUpstreamBody("response exceeded the size limit")
                yield chunk
        except httpx2.TransportError as exc:
            self._note(classify(exc))
            raise BrokenUpstreamBody("upstream response broke off") from None

    def _note(self, failure: Failure) -> None:
        if self._trace is not None:
            self._trace.failure = failure

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except httpx2.TransportError:
            pass


class ShieldedTransport(httpx2.AsyncBaseTransport):
    """Wraps a real transport: failures become trace entries plus a 599, never an exception."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, max_response_bytes: int | None = None) -> None:
        self._inner = inner
        self._max_response_bytes = max_response_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        trace = current_trace.get()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            failure = classify(exc)
            if trace is not None:
                trace.failure = failure
            return httpx2.Response(
                SYNTHETIC_STATUS,
                headers={"content-type": "text/plain", "x-bridge-failure": failure},
                content=b"",
                request=request,
            )
        if trace is not None:
            trace.statuses.append(response.status_code)
            if response.status_code in (429, 502, 503, 504):
                trace.retry_after = parse_retry_after(response.headers.get("retry-after"))
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _ShieldedStream(response.stream, trace, self._max_response_bytes)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
