"""Outcome mapping: what one attempt's failure means for the caller, from what the wire saw.

Whether a failure may be repeated is decided here from the `WireTrace` (never from exception
text): a `RetryableFailure` may move to the next endpoint or wait and go back; a `Problem` is the
caller's answer. A call moves on only when (a) it provably never reached the server, or (b) the
failure is ambiguous and the tool's annotations say repeating it is harmless. A non-idempotent call
is never run twice.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp import MCPError

from ..problems import (
    IdentityUnavailable,
    InputRequired,
    OutcomeUnknown,
    Problem,
    Unavailable,
    UpstreamFailed,
    UpstreamResponseTooLarge,
)
from ..redaction import printable
from ..upstream.catalog import CatalogTool
from ..upstream.session import ConnectFailed
from ..upstream.wire import REFUSED, SYNTHETIC_STATUS, WireTrace

_LOGGER = logging.getLogger(__name__)

_MAX_UPSTREAM_MESSAGE = 300
_CREDENTIALS_REFUSED = (
    "the Scheduler at {url} refused the bridge's credentials (HTTP 401) even after a token refresh: "
    "check the app role or API key the Scheduler expects"
)
_AMBIGUOUS_STATUSES = (SYNTHETIC_STATUS, 502, 503, 504)


class RetryableFailure(Exception):
    """Failed in a way that is safe to repeat (on the next endpoint, or the same after a wait)."""

    def __init__(
        self, problem: Problem, *, cause: str, retry_after: float | None = None, free: bool = False
    ) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.cause = cause  # this attempt's own cause, for its log line and the problem's `attempts`
        self.retry_after = retry_after
        # Nothing reached a server (connection refused, address refused): moving on adds no load
        # to the failing region, so it does not spend the retry budget.
        self.free = free


class OutcomeMapper:
    """Maps a failed session open or tool call to a `Problem` or a `RetryableFailure`."""

    def __init__(self, *, max_response_bytes: int) -> None:
        self._max_response_bytes = max_response_bytes

    def connect_failure(self, failure: ConnectFailed) -> Problem | RetryableFailure:
        trace, url = failure.trace, failure.url
        if trace.identity_error is not None:
            return as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or 401 in trace.statuses:
            return UpstreamFailed(_CREDENTIALS_REFUSED.format(url=url), endpoint=url)
        cause = wire_cause(trace, failure.cause_name)
        # Opening a session runs no tool, so any failure below is safe to repeat elsewhere; when no
        # endpoint is left, the caller learns what went wrong here rather than "unreachable".
        if trace.failure in REFUSED:
            return RetryableFailure(self.refused(trace, url, running=None), cause=cause, free=True)
        if trace.failure == "tls":
            problem: Problem = Unavailable(
                f"the TLS handshake with {url} failed: the endpoint may not serve https on that port "
                "(an https:// URL on a plain-HTTP port?), or its certificate is not trusted",
                endpoint=url,
            )
            return RetryableFailure(problem, cause=cause, free=True)
        if trace.statuses and trace.last_status == 404 and not trace.session_lost:
            problem = UpstreamFailed(
                f"the endpoint {url} answered HTTP 404 to the MCP handshake, with no session involved: "
                "its URL path is probably wrong (check SCHEDULER_ENDPOINTS; MCP servers commonly serve /mcp)",
                endpoint=url,
            )
            return RetryableFailure(problem, cause=cause, free=True)
        return RetryableFailure(
            Unavailable(f"no Scheduler endpoint is reachable (last tried: {url}: {cause})"),
            cause=cause,
            retry_after=trace.retry_after,
            free=trace.never_sent,
        )

    def call_failure(
        self, error: BaseException, trace: WireTrace, url: str, tool: CatalogTool
    ) -> Problem | RetryableFailure:
        if trace.identity_error is not None:
            return as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or trace.last_status == 401:
            return UpstreamFailed(_CREDENTIALS_REFUSED.format(url=url), endpoint=url)
        cause = wire_cause(trace, error)
        if trace.failure == "address_refused":
            # nothing was sent
            return RetryableFailure(self.refused(trace, url, running=tool), cause=cause, free=True)
        if trace.failure in REFUSED:
            # Deterministic answers the bridge refused to act on: another region would send the same
            # oversized answer (shared data) or the same redirect (shared configuration), and for a
            # tool that is not idempotent a repeat could run it twice. Never repeated.
            return self.refused(trace, url, running=tool)
        if trace.never_sent:
            return RetryableFailure(
                Unavailable(f"no Scheduler endpoint is reachable (last tried: {url}: {cause})"),
                cause=cause,
                free=True,
            )
        if trace.session_lost:
            # Lost again on the fresh session: still refused before anything ran.
            return RetryableFailure(
                UpstreamFailed(
                    f"the Scheduler at {url} refused the request on a fresh session too ({cause})",
                    endpoint=url,
                ),
                cause=cause,
            )
        ambiguous = (
            isinstance(error, TimeoutError)
            or trace.failure is not None
            or trace.last_status in _AMBIGUOUS_STATUSES
        )
        if ambiguous:
            if tool.idempotent:
                if trace.last_status == 503 and trace.retry_after is not None:
                    problem: Problem = Unavailable(
                        f"the Scheduler at {url} is unavailable", retry_after=trace.retry_after
                    )
                else:
                    problem = UpstreamFailed(f"the Scheduler at {url} failed mid-call", endpoint=url)
                return RetryableFailure(problem, cause=cause, retry_after=trace.retry_after)
            return OutcomeUnknown(
                f"the call to {tool.tool.name!r} failed after it reached the Scheduler at {url}; "
                "the outcome at the Scheduler is unknown, and the call was not repeated because the "
                "tool is not idempotent",
                tool=tool.tool.name,
                endpoint=url,
            )
        if isinstance(error, MCPError):
            message = error.error.message[:_MAX_UPSTREAM_MESSAGE]
            return UpstreamFailed(
                f"the Scheduler answered with a JSON-RPC error: {message}",
                endpoint=url,
                jsonrpc_code=error.error.code,
            )
        return UpstreamFailed(
            f"the Scheduler's answer could not be used ({type(error).__name__})", endpoint=url
        )

    def refused(self, trace: WireTrace, url: str, *, running: CatalogTool | None) -> Problem:
        """The problem for a failure that is the bridge's own refusal (`wire.REFUSED`)."""
        if trace.failure == "too_large":
            cap = self._max_response_bytes
            effect = ""
            if running is not None and not running.read_only:
                effect = f"; {running.tool.name!r} reached the Scheduler and may have taken effect"
            return UpstreamResponseTooLarge(
                f"the Scheduler's answer from {url} was larger than {cap} bytes "
                f"(MAX_UPSTREAM_RESPONSE_BYTES) and was cut off{effect}; the call was not repeated",
                endpoint=url,
                max_bytes=cap,
            )
        if trace.failure == "redirect":
            status = next((s for s in reversed(trace.statuses) if 300 <= s < 400), None)
            return UpstreamFailed(
                f"the Scheduler at {url} answered with a redirect (HTTP {status}); "
                "the bridge never follows redirects: configure the endpoint's final URL",
                endpoint=url,
            )
        return UpstreamFailed(
            f"the endpoint {url} resolved only to addresses the bridge refuses (link-local, or private "
            "without SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true); nothing was sent",
            endpoint=url,
        )


_CAUSES: dict[str, str] = {
    "connect": "connection refused",
    "connect_timeout": "connect timed out",
    "pool_timeout": "no pooled connection free in time",
    "write_timeout": "sending timed out",
    "read_timeout": "no answer in time",
    "read_error": "connection reset mid-answer",
    "protocol": "malformed HTTP answer",
    "too_large": "answer over MAX_UPSTREAM_RESPONSE_BYTES",
    "redirect": "redirect refused",
    "address_refused": "address refused by the endpoint policy",
    "tls": "TLS handshake failed",
}


def wire_cause(trace: WireTrace, error: BaseException | str | None) -> str:
    """One attempt's own cause in a few words, from what the wire saw; never upstream text."""
    if trace.failure is not None:
        return _CAUSES[trace.failure]
    if trace.session_lost:
        return f"session lost (HTTP {trace.last_status})"
    if trace.last_status is not None and trace.last_status >= 400:
        return f"HTTP {trace.last_status}"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, MCPError):
        return f"JSON-RPC error {error.error.code}"
    if isinstance(error, str):
        return error
    return type(error).__name__ if error is not None else "failed"


def input_required(tool: str, url: str, what: str) -> InputRequired:
    return InputRequired(
        f"the tool {tool!r} asked for input during the call ({printable(what)}); the bridge has no user to "
        "ask and refused, so the call did not complete: call a tool that needs no interaction, or pass "
        "what it asks for as arguments",
        tool=tool,
        endpoint=url,
        server_message=printable(what),
    )


def with_attempts(problem: Problem, causes: list[dict[str, str]]) -> Problem:
    """Name each failed attempt's endpoint and cause: "unreachable" alone tells an operator nothing."""
    problem.extensions["attempts"] = list(causes)
    return problem


def as_problem(error: BaseException) -> Problem:
    if isinstance(error, Problem):
        return error
    return IdentityUnavailable("the managed identity endpoint did not issue a token")


def dump_content(result: types.CallToolResult) -> list[dict[str, Any]]:
    return [block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content]


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
