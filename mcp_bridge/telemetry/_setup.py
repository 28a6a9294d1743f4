"""Is telemetry on, and must this process configure Azure Monitor itself?

Checked in this order, once per process:

1. `OTEL_SDK_DISABLED=true` (OpenTelemetry's own switch): off, whatever else is set.
2. `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`: the Functions Python worker has already
   called `configure_azure_monitor()` before indexing the app, and makes each invocation's trace
   context current, so the bridge only records into the global providers ("worker"). Configuring a
   second time would install a second pipeline and send everything twice.
3. `APPLICATIONINSIGHTS_CONNECTION_STRING` set: the bridge calls `configure_azure_monitor()`
   itself ("self"), exporting the `mcp_bridge` logger's records unless
   `PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME` names another (the worker reads the same setting).
4. Otherwise off, and neither OpenTelemetry's SDK nor Azure Monitor is ever imported: that import
   costs hundreds of milliseconds of cold start on a Consumption plan.

A broken configuration (bad connection string, package missing) turns telemetry off with one error
in the log; it never stops a request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.settings import EnvVar
from ._names import Mode

if TYPE_CHECKING:
    from ._otel import OtelRecorder

_LOGGER = logging.getLogger(__name__)

DEFAULT_LOGGER_NAME = "mcp_bridge"
_TRUE = frozenset({"1", "true", "t", "yes", "y"})  # what the Functions worker takes for "true"
_RESOURCE_DETECTORS = "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def decide(environ: Mapping[str, str]) -> Mode:
    """Which of the four cases above applies; reads the environment only."""
    if is_true(environ.get(EnvVar.OTEL_SDK_DISABLED)):
        return "off"
    if is_true(environ.get(EnvVar.WORKER_TELEMETRY)):
        return "worker"
    if (environ.get(EnvVar.APPINSIGHTS_CONNECTION_STRING) or "").strip():
        return "self"
    return "off"


def start(environ: Mapping[str, str], options: Mapping[str, Any]) -> tuple[Mode, OtelRecorder | None]:
    """Configure what `decide` asks for; the recorder is None when telemetry stays off."""
    mode = decide(environ)
    if mode == "off":
        return mode, None
    try:
        if mode == "self":
            _configure_azure_monitor(environ, options)
        from ._otel import OtelRecorder

        recorder = OtelRecorder()
    except Exception as exc:
        # The message may quote the connection string; the class name says enough.
        _LOGGER.error("Telemetry is off: setting up Azure Monitor failed (%s)", type(exc).__name__)
        return "off", None
    _LOGGER.info(
        "Telemetry is on (%s)",
        "the Functions worker's Azure Monitor" if mode == "worker" else "Azure Monitor",
    )
    return mode, recorder


def _configure_azure_monitor(environ: Mapping[str, str], options: Mapping[str, Any]) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    # What the Functions worker does: describe the resource from the Functions environment. The
    # distro's default detectors would otherwise also try the VM metadata endpoint on cold start.
    os.environ.setdefault(_RESOURCE_DETECTORS, "azure_functions")
    arguments: dict[str, Any] = {
        "connection_string": environ[EnvVar.APPINSIGHTS_CONNECTION_STRING].strip(),
        "logger_name": environ.get(EnvVar.TELEMETRY_LOGGER_NAME, DEFAULT_LOGGER_NAME),
    }
    arguments.update(options)
    configure_azure_monitor(**arguments)
