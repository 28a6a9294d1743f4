"""Health probes: is each endpoint alive, and does it still accept *our* calls?

Each probe has two legs, both through the shared client and token cache:
- HTTP `GET` on the endpoint plus `SCHEDULER_PING_PATH` (the original guide's `/ping`), which proves
  the region's front door is open;
- an MCP-level check through the bridge's real auth (MCP `ping` on handshake-era sessions,
  `tools/list` on 2026-07-28 ones, where ping no longer exists), so a broken token or protocol
  counts as a failure too. It also keeps every region's session warm for a failover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mcp import Client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import telemetry
from ..problems import Problem
from ..upstream.session import ConnectFailed, UpstreamSession
from ..upstream.wire import WireTrace, current_trace

if TYPE_CHECKING:
    import httpx2

    from ..config.settings import BridgeSettings
    from ..upstream.tokens import TokenProvider
    from .health import HealthBoard

_LOGGER = logging.getLogger(__name__)


class ProbeTarget(Protocol):
    """What a probe needs of the bridge (`calls.SchedulerBridge`), without depending on the call path."""

    settings: BridgeSettings
    http_client: httpx2.AsyncClient
    tokens: TokenProvider | None
    endpoints: list[UpstreamSession]
    health: HealthBoard

    async def publish_health(self) -> None: ...


@dataclass(frozen=True)
class ProbeResult:
    url: str
    ok: bool
    latency_ms: float
    error: str | None
    started_at: float
    """Wall-clock start: a probe begun before an ejection does not vouch for the endpoint after it."""


async def probe_all(bridge: ProbeTarget, *, publish: bool = True) -> list[ProbeResult]:
    """Probe every endpoint concurrently, record the results, and share them (`publish`)."""
    results = await asyncio.gather(*(_probe_traced(bridge, session) for session in bridge.endpoints))
    board = bridge.health
    before = board.active_endpoint()
    for result in results:
        board.record_probe(
            result.url,
            ok=result.ok,
            latency_ms=result.latency_ms,
            error=result.error,
            started_at=result.started_at,
        )
    after = board.active_endpoint()
    if before != after:
        _LOGGER.warning("Active endpoint changed: %s -> %s", before, after)
    if publish:
        await bridge.publish_health()
    return results


async def _probe_traced(bridge: ProbeTarget, session: UpstreamSession) -> ProbeResult:
    with telemetry.probe(session.url, upstream=bridge.settings.upstream_name) as span:
        result = await probe_endpoint(bridge, session)
        span.result(ok=result.ok, error=result.error, latency_ms=result.latency_ms)
        return result


async def probe_endpoint(bridge: ProbeTarget, session: UpstreamSession) -> ProbeResult:
    started_at = time.time()
    started = time.perf_counter()
    trace = WireTrace()
    token = current_trace.set(trace)
    error: str | None = None
    try:
        async with asyncio.timeout(bridge.settings.health_probe_timeout_seconds):
            error = await _http_ping(bridge, session.url, trace) or await _mcp_check(bridge, session)
    except TimeoutError:
        error = "timeout"
    except Problem as problem:
        error = problem.slug
    except ConnectFailed as failure:
        error = _classify(failure.trace) or "connect_failed"
    except Exception as exc:
        error = _classify(trace) or f"mcp_{type(exc).__name__}"
    finally:
        current_trace.reset(token)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ProbeResult(session.url, error is None, latency_ms, error, started_at)


async def _http_ping(bridge: ProbeTarget, url: str, trace: WireTrace) -> str | None:
    path = bridge.settings.scheduler_ping_path
    if not path:
        return None
    response = await bridge.http_client.get(url.rstrip("/") + path)
    await response.aclose()
    if response.status_code == 200:
        return None
    return _classify(trace) or f"ping_http_{response.status_code}"


async def _mcp_check(bridge: ProbeTarget, session: UpstreamSession) -> str | None:
    if bridge.tokens is not None:
        await bridge.tokens.get_token()
    client = await session.client()
    error, lost = await _mcp_round(client)
    if lost or (error is not None and session.was_lost(client)):
        # A restarted region forgot our session: reopen it and probe again, so the region can be
        # readmitted by its passing probes instead of failing on a stale session id forever.
        _LOGGER.info("Session lost at %s; the probe reconnects once", session.url)
        client = await session.reconnect(client)
        error, _ = await _mcp_round(client)
    return error


async def _mcp_round(client: Client) -> tuple[str | None, bool]:
    """One MCP-level check: the error class or None, and whether the session was lost."""
    trace = WireTrace()
    token = current_trace.set(trace)
    try:
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await client.list_tools(cache_mode="bypass")
        else:
            await client.session.send_ping()
    except Exception as exc:
        return _classify(trace) or f"mcp_{type(exc).__name__}", trace.session_lost
    finally:
        current_trace.reset(token)
    return None, False


def _classify(trace: WireTrace) -> str | None:
    if trace.identity_error is not None:
        return "identity"
    if trace.unauthorized_after_refresh or 401 in trace.statuses:
        return "unauthorized"
    if trace.failure is not None:
        return trace.failure
    if trace.statuses and trace.statuses[-1] >= 400:
        return f"http_{trace.statuses[-1]}"
    return None
