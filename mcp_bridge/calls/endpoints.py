"""Endpoint choice and the attempt loop: which region each attempt goes to, and whether it may.

One deadline covers every attempt. The health board orders the regions; a failed attempt that the
outcome mapping calls retryable moves to the next region, or waits and goes back, within the retry
budget (`failover.retry.RetryBudget`): a move to a healthy region the call has not tried is a
failover, never refused, while a repeat that adds load to a failing region must fit the budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .. import telemetry
from ..failover import retry
from ..failover.health import HealthBoard
from ..failover.snapshot import SnapshotFollower
from ..problems import DeadlineExceeded, IdentityUnavailable, Unavailable, UpstreamFailed
from ..upstream.session import UpstreamSession
from .attempt import Attempt
from .outcomes import RetryableFailure, with_attempts

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")


class FailoverLoop:
    """Runs an operation on the best endpoint, moving on when a failure allows it."""

    def __init__(
        self,
        *,
        sessions: dict[str, UpstreamSession],
        health: HealthBoard,
        budget: retry.RetryBudget,
        timeout: float,
    ) -> None:
        self._sessions = sessions
        self._health = health
        self._budget = budget
        self._timeout = timeout
        self._snapshot_follower: SnapshotFollower | None = None

    def follow(self, follower: SnapshotFollower) -> None:
        """Take active health from the shared snapshot before each call."""
        self._snapshot_follower = follower

    async def run(self, op: Callable[[Attempt], Awaitable[_T]]) -> _T:
        timeout = self._timeout
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
        if self._snapshot_follower is not None:
            self._snapshot_follower.maybe_refresh(self._health)
        order, usable = self._health.attempt_order()
        if not usable:
            _LOGGER.warning("No endpoint is healthy; trying all of them, a region coming back first")
        loop = asyncio.get_running_loop()
        tried: set[str] = set()
        causes: list[dict[str, str]] = []
        budget = self._budget
        budget.begin_request()
        holding_retry = False
        try:
            for number in range(1, retry.MAX_ATTEMPTS + 1):
                url = order[(number - 1) % len(order)]
                tried.add(url)
                last_chance = number == retry.MAX_ATTEMPTS
                attempt = Attempt(self._sessions[url], number, deadline, last_chance)
                try:
                    result = await op(attempt)
                except RetryableFailure as failure:
                    self._health.record_call(url, ok=False)
                    causes.append({"endpoint": url, "cause": failure.cause})
                    if holding_retry:
                        budget.end_retry()
                        holding_retry = False
                    next_url = order[number % len(order)]
                    # A move to a usable region this call has not tried is a failover, not a
                    # repeat: it adds no load to the failing region, so it neither waits nor spends
                    # the budget (see `retry.RetryBudget`). A move to a region not readmitted yet
                    # (panic, or one coming back) is charged like a repeat.
                    moving = next_url not in tried and order.index(next_url) < usable
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
                        raise with_attempts(failure.problem, causes) from None
                    if not (failure.free or moving):
                        if not budget.try_begin_retry():
                            _LOGGER.warning(
                                "Attempt %d at %s failed (%s); the retry budget is spent",
                                number, url, failure.cause,
                            )  # fmt: skip
                            raise with_attempts(failure.problem, causes) from None
                        holding_retry = True
                    _LOGGER.warning(
                        "Attempt %d at %s failed (%s); retrying at %s", number, url, failure.cause, next_url
                    )
                    if next_url != url:
                        telemetry.record_failover(
                            scope="call",
                            from_endpoint=url,
                            to_endpoint=next_url,
                            reason=failure.problem.slug,
                            upstream=self._health.upstream,
                        )
                    if wait:
                        await retry.sleep(wait)
                    continue
                except (UpstreamFailed, Unavailable) as problem:
                    if not isinstance(problem, IdentityUnavailable):
                        self._health.record_call(url, ok=False)
                    if causes:
                        raise with_attempts(problem, causes) from None
                    raise
                self._health.record_call(url, ok=True)
                return result
        finally:
            if holding_retry:
                budget.end_retry()
            budget.end_request()
        raise AssertionError("unreachable")  # pragma: no cover
