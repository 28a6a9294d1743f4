"""Endpoint health and selection: which region takes the next call.

Two signals, combined:
- **active** health from probes: unhealthy after 3 failed probes in a row, healthy again after 2
  passes. In Azure the probe runs on one instance, so this part comes from the shared snapshot;
- **passive** ejection from this instance's own live traffic: 5 transport failures or 5xx in a row
  eject an endpoint for 30 s × n (n = times ejected, capped at 300 s), with jitter.

Each endpoint reports one `state` (most serious first): `ejected` (passive ejection window),
`unhealthy` (probes failing), `degraded` (live calls or probes failing since the last success, below
the thresholds), `unknown` (no probe has run yet: nothing vouches for it), `healthy`. Routing does
not wait for a probe: an `unknown` endpoint takes traffic, and the first request starts a probe
round in the background.

Selection takes the highest-priority endpoint that is healthy and not ejected. A higher-priority
endpoint that was ejected or unhealthy gets traffic back only after 2 probes pass in a row that
started after it went bad, so a flapping region cannot pull traffic back and forth. Those same 2
passing probes also lift a passive ejection at once (Envoy's
`successful_active_health_check_uneject_host`, on by default there): a restored region does not sit
out its ejection window while its probes vouch for it. When nothing
is usable (panic) every endpoint is tried anyway, the bridge never refusing a call without trying:
those whose last probe passed first (a region coming back), then those whose last live call did not
fail, each group in priority order. Outside panic, a region coming back is a fallback after the
usable ones (`attempt_order`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .. import telemetry

_LOGGER = logging.getLogger(__name__)
UNHEALTHY_AFTER = 3
HEALTHY_AFTER = 2
EJECT_AFTER = 5
EJECT_BASE_SECONDS = 30.0
EJECT_CAP_SECONDS = 300.0
EJECT_JITTER = 0.1
EJECTION_MEMORY_SECONDS = 600.0
"""After this long without an ejection, the next one starts again at 30 s."""

EndpointState = Literal["healthy", "unknown", "degraded", "unhealthy", "ejected"]
OverallStatus = Literal["ok", "unknown", "degraded", "unavailable"]


@dataclass
class ActiveHealth:
    """What the probes say; the part every instance shares through the snapshot."""

    healthy: bool = True
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    passing_since: float | None = None
    failing_since: float | None = None
    last_probe_at: float | None = None
    last_latency_ms: float | None = None
    last_error: str | None = None
    recent_passes: list[float] = field(default_factory=list)
    """Start times of the last `HEALTHY_AFTER` passing probes of the current streak.

    A streak can begin before an ejection (probes kept passing while live calls failed), so
    `passing_since` alone cannot say whether enough passes came *after* the endpoint went bad."""

    def vouches_since(self, mark: float) -> bool:
        """Whether the current streak holds `HEALTHY_AFTER` passing probes that started after `mark`."""
        recent = self.recent_passes[-HEALTHY_AFTER:]
        return (
            self.healthy
            and self.consecutive_passes >= HEALTHY_AFTER
            and len(recent) >= HEALTHY_AFTER
            and recent[0] > mark
        )


_ACTIVE_FIELDS = frozenset(f.name for f in fields(ActiveHealth))


@dataclass
class PassiveHealth:
    """What this instance's own calls say; never shared."""

    live_failures: int = 0
    ejected_until: float = 0.0
    ejected_at: float | None = None
    times_ejected: int = 0


@dataclass
class EndpointHealth:
    url: str
    priority: int
    active: ActiveHealth
    passive: PassiveHealth

    def went_bad_at(self) -> float | None:
        marks = [mark for mark in (self.active.failing_since, self.passive.ejected_at) if mark is not None]
        return max(marks) if marks else None

    def state(self, now: float) -> EndpointState:
        """What a caller should believe about this endpoint now (see the module docstring)."""
        if now < self.passive.ejected_until:
            return "ejected"
        if not self.active.healthy:
            return "unhealthy"
        if self.passive.live_failures or self.active.consecutive_failures:
            return "degraded"
        if self.active.last_probe_at is None:
            return "unknown"
        return "healthy"

    def usable(self, now: float) -> bool:
        if not self.active.healthy or now < self.passive.ejected_until:
            return False
        bad_at = self.went_bad_at()
        if bad_at is None or self.active.last_probe_at is None:
            return True  # never went bad, or no probe runs to vouch for it: the ejection window decides
        # Failback only on passing probes that started after the endpoint went bad.
        return self.active.vouches_since(bad_at)

    def readmit_if_vouched(self, now: float) -> bool:
        """Lift a passive ejection that passing probes have vouched against; True when lifted."""
        passive = self.passive
        if now >= passive.ejected_until or passive.ejected_at is None:
            return False
        if not self.active.vouches_since(passive.ejected_at):
            return False
        passive.ejected_until = now
        passive.live_failures = 0
        return True


def _panic_rank(endpoint: EndpointHealth) -> tuple[bool, bool, int]:
    return (
        endpoint.active.consecutive_passes == 0,
        endpoint.passive.live_failures > 0,
        endpoint.priority,
    )


class HealthBoard:
    """Per-endpoint health for one process, merged with the shared snapshot when there is one."""

    def __init__(
        self, urls: list[str], *, clock: Callable[[], float] = time.time, upstream: str | None = None
    ) -> None:
        self._clock = clock
        self.upstream = upstream  # whose regions these are, for telemetry
        self.endpoints = {
            url: EndpointHealth(url, priority, ActiveHealth(), PassiveHealth())
            for priority, url in enumerate(urls)
        }
        self.snapshot_source = "in-process"
        self.snapshot_written_at: float | None = None
        """When the adopted snapshot was written; its age is computed at each read."""
        self._last_active: str | None = None
        self.failovers = 0

    # -- selection ----------------------------------------------------------------------------

    def order(self) -> tuple[list[str], bool]:
        """Endpoints to try, best first, and whether this is panic mode (nothing usable)."""
        now = self._clock()
        ranked = sorted(self.endpoints.values(), key=lambda e: e.priority)
        usable = [e.url for e in ranked if e.usable(now)]
        if usable:
            self._note_active(usable[0])
            return usable, False
        # Panic: try first what most likely answers. A region whose last probe passed is coming
        # back (one more pass readmits it); one whose last live call failed is the least likely.
        # Ordered by priority alone, every call went to the dead primary first and spent the retry
        # budget moving on, and once it was spent calls failed with the other region already back.
        return [e.url for e in sorted(ranked, key=_panic_rank)], True

    def attempt_order(self) -> tuple[list[str], int]:
        """Endpoints a call may try, best first, and how many at the front are usable (0: panic).

        After the usable ones come those whose last probe passed but which are not readmitted yet
        (one pass short, or inside an ejection the probes have not lifted yet): a call whose usable
        region fails under it may move there rather than fail. Such a move is charged to the retry
        budget, as a move in panic is; a move to a usable region is a failover and is not."""
        order, panic = self.order()
        if panic:
            return order, 0
        if len(order) == len(self.endpoints):  # every region usable: the common case, nothing to add
            return order, len(order)
        coming_back = [
            e.url
            for e in sorted(self.endpoints.values(), key=_panic_rank)
            if e.url not in order and e.active.consecutive_passes > 0
        ]
        return order + coming_back, len(order)

    def active_endpoint(self) -> str | None:
        order, panic = self.order()
        return None if panic else order[0]

    def _note_active(self, url: str) -> None:
        if self._last_active is not None and url != self._last_active:
            self.failovers += 1
            telemetry.record_failover(
                scope="active",
                from_endpoint=self._last_active,
                to_endpoint=url,
                reason="health",
                upstream=self.upstream,
            )
        self._last_active = url

    # -- signals ------------------------------------------------------------------------------

    def record_probe(
        self,
        url: str,
        *,
        ok: bool,
        latency_ms: float | None,
        error: str | None,
        started_at: float | None = None,
    ) -> None:
        """One probe's outcome. `started_at` (default: now) is what a pass is compared with: a
        probe that began before an ejection cannot vouch for the endpoint after it."""
        endpoint = self.endpoints[url]
        health = endpoint.active
        now = self._clock()
        health.last_probe_at = now
        health.last_latency_ms = latency_ms
        health.last_error = error
        if ok:
            if health.consecutive_passes == 0:
                health.passing_since = now
            health.consecutive_passes += 1
            health.consecutive_failures = 0
            health.recent_passes = [*health.recent_passes, now if started_at is None else started_at][
                -HEALTHY_AFTER:
            ]
            if not health.healthy and health.consecutive_passes >= HEALTHY_AFTER:
                health.healthy = True
        else:
            health.consecutive_failures += 1
            health.consecutive_passes = 0
            health.passing_since = None
            health.recent_passes = []
            if health.healthy and health.consecutive_failures >= UNHEALTHY_AFTER:
                health.healthy = False
                health.failing_since = now
        self._readmit(endpoint, now)

    def _readmit(self, endpoint: EndpointHealth, now: float) -> None:
        if endpoint.readmit_if_vouched(now):
            _LOGGER.warning(
                "Endpoint readmitted: %s passed %d probes after its passive ejection",
                endpoint.url,
                HEALTHY_AFTER,
            )
            telemetry.record_failover(
                scope="readmitted",
                from_endpoint=None,
                to_endpoint=endpoint.url,
                reason="probes",
                upstream=self.upstream,
            )

    def record_call(self, url: str, *, ok: bool) -> None:
        """A live call's transport-level outcome (tool errors and caller mistakes are not failures)."""
        passive = self.endpoints[url].passive
        if ok:
            passive.live_failures = 0
            return
        passive.live_failures += 1
        if passive.live_failures >= EJECT_AFTER and self._clock() >= passive.ejected_until:
            self._eject(passive)

    def _eject(self, passive: PassiveHealth) -> None:
        now = self._clock()
        if passive.ejected_at is not None and now - passive.ejected_at > EJECTION_MEMORY_SECONDS:
            passive.times_ejected = 0
        passive.times_ejected += 1
        duration = min(EJECT_CAP_SECONDS, EJECT_BASE_SECONDS * passive.times_ejected)
        duration *= 1 + random.uniform(-EJECT_JITTER, EJECT_JITTER)
        passive.ejected_at = now
        passive.ejected_until = now + duration
        passive.live_failures = 0

    # -- sharing ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The shared part: active health per endpoint, and the endpoint this view would pick."""
        return {
            "written_at": self._clock(),
            "active_endpoint": self.active_endpoint(),
            "endpoints": {url: asdict(e.active) for url, e in self.endpoints.items()},
        }

    def adopt(self, snapshot: dict[str, Any], *, source: str, age_seconds: float) -> None:
        """Take active health from a snapshot written by the instance that runs the probe."""
        now = self._clock()
        for url, active in snapshot.get("endpoints", {}).items():
            if url in self.endpoints:
                # Fields this version does not know (a newer writer) are left out, not fatal.
                known = {name: value for name, value in active.items() if name in _ACTIVE_FIELDS}
                self.endpoints[url].active = ActiveHealth(**known)
                self._readmit(self.endpoints[url], now)
        self.snapshot_source = source
        self.snapshot_written_at = self._clock() - age_seconds

    @property
    def snapshot_age_seconds(self) -> float | None:
        if self.snapshot_written_at is None:
            return None
        return round(max(0.0, self._clock() - self.snapshot_written_at), 1)

    def has_probe_results(self) -> bool:
        """Whether every endpoint has a probe result (this instance's own, or the snapshot's)."""
        return all(e.active.last_probe_at is not None for e in self.endpoints.values())

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        order, panic = self.order()
        active = None if panic else order[0]
        status: OverallStatus = "unavailable"
        if active is not None:
            state = self.endpoints[active].state(now)
            status = "ok" if state == "healthy" else "unknown" if state == "unknown" else "degraded"
        return {
            "status": status,
            "active_endpoint": active,
            "panic": panic,
            "endpoints": [
                {
                    "url": e.url,
                    "priority": e.priority,
                    "state": e.state(now),
                    "usable": e.usable(now),
                    "healthy": e.active.healthy,
                    "consecutive_failures": e.active.consecutive_failures,
                    "consecutive_passes": e.active.consecutive_passes,
                    "last_probe_at": _iso(e.active.last_probe_at),
                    "last_latency_ms": e.active.last_latency_ms,
                    "last_error": e.active.last_error,
                    "live_failures": e.passive.live_failures,
                    "ejected_until": _iso(e.passive.ejected_until) if e.passive.ejected_until > now else None,
                    "times_ejected": e.passive.times_ejected,
                }
                for e in sorted(self.endpoints.values(), key=lambda e: e.priority)
            ],
        }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
