"""The one retry policy: when a failed call may be repeated, how long to wait, and how often.

We do not use stamina or tenacity here, though both are well kept: whether to retry depends on
what the wire saw *and* on the tool's annotations, the next attempt usually goes to a different
endpoint, waits must honour a server's `Retry-After` capped by one deadline shared by all
attempts, and a process-wide retry budget must be able to say no. Expressed through either
library's hooks that is more code than the policy itself. Tests turn the waits off with
`set_testing()`, as stamina does, and can read the waits that would have happened.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque

MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 2.0
BUDGET_RATIO = 0.2
BUDGET_MINIMUM = 3
BUDGET_WINDOW_SECONDS = 10.0

_testing = False
waits_requested: list[float] = []
"""With `set_testing(True)`: every wait the policy asked for, in order."""


def set_testing(on: bool) -> None:
    """Make every retry wait instant (and record it), for fast deterministic tests."""
    global _testing
    _testing = on
    waits_requested.clear()


def backoff(attempt: int) -> float:
    """Full jitter: uniform in [0, min(cap, base × 2^(attempt-1))]."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def wait_before(attempt: int, *, retry_after: float | None, remaining: float) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when the deadline leaves no room.

    A server's `Retry-After` is honoured when the next attempt goes back to that server, capped by
    what is left of the deadline; a wait that would use up the deadline is not worth making.
    """
    wait = backoff(attempt)
    if retry_after is not None:
        wait = max(wait, retry_after)
    if wait >= remaining:
        return None
    return wait


async def sleep(seconds: float) -> None:
    if _testing:
        waits_requested.append(seconds)
        await asyncio.sleep(0)
        return
    await asyncio.sleep(seconds)


class RetryBudget:
    """Retries may be at most 20 % of requests over a sliding window (at least 3), so a total
    outage costs the Scheduler about 1.2× the traffic instead of 3×."""

    def __init__(
        self,
        *,
        ratio: float = BUDGET_RATIO,
        minimum: int = BUDGET_MINIMUM,
        window: float = BUDGET_WINDOW_SECONDS,
    ) -> None:
        self._ratio = ratio
        self._minimum = minimum
        self._window = window
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_request(self) -> None:
        now = time.monotonic()
        self._requests.append(now)
        # Trimmed on every request, not only when a retry asks: while nothing fails, nothing else
        # would, and the window would keep one entry per request for the life of the worker.
        self._forget_old(self._requests, now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is used up."""
        now = time.monotonic()
        for events in (self._requests, self._retries):
            self._forget_old(events, now)
        if len(self._retries) >= max(self._minimum, self._ratio * len(self._requests)):
            return False
        self._retries.append(now)
        return True

    def _forget_old(self, events: deque[float], now: float) -> None:
        while events and now - events[0] > self._window:
            events.popleft()
