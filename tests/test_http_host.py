"""The same function_app.py over real HTTP, through the devstack Functions host with function keys."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from openapi_spec_validator import validate

from devstack.processes import ManagedProcess, free_port, start_host

from .conftest import IDENTITY_HEADER, SCOPE, schedule_arguments, tool_calls

FUNCTION_KEY = "host-test-function-key"
MASTER_KEY = "host-test-master-key"


@pytest.fixture(scope="module")
def host(devstack, tmp_path_factory) -> Iterator[ManagedProcess]:
    env = {
        "SCHEDULER_ENDPOINTS": f"{devstack.east.mcp_url},{devstack.west.mcp_url}",
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "HEALTH_PROBE_SCHEDULE": "*/1 * * * * *",
        "AzureWebJobsStorage": "",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": MASTER_KEY,
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    process = start_host(
        port=free_port(),
        log_dir=tmp_path_factory.mktemp("host"),
        app_dir=Path(__file__).resolve().parent.parent,
        env=env,
        warm_up=True,
    )
    yield process
    process.stop()


@pytest.fixture
def http(host) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=host.url, timeout=15) as client:
        yield client


def test_the_host_runs_the_warm_up_function_before_taking_requests(host):
    log = host.log_path.read_text()
    assert "Executed 'Functions.warmup' (Succeeded" in log
    assert "Warm-up skipped" not in log and "Warm-up incomplete" not in log


def test_schedule_and_status_over_http_with_a_function_key(http, stack):
    scheduled = http.post(
        "/api/tools/scheduleConversation", params={"code": FUNCTION_KEY}, json=schedule_arguments()
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.headers["content-type"].startswith("application/json")
    conversation_id = scheduled.json()["structuredContent"]["conversation_id"]
    status = http.get(
        f"/api/conversations/{conversation_id}/status", headers={"x-functions-key": FUNCTION_KEY}
    )
    assert status.status_code == 200
    assert status.json()["status"]["status"] == "scheduled"
    query_form = http.get(
        "/api/conversation-status", params={"conversation_id": conversation_id, "code": FUNCTION_KEY}
    )
    assert query_form.status_code == 200
    assert tool_calls(stack.east, "scheduleConversation") == 1


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_function_level_routes_need_the_key(http, stack, key):
    params = {"code": key} if key else {}
    reply = http.post("/api/tools/scheduleConversation", params=params, json=schedule_arguments())
    assert reply.status_code == 401
    assert tool_calls(stack.east, "scheduleConversation") == 0


def test_problems_travel_as_problem_json(http):
    reply = http.post("/api/tools/noSuchTool", params={"code": FUNCTION_KEY}, content=b"{}")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["instance"] == "/api/tools/noSuchTool"
    wrong_method = http.get("/api/tools/scheduleConversation", params={"code": FUNCTION_KEY})
    assert wrong_method.status_code in (404, 405)


def test_the_timer_probes_on_its_schedule(http):
    deadline = time.monotonic() + 10
    while True:
        body = http.get("/api/health", params={"code": FUNCTION_KEY}).json()
        if all(endpoint["last_probe_at"] for endpoint in body["endpoints"]):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    assert body["status"] == "ok"
    assert body["snapshot"]["source"] == "in-process"


def test_a_client_generated_from_the_live_document_calls_the_tools_with_typed_arguments(
    http, stack, tmp_path, monkeypatch
):
    """openapi-python-client (from PyPI, offline) generates a typed client from /api/openapi.json."""
    reply = http.get("/api/openapi.json", headers={"x-functions-key": FUNCTION_KEY})
    assert reply.status_code == 200, reply.text
    validate(reply.json())  # openapi-spec-validator
    (tmp_path / "openapi.json").write_bytes(reply.content)
    (tmp_path / "config.yaml").write_text("post_hooks: []\npackage_name_override: scheduler_bridge_client\n")
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
         "--config", "config.yaml", "--meta", "none", "--output-path", "scheduler_bridge_client"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module("scheduler_bridge_client")
    tools = importlib.import_module("scheduler_bridge_client.api.tools")
    models = importlib.import_module("scheduler_bridge_client.models")
    assert {
        "schedule_conversation",
        "get_conversation_status",
        "cancel_conversation",
        "list_conversations",
    } <= {module.name for module in pkgutil.iter_modules(tools.__path__)}
    schedule = importlib.import_module("scheduler_bridge_client.api.tools.schedule_conversation")
    status = importlib.import_module("scheduler_bridge_client.api.tools.get_conversation_status")

    client = client_module.Client(base_url=host_url(http) + "/api", headers={"x-functions-key": FUNCTION_KEY})
    arguments = models.ScheduleConversationArguments(
        participants=["alice@example.com", "bob@example.com"],
        start_time=datetime.now(UTC).replace(microsecond=0) + timedelta(days=2),  # a datetime, not a string
        topic="Typed from a generated client",
        duration_minutes=45,
    )
    key = str(uuid.uuid4())
    answer = schedule.sync_detailed(client=client, body=arguments, idempotency_key=key)
    assert answer.status_code == 200, answer.content
    booked = answer.parsed
    assert isinstance(booked, models.ScheduleConversationResult)
    assert booked.structured_content.duration_minutes == 45
    conversation_id = booked.structured_content.conversation_id
    assert tool_calls(stack.east, "scheduleConversation") == 1

    again = schedule.sync_detailed(client=client, body=arguments, idempotency_key=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.structured_content.conversation_id == conversation_id
    assert tool_calls(stack.east, "scheduleConversation") == 1

    looked_up = status.sync(
        client=client, body=models.GetConversationStatusArguments(conversation_id=conversation_id)
    )
    assert looked_up.structured_content.status.value == "scheduled"
    refused = schedule.sync(client=client, body=models.ScheduleConversationArguments(
        participants=["alice@example.com"], start_time=arguments.start_time, topic="t", duration_minutes=1,
    ))  # fmt: skip
    assert isinstance(refused, models.ProblemDetails) and refused.status == 400
    assert tool_calls(stack.east, "scheduleConversation") == 1


def host_url(http: httpx2.Client) -> str:
    return str(http.base_url).rstrip("/")


def test_a_generated_client_starts_an_operation_and_polls_it_to_a_typed_result(http, tmp_path, monkeypatch):
    """openapi-python-client: a task tool's 202 is typed (its monitor), `get_operation` polls it."""
    reply = http.get("/api/openapi.json", headers={"x-functions-key": FUNCTION_KEY})
    assert reply.status_code == 200, reply.text
    validate(reply.json())
    (tmp_path / "openapi.json").write_bytes(reply.content)
    (tmp_path / "config.yaml").write_text("post_hooks: []\npackage_name_override: operations_client\n")
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
         "--config", "config.yaml", "--meta", "none", "--output-path", "operations_client"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module("operations_client")
    models = importlib.import_module("operations_client.models")
    find = importlib.import_module("operations_client.api.tools.find_common_slot")
    get_operation = importlib.import_module("operations_client.api.default.get_operation")
    client = client_module.Client(base_url=host_url(http) + "/api", headers={"x-functions-key": FUNCTION_KEY})

    started = find.sync_detailed(
        client=client,
        body=models.FindCommonSlotArguments(
            calendars=["ana@contoso.example", "bo@contoso.example"],
            scan_seconds=1.0,
            window_start=datetime(2030, 1, 7, tzinfo=UTC),
        ),
        prefer="respond-async",
    )

    assert started.status_code == 202, started.content
    assert isinstance(started.parsed, models.FindCommonSlotOperation)
    operation_id = started.headers["Operation-Location"].rsplit("/", 1)[1]
    assert started.parsed.id == operation_id
    deadline = time.monotonic() + 20
    monitor = get_operation.sync(operation_id=operation_id, client=client)
    while monitor.status.value in ("NotStarted", "Running") and time.monotonic() < deadline:
        time.sleep(0.5)
        monitor = get_operation.sync(operation_id=operation_id, client=client)
    assert isinstance(monitor, models.OperationMonitor)
    assert monitor.status.value == "Succeeded"
    assert monitor.result.structured_content["calendars_checked"] == 2
    missing = get_operation.sync(operation_id="op_" + "x" * 32, client=client)
    assert isinstance(missing, models.ProblemDetails) and missing.status == 404
