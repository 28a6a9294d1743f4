"""Telemetry: free while off, and on, real spans and metrics in Azure Monitor's envelopes, no secrets.

While telemetry is off (this process: tests/conftest.py removes any connection string) the helpers
must be shared no-ops and a cold start must not import OpenTelemetry's SDK or Azure Monitor. With
telemetry on, Azure Monitor installs process-wide providers once, so those checks run in fresh
processes: tests/telemetry_process/check_*.py, each a pytest run of its own against its own
devstack and the devstack ingestion endpoint, the real exporter posting to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from devstack.processes import REPO_ROOT
from mcp_bridge import telemetry
from mcp_bridge.telemetry._names import endpoint_attributes
from mcp_bridge.telemetry._setup import decide

from .conftest import IDENTITY_HEADER, SCOPE

TELEMETRY_SETTINGS = (
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "OTEL_SDK_DISABLED",
)
HEAVY_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.instrumentation",
    "opentelemetry.semconv",
    "azure.monitor",
    "psutil",
    "mcp_bridge.telemetry._otel",
)


def clean_environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TELEMETRY_SETTINGS}
    env.update(extra)
    return env


def run_pytest_in_fresh_process(check: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/telemetry_process/{check}"],
        cwd=REPO_ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = (result.stdout + result.stderr)[-12_000:]
    assert result.returncode == 0, output
    assert " passed" in output and "failed" not in output, output


def test_self_configured_telemetry_exports_spans_and_metrics_without_secrets():
    """Connection string set: the bridge configures Azure Monitor; see check_self_configured.py."""
    run_pytest_in_fresh_process("check_self_configured.py")


def test_worker_configured_telemetry_is_used_not_configured_again():
    """The Functions worker configured Azure Monitor: the bridge only records; see the check."""
    run_pytest_in_fresh_process("check_worker_configured.py")


COLD_START = textwrap.dedent(
    """
    import asyncio, json, sys, time

    started = time.perf_counter()
    import function_app
    imported = time.perf_counter() - started

    import azure.functions as func
    from mcp_bridge import telemetry
    from mcp_bridge.failover.probe import probe_all
    from mcp_bridge.runtime import get_bridge

    async def main():
        call_tool = next(f for f in function_app.app.get_functions() if f.get_function_name() == "call_tool")
        request = func.HttpRequest(
            method="POST", url="http://127.0.0.1/api/tools/listConversations", headers={}, params={},
            route_params={"tool_name": "listConversations"}, body=b"{}",
        )
        reply = await call_tool.get_user_function()(request)
        await probe_all(await get_bridge())
        watched = tuple(sys.argv[1:])
        print(json.dumps({
            "status": reply.status_code,
            "mode": telemetry.mode(),
            "import_seconds": round(imported, 3),
            "modules": sorted(m for m in sys.modules if m.startswith(watched)),
        }))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    ("extra", "mode", "loaded"),
    [
        ({}, "off", []),
        # The check can see our recorder arrive: with the worker's flag set it must be loaded, yet
        # no SDK (the worker, which would bring it, is not here).
        ({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}, "worker", ["mcp_bridge.telemetry._otel"]),
    ],
    ids=["off", "worker-flag"],
)
def test_a_cold_start_imports_no_telemetry_machinery_while_off(stack, extra, mode, loaded):
    settings = {
        "SCHEDULER_ENDPOINTS": stack.east.mcp_url,
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "IDENTITY_ENDPOINT": stack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
    }
    result = subprocess.run(
        [sys.executable, "-c", COLD_START, *HEAVY_MODULES],
        cwd=REPO_ROOT,
        env=clean_environment(**settings, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200, "a real tool call, a token refresh and a probe ran"
    assert seen["mode"] == mode
    assert seen["modules"] == loaded


def test_while_off_every_helper_is_one_shared_noop():
    assert telemetry.configure_telemetry() == "off"
    scopes = {
        id(telemetry.span("keyvault.load")),
        id(telemetry.tool_call("x")),
        id(telemetry.probe("http://e")),
    }
    assert len(scopes) == 1 and id(telemetry.token_refresh()) in scopes
    with telemetry.tool_call("x") as call:
        call.finish(outcome="ok", status=200, attempts=1, endpoint=None, protocol_version=None)
    with pytest.raises(KeyError), telemetry.span("keyvault.load") as span:
        span.set("anything", 1)
        raise KeyError("exceptions pass through untouched")
    telemetry.record_failover(scope="call", from_endpoint="a", to_endpoint="b", reason="unavailable")
    assert telemetry.flush() is True


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, "off"),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}, "self"),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "  "}, "off"),
        ({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}, "worker"),
        (
            {
                "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "1",
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "k",
            },
            "worker",
        ),
        (
            {
                "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "false",
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "k",
            },
            "self",
        ),
        ({"OTEL_SDK_DISABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": "k"}, "off"),
        ({"OTEL_SDK_DISABLED": "TRUE", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}, "off"),
    ],
)
def test_the_mode_follows_the_app_settings(environ, mode):
    assert decide(environ) == mode


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://scheduler.example.com/mcp?code=s3cr3t#frag",
            {"server.address": "scheduler.example.com", "server.port": 443,
             "scheduler_bridge.endpoint": "https://scheduler.example.com/mcp"},
        ),
        (
            "http://user:pw@127.0.0.1:5146/mcp",
            {"server.address": "127.0.0.1", "server.port": 5146, "scheduler_bridge.endpoint": "http://127.0.0.1:5146/mcp"},
        ),
        ("http://[::1]:8080/mcp", {"server.address": "::1", "server.port": 8080, "scheduler_bridge.endpoint": "http://[::1]:8080/mcp"}),
        ("not a url", {}),
        (None, {}),
    ],
)  # fmt: skip
def test_endpoints_reach_telemetry_without_query_string_or_credentials(url, expected):
    assert endpoint_attributes(url) == expected
