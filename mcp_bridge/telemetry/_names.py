"""Span, metric and attribute names, and the one way an endpoint URL becomes attributes.

Where an OpenTelemetry semantic convention exists we use its name: the MCP client conventions
(open-telemetry/semantic-conventions-genai, docs/gen-ai/mcp.md: `mcp.method.name`,
`mcp.protocol.version`, `gen_ai.tool.name`, `gen_ai.operation.name`, `rpc.response.status_code`,
`mcp.client.operation.duration`) and the general ones (`error.type`, `server.address`,
`server.port`, `network.*`). They are spelled out here rather than imported from
`opentelemetry.semconv._incubating`, whose MCP names are already marked as moved and may vanish.
What no convention covers lives under `scheduler_bridge.`.

No OpenTelemetry import here: the facade may use these names while telemetry is off.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal
from urllib.parse import urlsplit

Mode = Literal["off", "worker", "self"]
"""Telemetry off; on through the Functions worker's Azure Monitor setup; on through our own."""

INSTRUMENTATION_SCOPE: Final = "scheduler_bridge"

# -- semantic conventions ---------------------------------------------------------------------
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
NETWORK_TRANSPORT: Final = "network.transport"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"

TOOLS_CALL: Final = "tools/call"
EXECUTE_TOOL: Final = "execute_tool"
OTHER: Final = "_OTHER"
"""Stands in for a tool name the Scheduler does not know: the caller chose it, so it must not
become a metric dimension or a span name (unbounded cardinality)."""

# -- the bridge's own ---------------------------------------------------------------------------
OUTCOME: Final = "scheduler_bridge.outcome"
"""`ok`, `tool_error`, a problem slug (`unavailable`, `deadline-exceeded`, ...) or `error`."""
RESPONSE_STATUS_CODE: Final = "scheduler_bridge.response.status_code"
"""The HTTP status the bridge answered its caller with (not the Scheduler's)."""
ATTEMPTS: Final = "scheduler_bridge.attempts"
ENDPOINT: Final = "scheduler_bridge.endpoint"
UPSTREAM: Final = "scheduler_bridge.upstream"  # which MCP server (MCP_UPSTREAMS): a low-cardinality name
FAILOVER_SCOPE: Final = "scheduler_bridge.failover.scope"
FAILOVER_FROM: Final = "scheduler_bridge.failover.from"
FAILOVER_TO: Final = "scheduler_bridge.failover.to"
FAILOVER_REASON: Final = "scheduler_bridge.failover.reason"
PROBE_RESULT: Final = "scheduler_bridge.probe.result"
PROBE_LATENCY_MS: Final = "scheduler_bridge.probe.latency_ms"

# -- spans ------------------------------------------------------------------------------------
SPAN_TOKEN_REFRESH: Final = "token.refresh"
SPAN_PROBE: Final = "health.probe"
SPAN_FAILOVER: Final = "endpoint.failover"
SPAN_OPERATION: Final = "operation.event"
OPERATION_EVENT: Final = "scheduler_bridge.operation.event"
OPERATION_ID: Final = "scheduler_bridge.operation.id"
OPERATION_OUTCOME: Final = "scheduler_bridge.operation.outcome"
OPERATION_TOOL: Final = "gen_ai.tool.name"

# -- metrics ----------------------------------------------------------------------------------
METRIC_TOOL_CALL_DURATION: Final = "mcp.client.operation.duration"
METRIC_FAILOVERS: Final = "scheduler_bridge.failovers"
METRIC_TOKEN_REFRESHES: Final = "scheduler_bridge.token.refreshes"
METRIC_PROBES: Final = "scheduler_bridge.probes"
METRIC_OPERATIONS: Final = "scheduler_bridge.operations"

DURATION_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""The boundaries the MCP conventions advise for `mcp.client.operation.duration`."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint_attributes(url: str | None) -> dict[str, str | int]:
    """`server.address`, `server.port` and the endpoint without user info, query or fragment.

    Settings refuse user info in endpoint URLs, but a query string could still carry a key
    (`?code=...`), and telemetry must never hold one.
    """
    return dict(_endpoint_items(url)) if url else {}


@lru_cache(maxsize=64)  # a handful of configured endpoints, looked up on every call
def _endpoint_items(url: str) -> tuple[tuple[str, str | int], ...]:
    parts = urlsplit(url)
    if not parts.hostname:
        return ()
    try:
        explicit_port = parts.port
    except ValueError:
        explicit_port = None
    port = explicit_port or _DEFAULT_PORTS.get(parts.scheme)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if explicit_port is None else f"{host}:{explicit_port}"
    attributes: dict[str, str | int] = {
        SERVER_ADDRESS: parts.hostname,
        ENDPOINT: f"{parts.scheme}://{netloc}{parts.path}",
    }
    if port is not None:
        attributes[SERVER_PORT] = port
    return tuple(attributes.items())


def safe_endpoint(url: str | None) -> str | None:
    """The endpoint URL as telemetry may show it (see `endpoint_attributes`)."""
    value = endpoint_attributes(url).get(ENDPOINT)
    return None if value is None else str(value)
