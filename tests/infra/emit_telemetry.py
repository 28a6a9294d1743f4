"""Record the bridge's telemetry into in-memory OpenTelemetry readers and print what was emitted.

    python -m tests.infra.emit_telemetry    -> {"metrics": {name: {attribute: [values]}}, "spans": [...]}

Run in a fresh process by tests/infra/test_alerts.py: OpenTelemetry's global providers can be set
once per process. Telemetry starts in "worker" mode (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY, as
the Bicep sets it), so the bridge records into providers it did not configure: here the SDK's, with
in-memory readers. The active-endpoint failover comes from the real `HealthBoard`; the rest goes
through the `mcp_bridge.telemetry` calls the bridge makes at its call sites.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EAST = "https://scheduler-east.example.com/mcp"
WEST = "https://scheduler-west.example.com/mcp"


class IdentityUnreachable(Exception):
    """Stands for whatever the identity endpoint raised: only the class name is recorded."""


def main() -> None:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    os.environ["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] = "true"

    from mcp_bridge import telemetry
    from mcp_bridge.failover.health import UNHEALTHY_AFTER, HealthBoard

    assert telemetry.configure_telemetry() == "worker"

    board = HealthBoard([EAST, WEST], upstream="scheduler")
    assert board.active_endpoint() == EAST
    for _ in range(UNHEALTHY_AFTER):
        board.record_probe(EAST, ok=False, latency_ms=5000.0, error="timeout")
    assert board.active_endpoint() == WEST  # -> the "active" failover

    telemetry.record_failover(
        scope="call", from_endpoint=EAST, to_endpoint=WEST, reason="upstream-error", upstream="scheduler"
    )
    with telemetry.probe(EAST, upstream="scheduler") as probe:
        probe.result(ok=False, error="connect", latency_ms=1.0)
    with telemetry.probe(WEST, upstream="scheduler") as probe:
        probe.result(ok=True, error=None, latency_ms=12.5)
    with telemetry.token_refresh():
        pass
    try:
        with telemetry.token_refresh():
            raise IdentityUnreachable
    except IdentityUnreachable:
        pass
    with telemetry.tool_call("scheduleConversation", upstream="scheduler") as call:
        call.finish(outcome="ok", status=200, attempts=1, endpoint=WEST, protocol_version="2025-06-18")

    emitted: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    for key, value in (point.attributes or {}).items():
                        emitted[metric.name][key].add(str(value))
                    emitted[metric.name]  # a metric without attributes still counts
    print(
        json.dumps(
            {
                "metrics": {
                    name: {k: sorted(v) for k, v in attrs.items()} for name, attrs in emitted.items()
                },
                "spans": sorted({span.name for span in spans.get_finished_spans()}),
            }
        )
    )


if __name__ == "__main__":
    main()
