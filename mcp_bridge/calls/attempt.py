"""One attempt at one endpoint: the catalog and schema check, `tools/call`, and a lost session.

An attempt borrows the endpoint's long-lived session (never enters it), runs each step under its
own time limit (`Attempt.limit`), and hands every failure to the outcome mapping, which says
whether the call may move on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client, MCPError

from ..arguments.strict import invalid_arguments, unknown_arguments
from ..problems import ToolNotFound, Unavailable, UpstreamFailed
from ..upstream.catalog import CatalogTool, ToolCatalog
from ..upstream.session import ConnectFailed, UpstreamSession
from ..upstream.tokens import TokenProvider
from ..upstream.wire import WireTrace, current_trace
from .outcomes import OutcomeMapper, RetryableFailure, input_required
from .progress import progress_callback

_LOGGER = logging.getLogger(__name__)


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


class AttemptRunner:
    """Runs the steps of one attempt; shared by every call (it holds no per-call state)."""

    def __init__(
        self, *, tokens: TokenProvider | None, outcomes: OutcomeMapper, strict_arguments: bool = True
    ) -> None:
        self._tokens = tokens
        self._outcomes = outcomes
        self._strict_arguments = strict_arguments  # SCHEDULER_STRICT_ARGUMENTS

    async def call(self, attempt: Attempt, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call `name` on `attempt`'s endpoint: catalog and schema check, `tools/call`, and one resend
        on a fresh session when the server forgot ours."""
        session = attempt.session
        tool = await self.checked_tool(attempt, name, arguments)
        client = await self.client(attempt)
        limit = attempt.limit(splittable=tool.idempotent)
        on_progress = progress_callback()  # every call carries a progressToken (calls.progress)
        result, trace = await _traced(
            client.call_tool(name, arguments, progress_callback=on_progress),
            limit,
            idempotent=tool.idempotent,
        )
        if trace.input_requested is not None:
            raise input_required(name, session.url, trace.input_requested)
        if isinstance(result, types.CallToolResult):
            return result
        if trace.session_lost or session.was_lost(client):
            # The server forgot our session (restart, idle expiry, another region's id): it refused
            # the call before running it, so resending on a fresh session is safe for every tool.
            _LOGGER.info("Session lost at %s; reconnecting once", session.url)
            client = await self._reconnect(session, client)
            result, trace = await _traced(
                client.call_tool(name, arguments, progress_callback=on_progress),
                attempt.limit(splittable=tool.idempotent),
                idempotent=tool.idempotent,
            )
            if trace.input_requested is not None:
                raise input_required(name, session.url, trace.input_requested)
            if isinstance(result, types.CallToolResult):
                return result
        raise self._outcomes.call_failure(result, trace, session.url, tool)

    async def checked_tool(self, attempt: Attempt, name: str, arguments: dict[str, Any]) -> CatalogTool:
        """The listed tool `name`, once `arguments` pass its schema (and strict names); else a problem."""
        catalog = await self.catalog(attempt)
        tool = catalog.tools.get(name)
        if tool is None:
            catalog = await self.catalog(attempt, missing=name)
            tool = catalog.tools.get(name)
        if tool is None:
            raise ToolNotFound(f"the Scheduler has no tool named {name!r}", tool=name)
        violations = tool.violations(arguments)
        unknown = (
            unknown_arguments(tool.tool.input_schema, arguments, leaves=tool.argument_leaves)
            if self._strict_arguments
            else []
        )
        if violations or unknown:
            raise invalid_arguments(name, unknown=unknown, violations=violations)
        return tool

    async def client(self, attempt: Attempt) -> Client:
        """The endpoint's connected client, a token in hand first; opening a session runs no tool."""
        if self._tokens is not None:
            await self._tokens.get_token()  # fail fast with 503 before touching the session
        session = attempt.session
        if session.connected:  # the usual case: nothing to wait for, so no timer to arm
            return await session.client()
        try:
            async with asyncio.timeout(attempt.limit(splittable=True)) as scope:
                return await session.client()
        except ConnectFailed as failure:
            raise self._outcomes.connect_failure(failure) from None
        except TimeoutError:
            if not scope.expired():
                raise
            # Opening a session runs no tool, so giving up on a slow one is always safe.
            raise RetryableFailure(
                Unavailable(f"opening a session with {session.url} timed out"), cause="session open timed out"
            ) from None

    async def _reconnect(self, session: UpstreamSession, stale: Client) -> Client:
        try:
            return await session.reconnect(stale)
        except ConnectFailed as failure:
            raise self._outcomes.connect_failure(failure) from None

    async def catalog(self, attempt: Attempt, *, missing: str | None = None) -> ToolCatalog:
        """The endpoint's tool listing; any failure of a listing is safe to repeat elsewhere."""
        await self.client(attempt)
        session = attempt.session
        cached = session.cached_catalog(missing=missing)
        if cached is not None:  # as above: no timer when nothing is fetched
            return cached
        try:
            async with asyncio.timeout(attempt.limit(splittable=True)) as scope:
                return await session.catalog(missing=missing)
        except ConnectFailed as failure:
            raise self._outcomes.connect_failure(failure) from None
        except TimeoutError:
            if not scope.expired():
                raise
            raise RetryableFailure(
                UpstreamFailed(f"listing tools at {session.url} timed out"), cause="tools/list timed out"
            ) from None
        except (MCPError, httpx2.HTTPError, RuntimeError, ValueError) as exc:
            # tools/list is read-only: any failure is safe to repeat on the next endpoint.
            raise RetryableFailure(
                UpstreamFailed(f"listing tools at {session.url} failed ({type(exc).__name__})"),
                cause=f"tools/list failed: {type(exc).__name__}",
            ) from None


async def _traced(
    call: Awaitable[Any], limit: float | None, *, idempotent: bool = False
) -> tuple[Any, WireTrace]:
    """Run `call` under a fresh `WireTrace` and a time limit; return its result or its exception."""
    trace = WireTrace(idempotent_call=idempotent)
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
