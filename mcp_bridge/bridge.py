"""The call path: choose an endpoint, validate, call the tool over MCP, map what happened.

A request flows one way: allowlist → deadline → endpoint (by health) → catalog and schema check
→ `tools/call` → result or problem. Whether a failed call may be repeated is decided from what the
wire saw (`WireTrace`), never from exception text. A call moves to the next endpoint only when
(a) it provably never reached the server, or (b) the failure is ambiguous and the tool's
annotations say repeating it is harmless. A non-idempotent call is never run twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2
import mcp_types as types
from mcp import Client, MCPError

from . import retry, telemetry
from .catalog import CatalogTool, ToolCatalog
from .health import HealthBoard
from .probe import probe_interval_seconds
from .problems import (
    DeadlineExceeded,
    IdentityUnavailable,
    InputRequired,
    InvalidArguments,
    OutcomeUnknown,
    Problem,
    ToolFailed,
    ToolNotAllowed,
    ToolNotFound,
    Unavailable,
    UpstreamFailed,
    UpstreamResponseTooLarge,
)
from .redaction import printable
from .settings import BridgeSettings
from .snapshot import BlobSnapshotStore, SnapshotFollower
from .tokens import TokenProvider
from .upstream import ConnectFailed, UpstreamSession
from .wire import REFUSED, SYNTHETIC_STATUS, WireTrace, current_trace

if TYPE_CHECKING:
    from .scheduler_secrets import SchedulerSecrets

_LOGGER = logging.getLogger(__name__)

_MAX_UPSTREAM_MESSAGE = 300
_CREDENTIALS_REFUSED = (
    "the Scheduler at {url} refused the bridge's credentials (HTTP 401) even after a token refresh: "
    "check the app role or API key the Scheduler expects"
)
_AMBIGUOUS_STATUSES = (SYNTHETIC_STATUS, 502, 503, 504)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ToolCallOutcome:
    tool: str
    endpoint: str
    result: types.CallToolResult
    attempts: int
    protocol_version: str | None


@dataclass(frozen=True)
class Attempt:
    """One try at one endpoint: where, which try, and how long it may take."""

    session: UpstreamSession
    number: int
    deadline: float
    last_chance: bool

    def limit(self, *, splittable: bool) -> float | None:
        """Seconds this step may take, or None for "until the call's deadline".

        A step that is safe to abandon gets half of what is left when another attempt could
        follow, so one black-holed endpoint cannot eat the whole deadline. Anything else runs to
        the deadline itself, which answers 504.
        """
        if self.last_chance or not splittable:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time()) / 2


class _Retryable(Exception):
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


class SchedulerBridge:
    """Everything a function needs to reach the Scheduler; one per worker process."""

    def __init__(
        self,
        settings: BridgeSettings,
        http_client: httpx2.AsyncClient,
        *,
        tokens: TokenProvider | None = None,
        secrets: SchedulerSecrets | None = None,
    ) -> None:
        self.settings = settings
        self.http_client = http_client
        self.tokens = tokens
        self.secrets = secrets  # api_key credentials held from Key Vault, if any
        connect_timeout = min(10.0, settings.scheduler_timeout_seconds)
        self.endpoints = [
            UpstreamSession(
                url,
                http_client,
                connect_timeout=connect_timeout,
                tools_ttl=settings.tools_cache_ttl_seconds,
                max_event_bytes=settings.max_upstream_response_bytes,
            )
            for url in settings.scheduler_endpoints
        ]
        self.sessions = {session.url: session for session in self.endpoints}
        self.health = HealthBoard(settings.scheduler_endpoints)
        self.budget = retry.RetryBudget()
        self.snapshot_store: BlobSnapshotStore | None = None
        self.snapshot_follower: SnapshotFollower | None = None

    def share_health_through(self, store: BlobSnapshotStore) -> None:
        self.snapshot_store = store
        self.snapshot_follower = SnapshotFollower(store, ttl=self.settings.health_snapshot_ttl_seconds)

    async def publish_health(self) -> None:
        """Write this view's probe results for the other instances (the probing instance only)."""
        if self.snapshot_store is None:
            return
        snapshot = self.health.snapshot()
        snapshot["probe_interval_seconds"] = probe_interval_seconds(self.settings.health_probe_schedule)
        try:
            await self.snapshot_store.write(snapshot)
        except Exception as exc:
            _LOGGER.warning("Writing the health snapshot failed: %s", type(exc).__name__)

    def describe_health(self) -> dict[str, Any]:
        view = self.health.describe()
        view["token"] = None if self.tokens is None else asdict(self.tokens.state())
        view["snapshot"] = {
            "source": self.health.snapshot_source,
            "age_seconds": self.health.snapshot_age_seconds,
            "shared": self.snapshot_store is not None,
            "last_error": None if self.snapshot_follower is None else self.snapshot_follower.last_error,
        }
        return view

    # -- public operations --------------------------------------------------------------------

    async def list_tools(self) -> tuple[str, list[CatalogTool]]:
        """The active endpoint's tools, allowlist applied."""

        async def op(attempt: Attempt) -> tuple[str, list[CatalogTool]]:
            catalog = await self._catalog(attempt)
            allowed = [tool for name, tool in catalog.tools.items() if self.settings.tool_is_allowed(name)]
            return attempt.session.url, allowed

        return await self._run(op)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolCallOutcome:
        """Call `name` on the best endpoint that can take it. Raises `Problem`s."""
        if not self.settings.tool_is_allowed(name):
            raise ToolNotAllowed(f"the tool {name!r} is not on this bridge's allowlist", tool=name)
        attempts = 0
        session: UpstreamSession | None = None

        async def op(attempt: Attempt) -> ToolCallOutcome:
            nonlocal attempts, session
            attempts, session = attempt.number, attempt.session
            result = await self._call_on(attempt, name, arguments)
            return ToolCallOutcome(
                name, attempt.session.url, result, attempt.number, attempt.session.protocol_version
            )

        started = time.perf_counter()
        outcome, status = "error", 500
        with telemetry.tool_call(name) as call:
            try:
                result = await self._run(op)
                outcome, status = ("tool_error", ToolFailed.status) if result.result.is_error else ("ok", 200)
            except Problem as problem:
                outcome, status = problem.slug, problem.status
                raise
            finally:
                # A first-try success is in the host's request log already, and handing each record
                # to the worker's logging thread cost ~0.2 ms of CPU per call (README "Performance").
                _LOGGER.log(
                    logging.DEBUG if outcome == "ok" and attempts == 1 else logging.INFO,
                    "tool=%s outcome=%s attempts=%d duration_ms=%.1f",
                    printable(name),
                    outcome,
                    attempts,
                    (time.perf_counter() - started) * 1000,
                )
                call.finish(
                    outcome=outcome,
                    status=status,
                    attempts=attempts,
                    endpoint=None if session is None else session.url,
                    protocol_version=None if session is None else session.protocol_version,
                )
        if result.result.is_error:
            raise ToolFailed(
                f"the Scheduler's tool {name!r} reported an error",
                tool=name,
                endpoint=result.endpoint,
                content=dump_content(result.result),
            )
        return result

    async def aclose(self) -> None:
        for session in self.endpoints:
            await session.aclose()
        if self.snapshot_store is not None:
            await self.snapshot_store.aclose()
        await self.http_client.aclose()
        if self.tokens is not None:
            await self.tokens.close()
        if self.secrets is not None:
            await self.secrets.aclose()

    # -- the attempt loop ---------------------------------------------------------------------

    async def _run(self, op: Callable[[Attempt], Awaitable[_T]]) -> _T:
        timeout = self.settings.scheduler_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline) as scope:
                return await self._attempts(op, deadline)
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(
                    f"the Scheduler did not answer within {timeout:g} s", timeout_seconds=timeout
                ) from None
            raise

    async def _attempts(self, op: Callable[[Attempt], Awaitable[_T]], deadline: float) -> _T:
        if self.snapshot_follower is not None:
            self.snapshot_follower.maybe_refresh(self.health)
        order, panic = self.health.order()
        if panic:
            _LOGGER.warning("No endpoint is healthy; trying all of them in priority order")
        loop = asyncio.get_running_loop()
        tried: set[str] = set()
        causes: list[dict[str, str]] = []
        budget = self.budget
        budget.begin_request()
        holding_retry = False
        try:
            for number in range(1, retry.MAX_ATTEMPTS + 1):
                url = order[(number - 1) % len(order)]
                tried.add(url)
                last_chance = number == retry.MAX_ATTEMPTS
                attempt = Attempt(self.sessions[url], number, deadline, last_chance)
                try:
                    result = await op(attempt)
                except _Retryable as failure:
                    self.health.record_call(url, ok=False)
                    causes.append({"endpoint": url, "cause": failure.cause})
                    if holding_retry:
                        budget.end_retry()
                        holding_retry = False
                    next_url = order[number % len(order)]
                    # A move to a healthy region this call has not tried is a failover, not a
                    # repeat: it adds no load to the failing region, so it neither waits nor spends
                    # the budget (see `retry.RetryBudget`).
                    moving = next_url not in tried and not panic
                    wait = (
                        0.0
                        if moving
                        else retry.wait_before(
                            number,
                            retry_after=failure.retry_after if next_url == url else None,
                            remaining=deadline - loop.time(),
                        )
                    )
                    if last_chance or wait is None:
                        raise _with_attempts(failure.problem, causes) from None
                    if not (failure.free or moving):
                        if not budget.try_begin_retry():
                            _LOGGER.warning(
                                "Attempt %d at %s failed (%s); the retry budget is spent",
                                number, url, failure.cause,
                            )  # fmt: skip
                            raise _with_attempts(failure.problem, causes) from None
                        holding_retry = True
                    _LOGGER.warning(
                        "Attempt %d at %s failed (%s); retrying at %s", number, url, failure.cause, next_url
                    )
                    if next_url != url:
                        telemetry.record_failover(
                            scope="call", from_endpoint=url, to_endpoint=next_url, reason=failure.problem.slug
                        )
                    if wait:
                        await retry.sleep(wait)
                    continue
                except (UpstreamFailed, Unavailable) as problem:
                    if not isinstance(problem, IdentityUnavailable):
                        self.health.record_call(url, ok=False)
                    if causes:
                        raise _with_attempts(problem, causes) from None
                    raise
                self.health.record_call(url, ok=True)
                return result
        finally:
            if holding_retry:
                budget.end_retry()
            budget.end_request()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_on(self, attempt: Attempt, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        session = attempt.session
        catalog = await self._catalog(attempt)
        tool = catalog.tools.get(name)
        if tool is None:
            catalog = await self._catalog(attempt, missing=name)
            tool = catalog.tools.get(name)
        if tool is None:
            raise ToolNotFound(f"the Scheduler has no tool named {name!r}", tool=name)
        violations = tool.violations(arguments)
        if violations:
            raise InvalidArguments(
                f"{len(violations)} argument(s) do not match the input schema of {name!r}",
                tool=name,
                violations=violations,
            )
        client = await self._client(attempt)
        limit = attempt.limit(splittable=tool.idempotent)
        result, trace = await _traced(client.call_tool(name, arguments), limit)
        if trace.input_requested is not None:
            raise _input_required(name, session.url, trace.input_requested)
        if isinstance(result, types.CallToolResult):
            return result
        if trace.session_lost or session.was_lost(client):
            # The server forgot our session (restart, idle expiry, another region's id): it refused
            # the call before running it, so resending on a fresh session is safe for every tool.
            _LOGGER.info("Session lost at %s; reconnecting once", session.url)
            client = await self._reconnect(session, client)
            result, trace = await _traced(
                client.call_tool(name, arguments), attempt.limit(splittable=tool.idempotent)
            )
            if trace.input_requested is not None:
                raise _input_required(name, session.url, trace.input_requested)
            if isinstance(result, types.CallToolResult):
                return result
        raise self._failure(result, trace, session, tool)

    # -- sessions, tokens and catalogs, with failures classified -------------------------------

    async def _client(self, attempt: Attempt) -> Client:
        if self.tokens is not None:
            await self.tokens.get_token()  # fail fast with 503 before touching the session
        session = attempt.session
        if session.connected:  # the usual case: nothing to wait for, so no timer to arm
            return await session.client()
        try:
            async with asyncio.timeout(attempt.limit(splittable=True)) as scope:
                return await session.client()
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None
        except TimeoutError:
            if not scope.expired():
                raise
            # Opening a session runs no tool, so giving up on a slow one is always safe.
            raise _Retryable(
                Unavailable(f"opening a session with {session.url} timed out"), cause="session open timed out"
            ) from None

    async def _reconnect(self, session: UpstreamSession, stale: Client) -> Client:
        try:
            return await session.reconnect(stale)
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None

    async def _catalog(self, attempt: Attempt, *, missing: str | None = None) -> ToolCatalog:
        await self._client(attempt)
        session = attempt.session
        cached = session.cached_catalog(missing=missing)
        if cached is not None:  # as above: no timer when nothing is fetched
            return cached
        try:
            async with asyncio.timeout(attempt.limit(splittable=True)) as scope:
                return await session.catalog(missing=missing)
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None
        except TimeoutError:
            if not scope.expired():
                raise
            raise _Retryable(
                UpstreamFailed(f"listing tools at {session.url} timed out"), cause="tools/list timed out"
            ) from None
        except (MCPError, httpx2.HTTPError, RuntimeError, ValueError) as exc:
            # tools/list is read-only: any failure is safe to repeat on the next endpoint.
            raise _Retryable(
                UpstreamFailed(f"listing tools at {session.url} failed ({type(exc).__name__})"),
                cause=f"tools/list failed: {type(exc).__name__}",
            ) from None

    def _connect_failure(self, failure: ConnectFailed) -> Problem | _Retryable:
        trace, url = failure.trace, failure.url
        if trace.identity_error is not None:
            return _as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or 401 in trace.statuses:
            return UpstreamFailed(_CREDENTIALS_REFUSED.format(url=url), endpoint=url)
        cause = wire_cause(trace, failure.cause_name)
        # Opening a session runs no tool, so any failure below is safe to repeat elsewhere; when no
        # endpoint is left, the caller learns what went wrong here rather than "unreachable".
        if trace.failure in REFUSED:
            return _Retryable(self._refused(trace, url, running=None), cause=cause, free=True)
        if trace.failure == "tls":
            problem: Problem = Unavailable(
                f"the TLS handshake with {url} failed: the endpoint may not serve https on that port "
                "(an https:// URL on a plain-HTTP port?), or its certificate is not trusted",
                endpoint=url,
            )
            return _Retryable(problem, cause=cause, free=True)
        if trace.statuses and trace.last_status == 404 and not trace.session_lost:
            problem = UpstreamFailed(
                f"the endpoint {url} answered HTTP 404 to the MCP handshake, with no session involved: "
                "its URL path is probably wrong (check SCHEDULER_ENDPOINTS; MCP servers commonly serve /mcp)",
                endpoint=url,
            )
            return _Retryable(problem, cause=cause, free=True)
        return _Retryable(
            Unavailable(f"no Scheduler endpoint is reachable (last tried: {url}: {cause})"),
            cause=cause,
            retry_after=trace.retry_after,
            free=trace.never_sent,
        )

    def _failure(
        self, error: BaseException, trace: WireTrace, session: UpstreamSession, tool: CatalogTool
    ) -> Problem | _Retryable:
        url = session.url
        if trace.identity_error is not None:
            return _as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or trace.last_status == 401:
            return UpstreamFailed(_CREDENTIALS_REFUSED.format(url=url), endpoint=url)
        cause = wire_cause(trace, error)
        if trace.failure == "address_refused":
            return _Retryable(self._refused(trace, url, running=tool), cause=cause, free=True)  # not sent
        if trace.failure in REFUSED:
            # Deterministic answers the bridge refused to act on: another region would send the same
            # oversized answer (shared data) or the same redirect (shared configuration), and for a
            # tool that is not idempotent a repeat could run it twice. Never repeated.
            return self._refused(trace, url, running=tool)
        if trace.never_sent:
            return _Retryable(
                Unavailable(f"no Scheduler endpoint is reachable (last tried: {url}: {cause})"),
                cause=cause,
                free=True,
            )
        if trace.session_lost:
            # Lost again on the fresh session: still refused before anything ran.
            return _Retryable(
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
                return _Retryable(problem, cause=cause, retry_after=trace.retry_after)
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

    def _refused(self, trace: WireTrace, url: str, *, running: CatalogTool | None) -> Problem:
        """The problem for a failure that is the bridge's own refusal (`wire.REFUSED`)."""
        if trace.failure == "too_large":
            cap = self.settings.max_upstream_response_bytes
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


async def _traced(call: Awaitable[Any], limit: float | None) -> tuple[Any, WireTrace]:
    """Run `call` under a fresh `WireTrace` and a time limit; return its result or its exception."""
    trace = WireTrace()
    token = current_trace.set(trace)
    try:
        async with asyncio.timeout(limit) as scope:
            trace.call_scope = scope
            return await call, trace
    except TimeoutError as exc:
        if not scope.expired():
            raise
        return exc, trace
    except (MCPError, httpx2.HTTPError, RuntimeError, ValueError) as exc:
        return exc, trace
    finally:
        current_trace.reset(token)


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


def _input_required(tool: str, url: str, what: str) -> InputRequired:
    return InputRequired(
        f"the tool {tool!r} asked for input during the call ({printable(what)}); the bridge has no user to "
        "ask and refused, so the call did not complete: call a tool that needs no interaction, or pass "
        "what it asks for as arguments",
        tool=tool,
        endpoint=url,
        server_message=printable(what),
    )


def _with_attempts(problem: Problem, causes: list[dict[str, str]]) -> Problem:
    """Name each failed attempt's endpoint and cause: "unreachable" alone tells an operator nothing."""
    problem.extensions["attempts"] = list(causes)
    return problem


def _as_problem(error: BaseException) -> Problem:
    if isinstance(error, Problem):
        return error
    return IdentityUnavailable("the managed identity endpoint did not issue a token")


def dump_content(result: types.CallToolResult) -> list[dict[str, Any]]:
    return [block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content]


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
