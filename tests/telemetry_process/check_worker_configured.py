"""Telemetry on through the Functions worker (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`).

The worker calls `configure_azure_monitor()` itself before it indexes the app, then makes each
invocation's trace context (the host's `traceparent`) current around the function. Here the same
two steps are done by hand, with the worker's own arguments; the bridge must then record into the
worker's providers and never configure a second pipeline. Run in a fresh process by
tests/test_telemetry.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import azure.monitor.opentelemetry
import pytest
from opentelemetry import context, trace
from opentelemetry.propagate import extract

from mcp_bridge import telemetry
from tests.telemetry_process.conftest import (
    TEST_EXPORT_OPTIONS,
    Ingestion,
    dependencies,
    metric_points,
    shut_down_providers,
)

HOST_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def worker_configured(ingestion: Ingestion) -> Iterator[list[dict]]:
    """Configure Azure Monitor as azure_functions_worker's otel.initialize_azure_monitor() does,
    then count any further configure_azure_monitor() call."""
    os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = ingestion.connection_string
    real = azure.monitor.opentelemetry.configure_azure_monitor
    real(connection_string=ingestion.connection_string, logger_name="", **TEST_EXPORT_OPTIONS)
    os.environ["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] = "true"
    later_calls: list[dict] = []

    def counting(**kwargs: object) -> None:
        later_calls.append(kwargs)
        real(**kwargs)

    azure.monitor.opentelemetry.configure_azure_monitor = counting
    try:
        yield later_calls
    finally:
        azure.monitor.opentelemetry.configure_azure_monitor = real
        shut_down_providers()


async def test_the_bridge_records_into_the_workers_pipeline_under_the_hosts_trace(
    worker_configured, configure, functions, ingestion
):
    provider = trace.get_tracer_provider()
    assert telemetry.configure_telemetry(**TEST_EXPORT_OPTIONS) == "worker"
    assert worker_configured == [], "the worker's pipeline is the only one"
    assert trace.get_tracer_provider() is provider
    await configure()
    telemetry.flush()
    ingestion.reset()

    # What the worker does around each invocation: the host's trace context becomes current.
    host = extract({"traceparent": f"00-{HOST_TRACE_ID}-{HOST_SPAN_ID}-01"})
    token = context.attach(host)
    try:
        reply = await functions.call_tool("listConversations", {})
    finally:
        context.detach(token)
    assert reply.status == 200

    assert telemetry.flush()
    envelopes = ingestion.envelopes()
    (call,) = dependencies(envelopes, "tools/call listConversations")
    assert call["tags"]["ai.operation.id"] == HOST_TRACE_ID, "one trace with the host's request"
    assert call["tags"]["ai.operation.parentId"] == HOST_SPAN_ID
    assert call["properties"]["scheduler_bridge.outcome"] == "ok"
    (point,) = metric_points(envelopes, "mcp.client.operation.duration")
    assert point["count"] == 1
