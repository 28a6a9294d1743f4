"""Callers end to end: the devstack host playing App Service Authentication in front of the bridge.

Real bearer tokens from the devstack identity endpoint, validated by the host, turned into the
principal headers the bridge trusts because the host set `WEBSITE_AUTH_ENABLED=True`, as App
Service does; and the reader and writer curls `make run` prints, run as printed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from devstack.easyauth import DEFAULT_AUDIENCE, caller_object_id, mint_caller_token
from devstack.processes import ManagedProcess, free_port, start_host
from devstack.run import DevstackPlan, curl_examples

from .conftest import IDENTITY_HEADER, SCOPE, SIGNING_KEY, Devstack, control, schedule_arguments
from .test_caller_roles import ROLES, WRITER

FUNCTION_KEY = "callers-function-key-0123456789"


@pytest.fixture(scope="module")
def easyauth_host(devstack: Devstack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    devstack.ensure_running()
    log_dir = tmp_path_factory.mktemp("easyauth-host")
    env = {
        "SCHEDULER_ENDPOINTS": f"{devstack.east.mcp_url},{devstack.west.mcp_url}",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "SCHEDULER_TOOL_ROLES": ROLES,
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
        "AzureWebJobsStorage": "",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": "callers-master-key-0123456789",
        "DEVSTACK_EASYAUTH": "require",
        "DEVSTACK_SIGNING_KEY": SIGNING_KEY,
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    process = start_host(
        port=free_port(),
        log_dir=log_dir,
        app_dir=Path(__file__).resolve().parents[1],
        settings_file=log_dir / "no-local-settings.json",
        env=env,
    )
    try:
        yield process
    finally:
        process.stop()


def call(
    host: ManagedProcess, tool: str, *, token: str | None = None, headers: dict[str, str] | None = None
) -> httpx2.Response:
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = schedule_arguments() if tool == "scheduleConversation" else {}
    return httpx2.post(
        f"{host.url}/api/tools/{tool}",
        json=body,
        headers={"x-functions-key": FUNCTION_KEY, **headers},
        timeout=15,
    )


def scheduled(devstack: Devstack) -> int:
    return sum(
        control(s.url)["tool_calls"].get("scheduleConversation", 0) for s in (devstack.east, devstack.west)
    )


def test_tokens_decide_what_each_service_may_call(easyauth_host, stack):
    reader = mint_caller_token(SIGNING_KEY, name="status-dashboard", roles=["Scheduler.Read"])
    writer = mint_caller_token(SIGNING_KEY, name="booking-service", roles=["Scheduler.Write"])
    listed = httpx2.get(
        f"{easyauth_host.url}/api/tools",
        headers={"x-functions-key": FUNCTION_KEY, "Authorization": f"Bearer {reader}"},
        timeout=15,
    )
    refused = call(easyauth_host, "scheduleConversation", token=reader)
    booked = call(easyauth_host, "scheduleConversation", token=writer)

    assert {tool["name"] for tool in listed.json()["tools"]} == {"getConversationStatus", "listConversations"}
    assert refused.status_code == 403 and refused.json()["required_roles"] == ["Scheduler.Write"]
    assert booked.status_code == 200
    assert scheduled(stack) == 1


def test_no_token_or_a_forged_principal_gets_nowhere(easyauth_host, stack):
    reader = mint_caller_token(SIGNING_KEY, name="status-dashboard", roles=["Scheduler.Read"])
    no_token = call(easyauth_host, "scheduleConversation")
    forged_only = call(easyauth_host, "scheduleConversation", headers=WRITER)
    reader_plus_forged = call(easyauth_host, "scheduleConversation", token=reader, headers=WRITER)

    assert (no_token.status_code, forged_only.status_code) == (401, 401), "the host refuses: no token"
    assert reader_plus_forged.status_code == 403, "the forged writer principal was stripped"
    assert scheduled(stack) == 0


def test_the_reader_and_writer_curls_make_run_prints_work_as_printed(easyauth_host, stack):
    plan = DevstackPlan(
        scheduler_ports=(stack.east.port, stack.west.port), identity_port=stack.identity.port,
        host_port=easyauth_host.port, audience="unused", signing_key=SIGNING_KEY, identity_header="unused",
        scheduler_client_id="unused", scheduler_api_key="unused", function_key=FUNCTION_KEY,
        master_key="unused", easyauth_audience=DEFAULT_AUDIENCE,
    )  # fmt: skip
    commands = [line for line in curl_examples(plan) if line.startswith("curl") and "caller-token" in line]
    answers = [
        json.loads(
            subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
            ).stdout
        )
        for command in commands
    ]

    assert len(answers) == 2
    assert "conversations" in answers[0]["structuredContent"], "the reader listed"
    assert answers[1]["tool"] == "scheduleConversation" and answers[1]["structuredContent"]["conversation_id"]
    assert scheduled(stack) == 1


def test_the_host_log_has_the_audit_trail_and_no_token(easyauth_host, stack):
    token = mint_caller_token(SIGNING_KEY, name="audited-service", roles=["Scheduler.Read"])
    assert call(easyauth_host, "listConversations", token=token).status_code == 200

    deadline = time.monotonic() + 5  # the line is written one loop turn after the answer
    while True:
        log = easyauth_host.log_path.read_text(errors="replace")
        audit = [
            line for line in log.splitlines() if "mcp_bridge.audit" in line and "audited-service" in line
        ]
        if audit or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(audit) == 1
    assert f'"caller.id":"{caller_object_id("audited-service")}"' in audit[0]
    assert '"outcome":"ok"' in audit[0]
    assert token not in log and token.split(".")[1] not in log
