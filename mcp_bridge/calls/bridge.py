"""The Scheduler bridge: what a function calls to reach the Scheduler, one per worker process.

A request flows one way: allowlist → deadline → endpoint by health (`endpoints`) → one attempt:
catalog, schema check, `tools/call` (`attempt`) → result, or a problem from what the wire saw
(`outcomes`). This module composes them and records each call: its log line, its span and its
audit record.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx2
import mcp_types as types

from .. import telemetry
from ..callers import audit
from ..config.settings import BridgeSettings
from ..config.upstreams import DEFAULT_UPSTREAM
from ..failover import retry
from ..failover.all_upstreams import combined_snapshot
from ..failover.health import HealthBoard
from ..failover.probe import probe_all
from ..failover.probe_schedule import probe_interval_seconds
from ..failover.snapshot import BlobSnapshotStore, SnapshotFollower
from ..problems import Problem, ToolFailed, ToolNotAllowed
from ..redaction import printable
from ..upstream.catalog import CatalogTool
from ..upstream.session import UpstreamSession
from ..upstream.tokens import TokenProvider
from .attempt import Attempt, AttemptRunner
from .endpoints import FailoverLoop
from .outcomes import OutcomeMapper, dump_content

if TYPE_CHECKING:
    from ..azure_services.scheduler_secrets import SchedulerSecrets

__all__ = ["SchedulerBridge", "ToolCallOutcome"]

_LOGGER = logging.getLogger(__name__)

_SCHEDULER_IN_TEXT = re.compile(r"\bthe Scheduler\b")

AUTO_PROBE_INTERVAL_SECONDS = 30.0
"""How often requests may start a probe round while some endpoint still has no probe result."""


@dataclass(frozen=True)
class ToolCallOutcome:
    tool: str
    endpoint: str
    result: types.CallToolResult
    attempts: int
    protocol_version: str | None


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
        self.health = HealthBoard(settings.scheduler_endpoints, upstream=settings.upstream_name)
        self.budget = retry.RetryBudget()
        # Every upstream's bridge in this process (the runtime's registry): the shared snapshot
        # this bridge writes holds them all, so that no upstream's write drops another's board.
        self.upstreams: Mapping[str, SchedulerBridge] = {settings.upstream_name: self}
        self.snapshot_store: BlobSnapshotStore | None = None
        self.snapshot_follower: SnapshotFollower | None = None
        self._loop = FailoverLoop(
            sessions=self.sessions,
            health=self.health,
            budget=self.budget,
            timeout=settings.scheduler_timeout_seconds,
        )
        self._attempt = AttemptRunner(
            tokens=tokens,
            outcomes=OutcomeMapper(max_response_bytes=settings.max_upstream_response_bytes),
            strict_arguments=settings.scheduler_strict_arguments,
        )
        # Problems name "the Scheduler"; another upstream's name its own server instead (`_named`).
        self.upstream = settings.upstream_name
        self._other_server = None if self.upstream == DEFAULT_UPSTREAM else f"the {self.upstream} server"
        self._probed = False  # True once every endpoint has a probe result: the hot path checks one flag
        self._probe_round: asyncio.Task[object] | None = None
        self._probe_round_at = float("-inf")

    def share_health_through(self, store: BlobSnapshotStore) -> None:
        self.snapshot_store = store
        self.snapshot_follower = SnapshotFollower(
            store, ttl=self.settings.health_snapshot_ttl_seconds, upstream=self.settings.upstream_name
        )
        self._loop.follow(self.snapshot_follower)

    async def publish_health(self) -> None:
        """Write this view's probe results for the other instances (the probing instance only)."""
        if self.snapshot_store is None:
            return
        snapshot = combined_snapshot({name: bridge.health for name, bridge in self.upstreams.items()})
        snapshot["probe_interval_seconds"] = probe_interval_seconds(self.settings.health_probe_schedule)
        try:
            await self.snapshot_store.write(snapshot)
        except Exception as exc:
            _LOGGER.warning("Writing the health snapshot failed: %s", type(exc).__name__)

    def probe_if_unknown(self) -> None:
        """Start one probe round in the background when an endpoint has no probe result yet.

        Until a probe runs nothing vouches for an endpoint, and `/api/health` would have to guess.
        The timer's first run may be a minute away, so the first request (or health read) starts
        a round itself, at most every `AUTO_PROBE_INTERVAL_SECONDS`. It records results locally and
        publishes nothing: the shared snapshot stays the timer's.
        """
        if self._probed:
            return
        if self.health.has_probe_results():
            self._probed = True
            return
        now = time.monotonic()
        if self._probe_round is not None or now - self._probe_round_at < AUTO_PROBE_INTERVAL_SECONDS:
            return
        self._probe_round_at = now
        self._probe_round = asyncio.create_task(self._probe_round_once(), context=contextvars.Context())

    async def _probe_round_once(self) -> None:
        try:
            await probe_all(self, publish=False)
        except Exception as exc:  # a probe round must never fail anything else
            _LOGGER.warning("Background probe round failed: %s", type(exc).__name__)
        finally:
            self._probe_round = None

    async def read_health(self) -> dict[str, Any]:
        """`/api/health`'s view: the shared snapshot re-read when due, a probe round started when
        nothing has been probed yet."""
        self.probe_if_unknown()
        if self.snapshot_follower is not None:
            await self.snapshot_follower.refresh_if_due(self.health)
        return self.describe_health()

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

        self.probe_if_unknown()

        async def op(attempt: Attempt) -> tuple[str, list[CatalogTool]]:
            catalog = await self._attempt.catalog(attempt)
            allowed = [tool for name, tool in catalog.tools.items() if self.settings.tool_is_allowed(name)]
            return attempt.session.url, allowed

        try:
            return await self._loop.run(op)
        except Problem as problem:
            self._named(problem)
            raise

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolCallOutcome:
        """Call `name` on the best endpoint that can take it. Raises `Problem`s."""
        if not self.settings.tool_is_allowed(name):
            allowlist = self.settings.setting_name("scheduler_allowed_tools")
            raise ToolNotAllowed(
                f"the tool {name!r} is not on this bridge's allowlist ({allowlist})", tool=name
            )
        self.probe_if_unknown()
        attempts = 0
        session: UpstreamSession | None = None

        async def op(attempt: Attempt) -> ToolCallOutcome:
            nonlocal attempts, session
            attempts, session = attempt.number, attempt.session
            result = await self._attempt.call(attempt, name, arguments)
            return ToolCallOutcome(
                name, attempt.session.url, result, attempt.number, attempt.session.protocol_version
            )

        started = time.perf_counter()
        outcome, status = "error", 500
        with telemetry.tool_call(name, upstream=self.upstream) as call:
            call.set(audit.ENDUSER_ID, audit.current_caller_id())  # who asked; None for key callers
            try:
                result = await self._loop.run(op)
                outcome, status = ("tool_error", ToolFailed.status) if result.result.is_error else ("ok", 200)
            except Problem as problem:
                outcome, status = problem.slug, problem.status
                self._named(problem)
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
                audit.report(
                    outcome=outcome,
                    status=status,
                    attempts=attempts,
                    endpoint=None if session is None else session.url,
                )
        if result.result.is_error:
            raise self._named(
                ToolFailed(
                    f"the Scheduler's tool {name!r} reported an error",
                    tool=name,
                    endpoint=result.endpoint,
                    content=dump_content(result.result),
                )
            )
        return result

    def _named(self, problem: Problem) -> Problem:
        """`problem` as this upstream's: its detail names this server, not the Scheduler, and it
        carries `upstream`. The default upstream's problems are left exactly as they were."""
        if self._other_server is not None and "upstream" not in problem.extensions:
            detail = _SCHEDULER_IN_TEXT.sub(self._other_server, problem.detail)
            detail = detail.replace("no Scheduler endpoint", f"no {self.upstream} endpoint")
            problem.detail = detail
            problem.args = (detail,)
            problem.extensions["upstream"] = self.upstream
        return problem

    async def aclose(self) -> None:
        if self._probe_round is not None:
            self._probe_round.cancel()
        for session in self.endpoints:
            await session.aclose()
        if self.snapshot_store is not None:
            await self.snapshot_store.aclose()
        await self.http_client.aclose()
        if self.tokens is not None:
            await self.tokens.close()
        if self.secrets is not None:
            await self.secrets.aclose()
