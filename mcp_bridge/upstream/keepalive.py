"""Pooled connections kept as long as the server keeps them, and the keep-alive race made safe.

A server closes an idle connection after its own keep-alive timeout. A request written onto the
connection just as the server closes it reaches a closed socket: the client reads an EOF or a
reset before any byte of answer, and cannot tell from that alone whether the request ran. The rule
adopted here (Go's net/http `shouldRetryRequest`; urllib3 and httpcore do less, see
docs/performance.md):

- keep an idle connection no longer than the server said it would (`Keep-Alive: timeout=N`,
  expired a margin before N), else `SCHEDULER_IDLE_CONNECTION_SECONDS`; httpcore also probes an
  idle socket before reusing it and drops it when the server's close has already arrived;
- when a request on a *reused* connection still gets no byte of answer, it is sent again on
  another connection if it is replayable: anything but a `tools/call` (the session's own requests,
  notifications, `GET`, `DELETE`), or a `tools/call` the call path marked idempotent. A failure on
  a fresh connection is never resent: the server had no idle timeout to race with.

A non-idempotent `tools/call` is not resent, as Go does not resend a POST: the first two rules keep
it from meeting the race at all unless the server closes earlier than it announced.
"""

from __future__ import annotations

import logging
import re
import weakref
from contextvars import ContextVar

import httpcore2
import httpx2

_LOGGER = logging.getLogger(__name__)

MAX_RESENDS = 3
"""Resends of one request, each only after a failure on a reused connection: every idle
connection the server closed at once may be tried and dropped, and then a fresh one is opened."""

MAX_IDLE_SECONDS = 200.0
"""Never longer than this, whatever a server announces: Azure's load balancer drops an idle flow
after 4 minutes by default, silently, so a request on it would wait for its read timeout."""

_TIMEOUT = re.compile(r"(?:^|[,;\s])timeout\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_NO_ANSWER = "without sending a response"

opened_connections: ContextVar[list[object] | None] = ContextVar("scheduler_opened_connections", default=None)
"""Set per request by the transport; the network backend appends to it on every new connection
(connections are opened in the requesting task), so an empty list means the request went out on
a reused connection."""


def note_connection_opened() -> None:
    opened = opened_connections.get()
    if opened is not None:
        opened.append(True)


def advertised_timeout(value: str) -> float | None:
    """Seconds from a `Keep-Alive: timeout=N, max=M` header, or None when it names none."""
    match = _TIMEOUT.search(value)
    return float(match.group(1)) if match else None


def idle_limit(advertised: float) -> float:
    """How long to keep a connection the server keeps `advertised` seconds: a margin earlier, a
    tenth of it and at least one second, more than any round trip on the way."""
    return min(MAX_IDLE_SECONDS, max(0.0, advertised - max(1.0, advertised / 10)))


def no_answer(exc: httpx2.TransportError) -> bool:
    """Whether `exc` broke a request before any byte of answer: the server closed (EOF) or reset
    the connection while the request was being written or its answer awaited."""
    if isinstance(exc, httpx2.RemoteProtocolError):
        return _NO_ANSWER in str(exc)
    return isinstance(exc, httpx2.ReadError | httpx2.WriteError)


def replayable(request: httpx2.Request, *, idempotent_call: bool) -> bool:
    """Whether sending `request` twice is harmless (only asked after a failure)."""
    if request.method != "POST":
        return True  # GET (the event stream) and DELETE (closing the session)
    return idempotent_call or b'"tools/call"' not in request.content


class KeepAliveTuner:
    """Sets the idle limit of each connection whose server announces its keep-alive timeout."""

    def __init__(self, transport: httpx2.AsyncHTTPTransport) -> None:
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, httpcore2.AsyncConnectionPool):
            raise RuntimeError("cannot tune keep-alive on this httpx2 version")
        self._pool = pool
        self._tuned: weakref.WeakSet[object] = weakref.WeakSet()

    def note(self, response: httpx2.Response, header: str) -> None:
        """Apply `header` (the response's `Keep-Alive`) to the connection that carried `response`.

        httpcore sets a connection's expiry from its own `_keepalive_expiry` when the answer has
        been read, so changing that before the body is read governs this idle period and the next.
        """
        stream = response.extensions.get("network_stream")
        advertised = advertised_timeout(header)
        if stream is None or advertised is None or stream in self._tuned:
            return
        for connection in self._pool.connections:
            inner = getattr(connection, "_connection", None)
            if getattr(inner, "_network_stream", None) is stream:
                # Longer or shorter than the configured default: the server knows its own timeout.
                inner._keepalive_expiry = idle_limit(advertised)  # type: ignore[union-attr]
                self._tuned.add(stream)
                return
