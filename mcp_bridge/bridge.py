"""The call path: choose an endpoint, validate, call the tool over MCP, map what happened.

A request flows one way: allowlist → deadline → endpoint → catalog and schema check → `tools/call`
→ result or problem. Whether a failed call may be repeated is decided from what the wire saw
(`WireTrace`), never from exception text: a call moves on only when it provably never reached the
server, or when the tool says repeating it is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client, MCPError

from .catalog import CatalogTool
from .problems import (
    DeadlineExceeded,
    IdentityUnavailable,
    InvalidArguments,
    OutcomeUnknown,
    Problem,
    ToolFailed,
    ToolNotAllowed,
    ToolNotFound,
    Unavailable,
    UpstreamFailed,
)
from .settings import BridgeSettings
from .tokens import TokenProvider
from .upstream import ConnectFailed, UpstreamSession
from .wire import SYNTHETIC_STATUS, WireTrace, current_trace

_LOGGER = logging.getLogger(__name__)

_MAX_UPSTREAM_MESSAGE = 300


@dataclass(frozen=True)
class ToolCallOutcome:
    tool: str
    endpoint: str
    result: types.CallToolResult
    attempts: int
    protocol_version: str | None


class _TryNextEndpoint(Exception):
    """This endpoint failed in a way that is safe to repeat elsewhere."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class SchedulerBridge:
    """Everything a function needs to reach the Scheduler; one per worker process."""

    def __init__(
        self,
        settings: BridgeSettings,
        http_client: httpx2.AsyncClient,
        *,
        tokens: TokenProvider | None = None,
    ) -> None:
        self.settings = settings
        self.http_client = http_client
        self.tokens = tokens
        connect_timeout = min(10.0, settings.scheduler_timeout_seconds)
        self.endpoints = [
            UpstreamSession(
                url, http_client, connect_timeout=connect_timeout, tools_ttl=settings.tools_cache_ttl_seconds
            )
            for url in settings.scheduler_endpoints
        ]

    # -- public operations --------------------------------------------------------------------

    async def list_tools(self) -> tuple[str, list[CatalogTool]]:
        """The active endpoint's tools, allowlist applied."""

        async def attempt(session: UpstreamSession) -> tuple[str, list[CatalogTool]]:
            catalog = await self._catalog(session)
            allowed = [tool for name, tool in catalog.tools.items() if self.settings.tool_is_allowed(name)]
            return session.url, allowed

        return await self._with_deadline(self._across_endpoints(attempt))

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolCallOutcome:
        """Call `name` on the highest-priority endpoint that can take it. Raises `Problem`s."""
        if not self.settings.tool_is_allowed(name):
            raise ToolNotAllowed(f"the tool {name!r} is not on this bridge's allowlist", tool=name)
        attempts = 0

        async def attempt(session: UpstreamSession) -> ToolCallOutcome:
            nonlocal attempts
            attempts += 1
            result = await self._call_on(session, name, arguments)
            return ToolCallOutcome(name, session.url, result, attempts, session.protocol_version)

        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._with_deadline(self._across_endpoints(attempt))
            outcome = "tool_error" if result.result.is_error else "ok"
        except Problem as problem:
            outcome = problem.slug
            raise
        finally:
            _LOGGER.info(
                "tool=%s outcome=%s attempts=%d duration_ms=%.1f",
                name,
                outcome,
                attempts,
                (time.perf_counter() - started) * 1000,
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
        await self.http_client.aclose()
        if self.tokens is not None:
            await self.tokens.close()

    # -- the attempt loop ---------------------------------------------------------------------

    async def _with_deadline(self, work: Any) -> Any:
        timeout = self.settings.scheduler_timeout_seconds
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await work
        except TimeoutError:
            if deadline.expired():
                raise DeadlineExceeded(
                    f"the Scheduler did not answer within {timeout:g} s", timeout_seconds=timeout
                ) from None
            raise

    async def _across_endpoints(self, attempt: Any) -> Any:
        last: Problem | None = None
        for session in self.endpoints:
            try:
                return await attempt(session)
            except _TryNextEndpoint as failure:
                _LOGGER.warning("Endpoint %s failed safely (%s); trying the next", session.url, failure)
                last = failure.problem
        raise last or Unavailable("no Scheduler endpoint is configured")

    async def _call_on(
        self, session: UpstreamSession, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        catalog = await self._catalog(session)
        tool = catalog.tools.get(name)
        if tool is None:
            catalog = await self._catalog(session, missing=name)
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
        client = await self._client(session)
        result, trace = await _traced(client.call_tool(name, arguments))
        if isinstance(result, types.CallToolResult):
            return result
        if trace.session_lost or (trace.last_status == 404 and session.has_session_id):
            # The server forgot our session (restart, idle expiry): it never ran the call.
            _LOGGER.info("Session lost at %s; reconnecting once", session.url)
            client = await self._reconnect(session, client)
            result, trace = await _traced(client.call_tool(name, arguments))
            if isinstance(result, types.CallToolResult):
                return result
        raise self._failure(result, trace, session, tool)

    # -- sessions, tokens and catalogs, with failures classified -------------------------------

    async def _client(self, session: UpstreamSession) -> Client:
        if self.tokens is not None:
            await self.tokens.get_token()  # fail fast with 503 before touching the session
        try:
            return await session.client()
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None

    async def _reconnect(self, session: UpstreamSession, stale: Client) -> Client:
        try:
            return await session.reconnect(stale)
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None

    async def _catalog(self, session: UpstreamSession, *, missing: str | None = None) -> Any:
        await self._client(session)
        try:
            return await session.catalog(missing=missing)
        except ConnectFailed as failure:
            raise self._connect_failure(failure) from None
        except (MCPError, httpx2.HTTPError, RuntimeError, ValueError) as exc:
            # tools/list is read-only: any failure is safe to repeat on the next endpoint.
            raise _TryNextEndpoint(
                UpstreamFailed(f"listing tools at {session.url} failed ({type(exc).__name__})")
            ) from None

    def _connect_failure(self, failure: ConnectFailed) -> Problem | _TryNextEndpoint:
        trace = failure.trace
        if trace.identity_error is not None:
            return _as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or 401 in trace.statuses:
            return UpstreamFailed(
                "the Scheduler rejected the bridge's credentials (401) even after a refresh",
                endpoint=failure.url,
            )
        # Opening a session runs no tool, so any failure here is safe to repeat elsewhere.
        return _TryNextEndpoint(
            Unavailable(f"no Scheduler endpoint is reachable (last: {failure.url})", retry_after=5)
        )

    def _failure(
        self, error: BaseException, trace: WireTrace, session: UpstreamSession, tool: CatalogTool
    ) -> Problem | _TryNextEndpoint:
        url = session.url
        if trace.identity_error is not None:
            return _as_problem(trace.identity_error)
        if trace.unauthorized_after_refresh or trace.last_status == 401:
            return UpstreamFailed(
                "the Scheduler rejected the bridge's credentials (401) even after a refresh", endpoint=url
            )
        if trace.never_sent:
            return _TryNextEndpoint(Unavailable(f"no Scheduler endpoint is reachable (last: {url})"))
        ambiguous = trace.failure is not None or trace.last_status in (SYNTHETIC_STATUS, 502, 503, 504)
        if ambiguous:
            if tool.idempotent:
                return _TryNextEndpoint(
                    UpstreamFailed(f"the Scheduler at {url} failed mid-call; the tool is safe to repeat")
                )
            return OutcomeUnknown(
                f"the call to {tool.tool.name!r} failed after it reached the Scheduler at {url}; "
                "the outcome at the Scheduler is unknown and the call was not repeated because the tool "
                "is not idempotent",
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


async def _traced(call: Any) -> tuple[Any, WireTrace]:
    """Run `call` with a fresh `WireTrace`; return its result, or the exception it raised."""
    trace = WireTrace()
    token = current_trace.set(trace)
    try:
        return await call, trace
    except (MCPError, httpx2.HTTPError, RuntimeError, ValueError) as exc:
        return exc, trace
    finally:
        current_trace.reset(token)


def _as_problem(error: BaseException) -> Problem:
    if isinstance(error, Problem):
        return error
    return IdentityUnavailable("the managed identity endpoint did not issue a token")


def dump_content(result: types.CallToolResult) -> list[dict[str, Any]]:
    return [block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content]


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
