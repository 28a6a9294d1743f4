"""What the HTTP layer saw during one bridge call, and a transport that never tears a session down.

The MCP SDK runs each request's POST in a task of the session's transport. If that task raises
(connection refused, a reset mid-body), the SDK cancels the whole transport, failing every other
call in flight on the session and hiding *why* it failed. Two things fix both:

- `ShieldedTransport` turns transport exceptions into a synthetic response (status 599) and broken
  bodies into a `StreamError` the SDK already handles per request, so one failed POST fails one call;
- `WireTrace`, held in a context variable, records what happened. The SDK starts each POST task in
  the *sender's* context, so the trace the caller set is the one its own POST writes to. The call
  path reads it afterwards to tell "never reached the server" from "outcome unknown".

The same transport refuses what the bridge must never act on: a redirect (the SDK's transport
follows a same-origin 307/308 by itself, so the refusal has to happen below it) and an answer larger
than `MAX_UPSTREAM_RESPONSE_BYTES`. Each becomes a recorded failure (`redirect`, `too_large`), never a
followed Location or an unbounded buffer.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import ssl
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

import httpx2

from . import keepalive
from .addresses import AddressRefused

_LOGGER = logging.getLogger(__name__)

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
    "too_large",  # the response exceeded the bridge's cap: the server answered, we refused to read it
    "redirect",  # a 3xx: refused, never followed
    "address_refused",  # the endpoint resolved to an address the policy refuses: never sent
    "tls",  # the TLS handshake failed (e.g. https:// to a plain-HTTP port): never sent
]

NEVER_SENT: frozenset[Failure] = frozenset(
    {"connect", "connect_timeout", "pool_timeout", "address_refused", "tls"}
)
REFUSED: frozenset[Failure] = frozenset({"too_large", "redirect", "address_refused"})
"""Failures that are the bridge's own refusal, not the network's doing."""


@dataclass
class WireTrace:
    """HTTP-level facts about one logical call, possibly several HTTP requests long."""

    statuses: list[int] = field(default_factory=list)
    failure: Failure | None = None
    retry_after: float | None = None
    unauthorized_after_refresh: bool = False
    identity_error: BaseException | None = None
    session_lost: bool = False
    """The server refused a request that carried an `Mcp-Session-Id` because it no longer knows
    the session (see `session_refusal`): nothing ran, so reopening the session and resending is
    safe for every tool."""
    input_requested: str | None = None
    """What the server asked of the client during this call (elicitation, sampling, roots), in
    the server's own words; the bridge refuses every such request (see `upstream.session`)."""
    call_scope: asyncio.Timeout | None = None
    """The time limit of the call this trace belongs to, so a refusal can shorten it."""
    idempotent_call: bool = False
    """The call's tool is idempotent: its `tools/call` may be resent after the keep-alive race."""
    session_id: str | None = None
    """The `Mcp-Session-Id` the server gave, recorded only on a trace that asks (`wants_session_id`):
    the session owner's, so an operation can name the session its task lives in (operations/)."""
    wants_session_id: bool = False

    @property
    def last_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def never_sent(self) -> bool:
        return self.failure in NEVER_SENT


current_trace: ContextVar[WireTrace | None] = ContextVar("scheduler_bridge_wire_trace", default=None)


def classify(exc: httpx2.TransportError) -> Failure:
    if isinstance(exc.__cause__, AddressRefused):  # httpx2 re-raises httpcore errors `from` them
        return "address_refused"
    if isinstance(exc, httpx2.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx2.PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, httpx2.ConnectError):
        return "tls" if _caused_by_tls(exc) else "connect"
    if isinstance(exc, httpx2.WriteTimeout):
        return "write_timeout"
    if isinstance(exc, httpx2.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, httpx2.ProtocolError):
        return "protocol"
    return "read_error"


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx2 error <- httpcore2 error <- ssl.SSLError, a short chain
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


SESSION_HEADER = "mcp-session-id"
_SESSION_WORDS = re.compile(rb"session|client[ _-]?state", re.IGNORECASE)
_PEEK_BYTES = 64 * 1024


def session_refusal(status: int, body: bytes) -> bool:
    """Whether an answer to a request that carried a session id says the session is unknown.

    Servers disagree on how they say it. The spec asks for 404, and a 404 to a request on a
    session that was open means exactly that, whatever the body. Many real servers answer 400
    instead: the TypeScript SDK's examples up to 1.31 and server-everything ("Bad Request: No valid
    session ID provided", JSON-RPC -32000), Python `mcp` up to 1.25 (the same words as text/plain),
    and gateways that keep their state in the session id ("Invalid client state"), including
    when an id issued by one region reaches another. A 400 counts when its body, JSON or text,
    speaks of the session or the client state. Either way the server refused before running
    anything.
    """
    if status == 404:
        return True
    return status == 400 and _SESSION_WORDS.search(body) is not None


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


_EVENT_BOUNDARIES = (b"\n\n", b"\r\r", b"\r\n\r\n")


class _ShieldedStream(httpx2.AsyncByteStream):
    """A response body that fails alone, and is cut off past `limit` bytes.

    For an event stream the limit applies to each event (bytes since the last blank line): a
    `subscriptions/listen` or standalone GET stream lives for hours and may carry any number of
    small events, while one event (one JSON-RPC message) must stay under the cap.
    """

    def __init__(
        self, inner: httpx2.AsyncByteStream, trace: WireTrace | None, limit: int | None, *, per_event: bool
    ) -> None:
        self._inner = inner
        self._trace = trace
        self._limit = limit
        self._per_event = per_event
        self._held = 0
        self._tail = b""

    def _count(self, chunk: bytes) -> int:
        """Bytes held against the limit after `chunk`: the body so far, or the largest event."""
        if not self._per_event:
            self._held += len(chunk)
            return self._held
        scan = self._tail + chunk  # a boundary may straddle two chunks
        counted = len(self._tail)
        held, largest, search = self._held, 0, 0
        while True:
            found = [(at, len(b)) for b in _EVENT_BOUNDARIES if (at := scan.find(b, search)) >= 0]
            if not found:
                break
            at, length = min(found)
            search = at + length
            if search <= counted:  # ended inside the tail: counted with the previous chunk
                continue
            largest = max(largest, held + search - counted)
            held, counted = 0, search
        held += len(scan) - counted
        self._held, self._tail = held, scan[-3:]
        return max(largest, held)

    async def __aiter__(self):  # type: ignore[override]
        try:
            async for chunk in self._inner:
                if self._limit is not None and self._count(chunk) > self._limit:
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

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        *,
        max_response_bytes: int | None = None,
        keep_alive: keepalive.KeepAliveTuner | None = None,
    ) -> None:
        self._inner = inner
        self._max_response_bytes = max_response_bytes
        self._keep_alive = keep_alive
        self._lost_sessions: deque[str] = deque(maxlen=64)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        trace = current_trace.get()
        if request.method == "DELETE" and (
            (session := request.headers.get(SESSION_HEADER)) in self._lost_sessions
            or session in _kept_sessions
        ):
            # Closing a session the server already forgot: its refusal would only be noise. Closing
            # one that holds tasks would end them (server-everything drops a session's task store).
            return httpx2.Response(204, request=request)
        try:
            response = await self._send(request, trace)
        except httpx2.TransportError as exc:
            return _synthetic(request, trace, classify(exc))
        if self._keep_alive is not None and (header := response.headers.get("keep-alive")):
            self._keep_alive.note(response, header)
        if trace is not None:
            trace.statuses.append(response.status_code)
            if response.status_code in (429, 502, 503, 504):
                trace.retry_after = parse_retry_after(response.headers.get("retry-after"))
            if trace.wants_session_id and (session_id := response.headers.get(SESSION_HEADER)):
                trace.session_id = session_id
        if response.status_code in (400, 404) and SESSION_HEADER in request.headers:
            response = await self._note_session_refusal(request, response, trace)
        if 300 <= response.status_code < 400:
            # No Location reaches the SDK, so there is nothing for it to follow.
            _LOGGER.warning(
                "Refused a redirect (HTTP %d) from %s; redirects are never followed",
                response.status_code,
                request.url.copy_with(query=None),
            )
            await response.aclose()
            return _synthetic(request, trace, "redirect")
        event_stream = response.headers.get("content-type", "").lower().startswith("text/event-stream")
        limit = self._max_response_bytes
        declared = response.headers.get("content-length", "")
        if limit is not None and not event_stream and declared.isdigit() and int(declared) > limit:
            await response.aclose()  # refused before reading a byte of it
            return _synthetic(request, trace, "too_large")
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _ShieldedStream(response.stream, trace, limit, per_event=event_stream)
        return response

    async def _send(self, request: httpx2.Request, trace: WireTrace | None) -> httpx2.Response:
        """Send `request`, again on another connection after losing the keep-alive race with a
        replayable request (`keepalive`): the answer, or the exception that ends it."""
        resends = 0
        while True:
            opened: list[object] = []
            token = keepalive.opened_connections.set(opened)
            try:
                return await self._inner.handle_async_request(request)
            except httpx2.TransportError as exc:
                if (
                    opened
                    or resends >= keepalive.MAX_RESENDS
                    or not keepalive.no_answer(exc)
                    or not keepalive.replayable(
                        request, idempotent_call=trace is not None and trace.idempotent_call
                    )
                ):
                    raise
                resends += 1
                _LOGGER.info(
                    "%s closed a reused connection before answering (%s); sending again",
                    request.url.copy_with(query=None),
                    type(exc).__name__,
                )
            finally:
                keepalive.opened_connections.reset(token)

    async def _note_session_refusal(
        self, request: httpx2.Request, response: httpx2.Response, trace: WireTrace | None
    ) -> httpx2.Response:
        """Read a (small) 400/404 body to tell a lost session from any other refusal.

        The body is handed on unchanged, so the SDK still reads the server's own error.
        """
        body = b""
        if response.status_code == 400:
            assert isinstance(response.stream, httpx2.AsyncByteStream)
            raw = b""
            try:
                async for chunk in response.stream:
                    raw += chunk
                    if len(raw) > _PEEK_BYTES:
                        break
            except httpx2.TransportError as exc:
                return _synthetic(request, trace, classify(exc))
            finally:
                await response.aclose()
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
            try:  # built from bytes, the response reads (and decodes) its body at once
                response = httpx2.Response(
                    400,
                    headers=headers,
                    content=raw[:_PEEK_BYTES],
                    request=request,
                    extensions=response.extensions,
                )
            except httpx2.DecodingError:
                return _synthetic(request, trace, "protocol")
            body = response.content
        if not session_refusal(response.status_code, body):
            return response
        self._lost_sessions.append(request.headers[SESSION_HEADER])
        if trace is not None:
            trace.session_lost = True
            _LOGGER.info(
                "%s answered HTTP %d to a request on a session it no longer knows",
                request.url.copy_with(query=None),
                response.status_code,
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


_kept_sessions: set[str] = set()


def keep_session(session_id: str) -> None:
    """Never send `DELETE` for this session: it holds tasks that outlive this instance (operations/).

    Servers bind a task to the session that created it (the TypeScript SDK's task store) or drop
    the session's tasks with it (server-everything); other instances keep polling through it.
    """
    _kept_sessions.add(session_id)


def _synthetic(request: httpx2.Request, trace: WireTrace | None, failure: Failure) -> httpx2.Response:
    """The stand-in answer for a request that failed or was refused: the SDK sees an error status."""
    if trace is not None:
        trace.failure = failure
    return httpx2.Response(
        SYNTHETIC_STATUS,
        headers={"content-type": "text/plain", "x-bridge-failure": failure},
        content=b"",
        request=request,
    )
