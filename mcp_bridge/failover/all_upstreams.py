"""Health across every upstream: one probe round for all, one shared snapshot holding all, one view.

Each upstream keeps its own `HealthBoard` (its regions, ejections and active endpoint); this module
only puts them side by side. The shared snapshot keeps the default upstream's board at its top
level, where an instance still running the previous version reads it during a rolling deployment,
and every upstream's board (the default's included) under `upstreams`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from ..config.upstreams import DEFAULT_UPSTREAM
from .health import HealthBoard
from .probe import ProbeResult, ProbeTarget, probe_all


class UpstreamHealth(ProbeTarget, Protocol):
    """What this module needs of an upstream's bridge (`calls.SchedulerBridge`)."""

    async def read_health(self) -> dict[str, Any]: ...


async def probe_upstreams(bridges: Mapping[str, ProbeTarget]) -> dict[str, list[ProbeResult]]:
    """Probe every upstream's regions concurrently (one timer run), then publish one snapshot."""
    rounds = await asyncio.gather(*(probe_all(bridge, publish=False) for bridge in bridges.values()))
    if bridges:
        # Every bridge writes the same blob, and each writes every upstream's board: one write.
        await next(iter(bridges.values())).publish_health()
    return dict(zip(bridges, rounds, strict=True))


def combined_snapshot(boards: Mapping[str, HealthBoard]) -> dict[str, Any]:
    """The shared snapshot: the default upstream's board at the top level, every board by name."""
    default = boards.get(DEFAULT_UPSTREAM)
    snapshot = default.snapshot() if default is not None else {"endpoints": {}, "active_endpoint": None}
    if default is None:
        snapshot["written_at"] = next(iter(boards.values())).snapshot()["written_at"]
    snapshot["upstreams"] = {name: board.snapshot() for name, board in boards.items()}
    return snapshot


async def read_all(bridges: Mapping[str, UpstreamHealth | BaseException]) -> dict[str, Any]:
    """`/api/health`: every upstream's view side by side, the default's also at the top level (as
    before there were several), and an overall status naming the upstreams that are not `ok`.

    An upstream whose bridge could not be built (a Key Vault outage for its credentials) shows as
    unavailable with the problem's type; it never hides the others."""
    names = list(bridges)

    async def view(bridge: UpstreamHealth | BaseException) -> dict[str, Any]:
        if isinstance(bridge, BaseException):
            return {"status": "unavailable", "problem": getattr(bridge, "slug", type(bridge).__name__)}
        return await bridge.read_health()

    views = dict(zip(names, await asyncio.gather(*(view(bridges[name]) for name in names)), strict=True))
    statuses = {name: view["status"] for name, view in views.items()}
    default = views.get(DEFAULT_UPSTREAM, {})
    return {
        **default,
        "status": overall_status(statuses),
        "degraded_upstreams": [name for name, status in statuses.items() if status != "ok"],
        "upstreams": views,
    }


def overall_status(statuses: Mapping[str, str]) -> str:
    """`ok` when every upstream is; `unavailable` only when none can take calls (a load balancer
    must not pull an instance that still serves the others); `unknown` while some are not probed
    yet and none is worse; else `degraded`."""
    values = set(statuses.values())
    if values <= {"ok"}:
        return "ok"
    if values == {"unavailable"}:
        return "unavailable"
    if values <= {"ok", "unknown"}:
        return "unknown"
    return "degraded"
