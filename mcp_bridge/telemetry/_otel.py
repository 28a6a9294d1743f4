"""The recorder used when telemetry is on: spans and metrics through the global OpenTelemetry providers.

Imported only by `_setup` once telemetry is on, so a process that exports nothing never creates an
instrument. Only the OpenTelemetry *API* is used here; which SDK pipeline sits behind the global
providers (ours from `configure_azure_monitor()`, or the Functions worker's) is `_setup`'s business.

Telemetry must never break a call: a failure while recording is logged at debug level and dropped.
Nothing recorded here comes from request bodies, headers or credentials: tool names, endpoints
(without query strings), outcomes, counts and exception class names only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import TracebackType

from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import _names as n

_LOGGER = logging.getLogger(__name__)

_MAX_TOOL_NAME = 128


class OtelRecorder:
    """Creates the bridge's instruments once and hands out span scopes."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(n.INSTRUMENTATION_SCOPE)
        meter = metrics.get_meter(n.INSTRUMENTATION_SCOPE)
        self.tool_call_duration = meter.create_histogram(
            n.METRIC_TOOL_CALL_DURATION,
            unit="s",
            description="One bridge tool call as its caller saw it, retries and failovers included.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS),
        )
        self.failovers = meter.create_counter(
            n.METRIC_FAILOVERS,
            unit="{failover}",
            description="A call moved to another endpoint, or the active endpoint changed.",
        )
        self.token_refreshes = meter.create_counter(
            n.METRIC_TOKEN_REFRESHES, unit="{refresh}", description="Managed identity token refreshes."
        )
        self.probes = meter.create_counter(
            n.METRIC_PROBES, unit="{probe}", description="Health probes by endpoint and result."
        )
        self.operations = meter.create_counter(
            n.METRIC_OPERATIONS,
            unit="{event}",
            description="Long-running operations started, polled and finished, by tool and outcome.",
        )

    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None) -> _Span:
        return _Span(self, name, SpanKind.INTERNAL, attributes)

    def tool_call(self, tool: str, upstream: str | None) -> _ToolCall:
        return _ToolCall(self, tool, upstream)

    def token_refresh(self) -> _TokenRefresh:
        return _TokenRefresh(self, n.SPAN_TOKEN_REFRESH, SpanKind.INTERNAL, None)

    def probe(self, endpoint: str, upstream: str | None) -> _Probe:
        return _Probe(self, endpoint, upstream)

    def record_failover(
        self,
        *,
        scope: str,
        from_endpoint: str | None,
        to_endpoint: str | None,
        reason: str,
        upstream: str | None = None,
    ) -> None:
        try:
            attributes = _present(
                {
                    n.UPSTREAM: upstream,
                    n.FAILOVER_SCOPE: scope,
                    n.FAILOVER_FROM: n.safe_endpoint(from_endpoint),
                    n.FAILOVER_TO: n.safe_endpoint(to_endpoint),
                    n.FAILOVER_REASON: reason,
                }
            )
            # A copy for the span: samplers may add their own keys to the mapping they are given.
            self.tracer.start_span(n.SPAN_FAILOVER, kind=SpanKind.INTERNAL, attributes=dict(attributes)).end()
            self.failovers.add(1, attributes)
        except Exception:
            _LOGGER.debug("Recording a failover failed", exc_info=True)

    def record_operation(
        self, *, event: str, operation: str, tool: str, outcome: str, caller_id: str | None
    ) -> None:
        try:
            attributes = _present(
                {
                    n.OPERATION_EVENT: event,
                    n.OPERATION_TOOL: tool[:_MAX_TOOL_NAME],
                    n.OPERATION_OUTCOME: outcome,
                }
            )
            span_attributes = {**attributes, n.OPERATION_ID: operation}
            if caller_id:
                span_attributes["enduser.id"] = caller_id
            self.tracer.start_span(n.SPAN_OPERATION, kind=SpanKind.INTERNAL, attributes=span_attributes).end()
            self.operations.add(1, attributes)  # no id or caller on the metric: bounded cardinality
        except Exception:
            _LOGGER.debug("Recording an operation event failed", exc_info=True)

    def flush(self, timeout_seconds: float) -> bool:
        """Export what is buffered now (spans, metrics, logs) instead of at the next interval."""
        from opentelemetry import _logs

        millis = int(timeout_seconds * 1000)
        done = True
        providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
        for provider in providers:
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                done = bool(force_flush(millis)) and done
        return done


class _Span:
    """A span made current for the `with` block; an exception marks it failed by class name only."""

    __slots__ = ("_kind", "_name", "_recorder", "_span", "_start_attributes", "_token")

    def __init__(
        self,
        recorder: OtelRecorder,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue] | None,
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._kind = kind
        self._start_attributes = attributes
        self._span: trace.Span = trace.INVALID_SPAN
        self._token: object | None = None

    def __enter__(self) -> _Span:
        try:
            self._span = self._recorder.tracer.start_span(
                self._name, kind=self._kind, attributes=_present(self._start_attributes or {})
            )
            self._token = context.attach(trace.set_span_in_context(self._span))
        except Exception:
            _LOGGER.debug("Starting span %s failed", self._name, exc_info=True)
        return self

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self._span.set_attribute(key, value)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._close(exc)
        except Exception:
            _LOGGER.debug("Closing span %s failed", self._name, exc_info=True)
        finally:
            if self._token is not None:
                context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()

    def _close(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._fail(type(exc).__qualname__)

    def _fail(self, error_type: str, description: str | None = None) -> None:
        self._span.set_attribute(n.ERROR_TYPE, error_type)
        self._span.set_status(Status(StatusCode.ERROR, description))


class _ToolCall(_Span):
    """`tools/call {tool}`, a CLIENT span covering every attempt, plus the duration histogram."""

    __slots__ = (
        "_attempts",
        "_endpoint",
        "_outcome",
        "_protocol_version",
        "_started",
        "_status",
        "_tool",
        "_upstream",
    )

    def __init__(self, recorder: OtelRecorder, tool: str, upstream: str | None = None) -> None:
        self._tool = tool[:_MAX_TOOL_NAME]
        self._upstream = upstream
        super().__init__(
            recorder,
            f"{n.TOOLS_CALL} {self._tool}",
            SpanKind.CLIENT,
            {
                n.MCP_METHOD_NAME: n.TOOLS_CALL,
                n.GEN_AI_OPERATION_NAME: n.EXECUTE_TOOL,
                n.GEN_AI_TOOL_NAME: self._tool,
                n.NETWORK_TRANSPORT: "tcp",
                n.NETWORK_PROTOCOL_NAME: "http",
                **({n.UPSTREAM: upstream} if upstream is not None else {}),
            },
        )
        self._outcome = "error"
        self._status = 500
        self._attempts = 0
        self._endpoint: str | None = None
        self._protocol_version: str | None = None
        self._started = time.perf_counter()

    def finish(
        self, *, outcome: str, status: int, attempts: int, endpoint: str | None, protocol_version: str | None
    ) -> None:
        self._outcome, self._status, self._attempts = outcome, status, attempts
        self._endpoint, self._protocol_version = endpoint, protocol_version

    def _close(self, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self._started
        endpoint = n.endpoint_attributes(self._endpoint)
        error_type: str | None = None
        jsonrpc_code = _jsonrpc_code(exc)
        if jsonrpc_code is not None:
            error_type = jsonrpc_code  # the conventions' choice when a JSON-RPC error came back
            self._span.set_attribute(n.RPC_RESPONSE_STATUS_CODE, jsonrpc_code)
        elif self._outcome == "error" and exc is not None:
            error_type = type(exc).__qualname__
        elif self._outcome != "ok":
            error_type = self._outcome
        tool = self._tool
        if self._outcome == "tool-not-found":
            tool = n.OTHER
            self._span.update_name(n.TOOLS_CALL)
        shared = _present(
            {
                **endpoint,
                n.UPSTREAM: self._upstream,
                n.MCP_PROTOCOL_VERSION: self._protocol_version,
                n.OUTCOME: self._outcome,
                n.ERROR_TYPE: error_type,
            }
        )
        self._span.set_attributes(shared)
        self._span.set_attributes({n.RESPONSE_STATUS_CODE: self._status, n.ATTEMPTS: self._attempts})
        if error_type is not None:
            self._span.set_status(Status(StatusCode.ERROR, self._outcome))
        shared.pop(n.ENDPOINT, None)  # server.address and server.port already say it
        self._recorder.tool_call_duration.record(
            duration,
            {
                **shared,
                n.MCP_METHOD_NAME: n.TOOLS_CALL,
                n.GEN_AI_OPERATION_NAME: n.EXECUTE_TOOL,
                n.GEN_AI_TOOL_NAME: tool,
            },
        )


class _TokenRefresh(_Span):
    """`token.refresh` around one identity request, and the refresh counter."""

    __slots__ = ()

    def _close(self, exc: BaseException | None) -> None:
        attributes: dict[str, AttributeValue] = {n.OUTCOME: "ok" if exc is None else "error"}
        if exc is not None:
            attributes[n.ERROR_TYPE] = type(exc).__qualname__
            self._fail(type(exc).__qualname__)
        self._recorder.token_refreshes.add(1, attributes)


class _Probe(_Span):
    """`health.probe` for one endpoint, and the probe counter by endpoint and result."""

    __slots__ = ("_latency_ms", "_result")

    def __init__(self, recorder: OtelRecorder, endpoint: str, upstream: str | None = None) -> None:
        attributes = n.endpoint_attributes(endpoint)
        if upstream is not None:
            attributes = {**attributes, n.UPSTREAM: upstream}
        super().__init__(recorder, n.SPAN_PROBE, SpanKind.INTERNAL, attributes)
        self._result: str | None = None
        self._latency_ms: float | None = None

    def result(self, *, ok: bool, error: str | None, latency_ms: float | None) -> None:
        self._result = "ok" if ok else (error or "error")
        self._latency_ms = latency_ms

    def _close(self, exc: BaseException | None) -> None:
        result = self._result or (type(exc).__qualname__ if exc is not None else "error")
        self.set(n.PROBE_RESULT, result)
        self.set(n.PROBE_LATENCY_MS, self._latency_ms)
        if result != "ok":
            self._fail(result)
        attributes = dict(self._start_attributes or {})
        attributes[n.PROBE_RESULT] = result
        self._recorder.probes.add(1, attributes)


def _jsonrpc_code(exc: BaseException | None) -> str | None:
    extensions = getattr(exc, "extensions", None)
    code = extensions.get("jsonrpc_code") if isinstance(extensions, dict) else None
    return None if code is None else str(code)


def _present(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if value is not None}
