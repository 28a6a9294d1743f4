"""Traces and metrics for Azure Monitor that cost the hot path nothing while they are off.

`configure_telemetry()` runs once per process, on first use (`runtime.get_bridge`). Telemetry is on
when the Functions worker already set Azure Monitor up (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`)
or when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set (the bridge configures it; see `_setup`).
While it is off, every helper below returns one shared do-nothing object: no OpenTelemetry import,
no allocation, a few attribute lookups per call.

Call sites only ever use this module:

    with telemetry.tool_call(name) as call:          # bridge.call_tool
        ...
        call.finish(outcome="ok", status=200, attempts=1, endpoint=url, protocol_version=v)

    with telemetry.span("keyvault.load", attributes={"server.address": vault_host}) as span:
        secrets = await load_secrets()
        span.set("scheduler_bridge.keyvault.secrets", len(secrets))

An exception leaving a `with` block marks its span failed with `error.type` = the exception's class
name; its message is never recorded (messages can quote URLs, tokens or user input).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from ._names import Mode

__all__ = [
    "Mode",
    "ProbeScope",
    "SpanScope",
    "ToolCallScope",
    "configure_telemetry",
    "flush",
    "mode",
    "probe",
    "record_failover",
    "record_operation",
    "span",
    "token_refresh",
    "tool_call",
]

AttributeValue = str | bool | int | float


class SpanScope(Protocol):
    def __enter__(self) -> SpanScope: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def set(self, key: str, value: AttributeValue | None) -> None:
        """Add an attribute (None is skipped). Never pass a secret, a header or a request body."""


class ToolCallScope(SpanScope, Protocol):
    def __enter__(self) -> ToolCallScope: ...

    def finish(
        self, *, outcome: str, status: int, attempts: int, endpoint: str | None, protocol_version: str | None
    ) -> None:
        """How the call ended: outcome (`ok`, `tool_error`, a problem slug), the HTTP status answered."""


class ProbeScope(SpanScope, Protocol):
    def __enter__(self) -> ProbeScope: ...

    def result(self, *, ok: bool, error: str | None, latency_ms: float | None) -> None:
        """The probe's verdict; `error` is its low-cardinality class (`timeout`, `http_503`, ...)."""


class _Noop:
    """Every scope at once, doing nothing: the whole cost of telemetry while it is off."""

    __slots__ = ()

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def set(self, key: str, value: object) -> None:
        return None

    def finish(self, **_ignored: object) -> None:
        return None

    def result(self, **_ignored: object) -> None:
        return None


_NOOP = _Noop()


class _Recorder(Protocol):
    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None) -> SpanScope: ...
    def tool_call(self, tool: str, upstream: str | None) -> ToolCallScope: ...
    def token_refresh(self) -> SpanScope: ...
    def probe(self, endpoint: str, upstream: str | None) -> ProbeScope: ...
    def record_failover(
        self, *, scope: str, from_endpoint: str | None, to_endpoint: str | None, reason: str
    ) -> None: ...
    def record_operation(
        self, *, event: str, operation: str, tool: str, outcome: str, caller_id: str | None
    ) -> None: ...
    def flush(self, timeout_seconds: float) -> bool: ...


class _Off:
    __slots__ = ()

    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None) -> _Noop:
        return _NOOP

    def tool_call(self, tool: str, upstream: str | None) -> _Noop:
        return _NOOP

    def token_refresh(self) -> _Noop:
        return _NOOP

    def probe(self, endpoint: str, upstream: str | None) -> _Noop:
        return _NOOP

    def record_failover(self, **_ignored: object) -> None:
        return None

    def record_operation(self, **_ignored: object) -> None:
        return None

    def flush(self, timeout_seconds: float) -> bool:
        return True


_recorder: _Recorder = _Off()
_mode: Mode | None = None
_configuring = threading.Lock()


def configure_telemetry(*, connection_string: str | None = None, **azure_monitor_options: Any) -> Mode:
    """Turn telemetry on if the environment asks for it; only the first call in a process acts.

    `connection_string` is the setting's value as the bridge resolved it (it may come from the
    MCP client configuration file or a Key Vault reference); the environment variable wins when both exist.
    Other keyword arguments go to `configure_azure_monitor()` when the bridge configures it itself;
    tests pass `disable_offline_storage=True, enable_live_metrics=False`. Returns the mode in force.
    """
    global _recorder, _mode
    if _mode is not None:
        return _mode
    with _configuring:
        if _mode is None:
            from ._setup import start

            environ: dict[str, str] = dict(os.environ)
            if connection_string and not environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
                environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = connection_string
            mode, recorder = start(environ, azure_monitor_options)
            if recorder is not None:
                _recorder = recorder
            _mode = mode
    return _mode


def mode() -> Mode:
    """`off`, `worker` (the Functions worker configured Azure Monitor) or `self`."""
    return _mode or "off"


def span(name: str, *, attributes: Mapping[str, AttributeValue] | None = None) -> SpanScope:
    """An INTERNAL span around a `with` block, e.g. `span("keyvault.load")`."""
    return _recorder.span(name, attributes)


def tool_call(tool: str, *, upstream: str | None = None) -> ToolCallScope:
    """The CLIENT span `tools/call {tool}` and the `mcp.client.operation.duration` histogram, both
    with `scheduler_bridge.upstream` (which MCP server) when given."""
    return _recorder.tool_call(tool, upstream)


def token_refresh() -> SpanScope:
    """The `token.refresh` span and the refresh counter, around one identity request."""
    return _recorder.token_refresh()


def probe(endpoint: str, *, upstream: str | None = None) -> ProbeScope:
    """The `health.probe` span and the probe counter for one endpoint (and its upstream)."""
    return _recorder.probe(endpoint, upstream)


def record_failover(
    *,
    scope: str,
    from_endpoint: str | None,
    to_endpoint: str | None,
    reason: str,
    upstream: str | None = None,
) -> None:
    """A call moved to another endpoint (`scope="call"`) or the active endpoint changed (`"active"`)."""
    _recorder.record_failover(
        scope=scope, from_endpoint=from_endpoint, to_endpoint=to_endpoint, reason=reason, upstream=upstream
    )


def record_operation(*, event: str, operation: str, tool: str, outcome: str, caller_id: str | None) -> None:
    """A long-running operation `started`, `polled`, `finished` or `canceled`: a span and a count.
    `operation` is the id's digest prefix (operations.ids.short), never the id itself."""
    _recorder.record_operation(
        event=event, operation=operation, tool=tool, outcome=outcome, caller_id=caller_id
    )


def flush(timeout_seconds: float = 10.0) -> bool:
    """Export everything buffered now; True when every provider finished in time."""
    return _recorder.flush(timeout_seconds)
