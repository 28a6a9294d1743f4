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

MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 2.0
BUDGET_RATIO = 0.2
BUDGET_MINIMUM = 3

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
    """Envoy's retry budget: retries in flight may be at most 20 % of requests in flight, and
    always at least 3.

    It protects a failing region from extra load: it is spent only by an attempt that goes back to
    a region this call already tried (the wrap-around of a total outage, or a single region) or to
    a region that is itself unhealthy. A move to a healthy region the call has not tried yet adds no
    load to the failing one and is never refused: a budget must not turn a region's death into
    failed calls while another region is fine. Counting what is *in flight* rather than a window of
    past requests means a sequential caller can always retry once, and 100 concurrent callers get
    20 concurrent retries, not 3 per 10 s.
    """

    def __init__(self, *, ratio: float = BUDGET_RATIO, minimum: int = BUDGET_MINIMUM) -> None:
        self._ratio = ratio
        self._minimum = minimum
        self.requests_in_flight = 0
        self.retries_in_flight = 0

    def begin_request(self) -> None:
        self.requests_in_flight += 1

    def end_request(self) -> None:
        self.requests_in_flight -= 1

    def try_begin_retry(self) -> bool:
        """Take one retry from the budget until `end_retry`; False when it is used up."""
        if self.retries_in_flight >= max(self._minimum, self._ratio * self.requests_in_flight):
            return False
        self.retries_in_flight += 1
        return True

    def end_retry(self) -> None:
        self.retries_in_flight -= 1
