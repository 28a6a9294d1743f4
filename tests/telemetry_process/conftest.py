"""Fixtures for the telemetry checks, which run in a process of their own (see tests/test_telemetry.py).

Azure Monitor installs process-wide OpenTelemetry providers once and for all, so these checks get a
fresh Python process each, started by tests/test_telemetry.py (or by hand:
`python -m pytest tests/telemetry_process/check_self_configured.py`). Files here are named
`check_*.py` so the main test run never collects them into its own process.

Everything the exporter sends goes to the devstack ingestion endpoint on 127.0.0.1. The SDK's own
phone-home traffic (statsbeat, the OneSettings control plane, live metrics, the VM metadata
resource detector) is switched off, and `loopback_only` proves that nothing dialled elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from devstack.processes import IngestionProcess, free_port, start_ingestion

# Read by the exporter at run time, not only at start-up: set for the whole process.
QUIET_EXPORTER = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_functions",
}
TEST_EXPORT_OPTIONS = {"disable_offline_storage": True, "enable_live_metrics": False, "sampling_ratio": 1.0}
"""Nothing lingers on disk, nothing polls a live-metrics service, and every trace is kept."""


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(QUIET_EXPORTER)


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[list[str]]:
    """Refuse, and afterwards report, any connection or name lookup that leaves 127.0.0.0/8."""
    refused: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def is_local(host: object) -> bool:
        if host in ("localhost", None, ""):
            return True
        try:
            return ipaddress.ip_address(str(host)).is_loopback
        except ValueError:
            return False

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            refused.append(f"connect {address[0]}")
            raise ConnectionRefusedError(f"tests allow loopback only, not {address[0]}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local(host.decode() if isinstance(host, bytes) else host):
            refused.append(f"resolve {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"tests allow loopback only, not {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield refused
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo
    assert refused == [], f"something tried to leave the machine: {refused}"


@dataclass
class Ingestion:
    """The devstack ingestion endpoint and what the real exporter posted to it."""

    process: IngestionProcess

    @property
    def connection_string(self) -> str:
        return self.process.connection_string

    def reset(self) -> None:
        httpx2.post(self.process.url + "/_devstack/reset", timeout=5).raise_for_status()

    def envelopes(self, base_type: str | None = None) -> list[dict[str, Any]]:
        params = {"base_type": base_type} if base_type else {}
        response = httpx2.get(self.process.url + "/_devstack/envelopes", params=params, timeout=5)
        response.raise_for_status()
        return response.json()

    def text(self) -> str:
        """Every envelope as JSON text, for "this must not appear anywhere" checks."""
        return json.dumps(self.envelopes())


@pytest.fixture(scope="session")
def ingestion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestion]:
    process = start_ingestion(port=free_port(), log_dir=tmp_path_factory.mktemp("ingestion"))
    try:
        yield Ingestion(process)
    finally:
        process.stop()


def shut_down_providers() -> None:
    """Export what is left and stop the exporters while the ingestion endpoint is still up."""
    from opentelemetry import _logs, metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()):
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def dependencies(envelopes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The RemoteDependencyData items (CLIENT and INTERNAL spans) with this name."""
    return [
        e["data"]["baseData"] | {"tags": e["tags"]}
        for e in envelopes
        if e["data"]["baseType"] == "RemoteDependencyData" and e["data"]["baseData"]["name"] == name
    ]


def metric_points(envelopes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Each exported point of the metric `name`: its aggregate (value, count) and its properties."""
    points = []
    for envelope in envelopes:
        data = envelope["data"]
        if data["baseType"] != "MetricData":
            continue
        for metric in data["baseData"]["metrics"]:
            if metric["name"] == name:
                points.append(metric | {"properties": data["baseData"].get("properties", {})})
    return points
