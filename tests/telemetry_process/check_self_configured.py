"""Telemetry on through `APPLICATIONINSIGHTS_CONNECTION_STRING`: the bridge configures Azure Monitor.

Real tool calls through the functions, the real exporter posting to the devstack ingestion
endpoint, and assertions on the envelopes it received (what Application Insights would store).
Run in a fresh process by tests/test_telemetry.py.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from mcp_bridge import telemetry
from mcp_bridge.failover import retry
from mcp_bridge.failover.probe import probe_all
from mcp_bridge.runtime import get_bridge
from tests.conftest import API_KEY, IDENTITY_HEADER, SIGNING_KEY, control, schedule_arguments
from tests.telemetry_process.conftest import (
    TEST_EXPORT_OPTIONS,
    Ingestion,
    dependencies,
    metric_points,
    shut_down_providers,
)
from tests.test_secrets import exercise

DURATION = "mcp.client.operation.duration"


@pytest.fixture(scope="module", autouse=True)
def telemetry_on(ingestion: Ingestion) -> Iterator[None]:
    os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = ingestion.connection_string
    assert telemetry.configure_telemetry(**TEST_EXPORT_OPTIONS) == "self"
    assert telemetry.configure_telemetry() == "self", "a second call changes nothing"
    yield
    shut_down_providers()


@pytest.fixture(autouse=True)
def clean_slate(ingestion: Ingestion) -> Iterator[None]:
    """Each test sees only its own telemetry: flush what earlier tests left, then forget it."""
    retry.set_testing(True)
    telemetry.flush()
    ingestion.reset()
    yield
    retry.set_testing(False)


def exported(ingestion: Ingestion) -> list[dict[str, Any]]:
    assert telemetry.flush(), "every provider flushed in time"
    return ingestion.envelopes()


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


async def test_each_tool_call_is_one_client_span_with_mcp_attributes(configure, functions, stack, ingestion):
    await configure()
    assert (await functions.call_tool("scheduleConversation", schedule_arguments())).status == 200

    envelopes = exported(ingestion)
    span = only(dependencies(envelopes, "tools/call scheduleConversation"))
    assert span["success"] is True
    # server.*, network.* and error.type are "standard" to the exporter: it keeps them out of the
    # properties (and, for a non-HTTP dependency, drops them), hence scheduler_bridge.endpoint.
    assert span["properties"] == {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "scheduleConversation",
        "scheduler_bridge.upstream": "scheduler",
        "mcp.protocol.version": "2026-07-28",
        "scheduler_bridge.endpoint": stack.east.mcp_url,
        "scheduler_bridge.outcome": "ok",
        "scheduler_bridge.attempts": "1",
        "scheduler_bridge.response.status_code": "200",
    }
    # The MCP SDK's own client span for the JSON-RPC request sits under ours, in the same trace.
    sdk = only(dependencies(envelopes, "MCP send tools/call scheduleConversation"))
    assert sdk["tags"]["ai.operation.id"] == span["tags"]["ai.operation.id"]
    assert sdk["tags"]["ai.operation.parentId"] == span["id"]


async def test_outcomes_set_span_status_error_type_and_the_status_answered(
    configure, functions, stack, ingestion
):
    await configure(endpoints=[stack.legacy.mcp_url])
    replies = {
        "invalid": await functions.call_tool("scheduleConversation", {"participants": []}),
        "tool_error": await functions.status("conv-missing"),
        "unknown": await functions.call_tool("no-such-tool-4f1e", {}),
    }
    assert {k: r.status for k, r in replies.items()} == {"invalid": 400, "tool_error": 422, "unknown": 404}

    envelopes = exported(ingestion)
    invalid = only(dependencies(envelopes, "tools/call scheduleConversation"))
    assert invalid["success"] is False
    assert invalid["properties"]["scheduler_bridge.outcome"] == "invalid-arguments"
    assert invalid["properties"]["scheduler_bridge.response.status_code"] == "400"
    tool_error = only(dependencies(envelopes, "tools/call getConversationStatus"))
    assert tool_error["success"] is False
    assert tool_error["properties"]["scheduler_bridge.outcome"] == "tool_error"
    assert tool_error["properties"]["scheduler_bridge.response.status_code"] == "422"
    assert tool_error["properties"]["mcp.protocol.version"] != "2026-07-28", "the handshake era"
    # A name the Scheduler does not know was chosen by the caller: no span name, no metric dimension.
    unknown = only(dependencies(envelopes, "tools/call"))
    assert unknown["properties"]["gen_ai.tool.name"] == "no-such-tool-4f1e"
    assert unknown["properties"]["scheduler_bridge.outcome"] == "tool-not-found"

    points = metric_points(envelopes, DURATION)
    by_outcome = {p["properties"]["scheduler_bridge.outcome"]: p for p in points}
    assert set(by_outcome) == {"invalid-arguments", "tool_error", "tool-not-found"}
    assert (
        by_outcome["tool_error"]["properties"].items()
        >= {
            "gen_ai.tool.name": "getConversationStatus",
            "error.type": "tool_error",
            "mcp.method.name": "tools/call",
            "server.address": "127.0.0.1",
            "server.port": str(stack.legacy.port),
        }.items()
    )
    assert by_outcome["invalid-arguments"]["properties"]["error.type"] == "invalid-arguments"
    assert by_outcome["tool-not-found"]["properties"]["gen_ai.tool.name"] == "_OTHER"
    assert all(p["count"] == 1 and 0 < p["value"] < 10 for p in points), points


async def test_the_duration_histogram_counts_calls_by_tool_and_outcome(configure, functions, ingestion):
    await configure()
    for _ in range(3):
        assert (await functions.call_tool("listConversations", {})).status == 200
    assert (await functions.status("conv-missing")).status == 422

    points = metric_points(exported(ingestion), DURATION)
    counts = {
        (p["properties"]["gen_ai.tool.name"], p["properties"]["scheduler_bridge.outcome"]): p["count"]
        for p in points
    }
    assert counts == {("listConversations", "ok"): 3, ("getConversationStatus", "tool_error"): 1}
    ok = next(p for p in points if p["properties"]["scheduler_bridge.outcome"] == "ok")
    assert "error.type" not in ok["properties"]
    assert ok["properties"]["mcp.protocol.version"] == "2026-07-28"


async def test_a_call_moving_to_another_endpoint_is_a_failover_span_and_count(
    configure, functions, stack, ingestion
):
    await configure()
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 503, "times": 1, "tools": ["listConversations"]},
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200 and reply.json["endpoint"] == stack.west.mcp_url

    envelopes = exported(ingestion)
    call = only(dependencies(envelopes, "tools/call listConversations"))
    assert call["properties"]["scheduler_bridge.attempts"] == "2"
    assert call["properties"]["scheduler_bridge.endpoint"] == stack.west.mcp_url
    failover = only(dependencies(envelopes, "endpoint.failover"))
    assert failover["type"] == "InProc"
    assert failover["tags"]["ai.operation.parentId"] == call["id"], "inside the call that moved"
    expected = {
        "scheduler_bridge.upstream": "scheduler",
        "scheduler_bridge.failover.scope": "call",
        "scheduler_bridge.failover.from": stack.east.mcp_url,
        "scheduler_bridge.failover.to": stack.west.mcp_url,
        "scheduler_bridge.failover.reason": "upstream-error",
    }
    assert failover["properties"] == expected
    count = only(metric_points(envelopes, "scheduler_bridge.failovers"))
    assert (count["value"], count["properties"]) == (1, expected)


async def test_probes_and_an_active_endpoint_change_are_traced_and_counted(configure, stack, ingestion):
    await configure()
    bridge = await get_bridge()
    stack.east.kill()
    for _ in range(3):  # unhealthy after three failed probes
        await probe_all(bridge)
    assert bridge.health.active_endpoint() == stack.west.mcp_url

    envelopes = exported(ingestion)
    probes = dependencies(envelopes, "health.probe")
    assert len(probes) == 6
    east = [p for p in probes if p["properties"]["scheduler_bridge.endpoint"] == stack.east.mcp_url]
    assert {p["properties"]["scheduler_bridge.probe.result"] for p in east} == {"connect"}
    assert not any(p["success"] for p in east)
    assert all(p["success"] for p in probes if p not in east)
    counts = {
        (p["properties"]["server.port"], p["properties"]["scheduler_bridge.probe.result"]): p["value"]
        for p in metric_points(envelopes, "scheduler_bridge.probes")
    }
    assert counts == {(str(stack.east.port), "connect"): 3, (str(stack.west.port), "ok"): 3}
    change = only(dependencies(envelopes, "endpoint.failover"))
    assert change["properties"] == {
        "scheduler_bridge.upstream": "scheduler",
        "scheduler_bridge.failover.scope": "active",
        "scheduler_bridge.failover.from": stack.east.mcp_url,
        "scheduler_bridge.failover.to": stack.west.mcp_url,
        "scheduler_bridge.failover.reason": "health",
    }


async def test_token_refreshes_are_spans_and_counted(configure, functions, stack, ingestion):
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    bridge = await get_bridge()
    control(stack.identity.url, "POST", "/_devstack/config", {"fail": True})
    with pytest.raises(Exception, match="did not issue a token"):
        await bridge.tokens.force_refresh(None)

    envelopes = exported(ingestion)
    refreshes = dependencies(envelopes, "token.refresh")
    assert [r["success"] for r in refreshes] == [True, False]
    call = only(dependencies(envelopes, "tools/call listConversations"))
    assert refreshes[0]["tags"]["ai.operation.parentId"] == call["id"], "the first call waited for it"
    counts = {
        (p["properties"]["scheduler_bridge.outcome"], p["properties"].get("error.type")): p["value"]
        for p in metric_points(envelopes, "scheduler_bridge.token.refreshes")
    }
    assert counts == {("ok", None): 1, ("error", "ClientAuthenticationError"): 1}
    # The identity requests themselves (azure-core's and httpx2's HTTP spans) sit under the refreshes.
    identity = [
        e["data"]["baseData"] | {"tags": e["tags"]}
        for e in envelopes
        if e["data"]["baseData"].get("target") == f"127.0.0.1:{stack.identity.port}"
        and "/msi/token" in e["data"]["baseData"]["name"]
    ]
    assert identity, "the identity requests are traced"
    assert {d["tags"]["ai.operation.parentId"] for d in identity} <= {r["id"] for r in refreshes}


async def statuses(functions, stack) -> list[int]:
    """What tests/test_secrets.py drives: success, bad input, a tool error, a 401 after a refresh."""
    return [reply.status for reply in await exercise(functions, stack)]


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Labels of the secrets found in `text`. Callers assert on a local holding the result, so a
    failure names the secret without pytest echoing it (it shows the arguments of a failing call)."""
    assert all(secrets.values()), "an empty secret would prove nothing"
    lowered = text.lower()
    return [label for label, secret in secrets.items() if secret.lower() in lowered]


HEADER_NAMES = ("authorization", "x-api-key", "x-identity-header", "x-client-id")


async def test_no_token_key_or_header_reaches_any_envelope_or_log_line(
    configure, functions, stack, ingestion, captured_logs
):
    captured_logs.set_level(logging.DEBUG)
    await configure()
    assert await statuses(functions, stack) == [200, 200, 400, 422, 502]
    token = (await get_bridge()).tokens._token.token  # the live bearer token the Scheduler saw
    await configure(auth="api_key")
    assert await statuses(functions, stack) == [200, 200, 400, 422, 502]

    envelopes = exported(ingestion)
    text = json.dumps(envelopes)
    logs = [e for e in envelopes if e["data"]["baseType"] == "MessageData"]
    assert any("tool=scheduleConversation" in e["data"]["baseData"]["message"] for e in logs), "logs exported"
    assert "tools/call scheduleConversation" in text and "MCP send tools/call" in text, "spans exported"
    assert "token.refresh" in text, "including the refresh forced by the 401"
    secrets = {
        "token": token,
        "api key": API_KEY,
        "identity header": IDENTITY_HEADER,
        "signing key": SIGNING_KEY,
    }
    in_telemetry = leaks(text, secrets | {"bearer": "Bearer "} | {name: name for name in HEADER_NAMES})
    assert in_telemetry == []
    assert "Sending client message" in captured_logs.text, "the MCP transport's debug lines were captured"
    in_logs = leaks(captured_logs.text, secrets | {"bearer": "Bearer ey"})
    assert in_logs == []


async def test_the_span_helper_for_other_modules_marks_failures_by_class_only(ingestion):
    """What a Key Vault loader would write: `with telemetry.span("keyvault.load", ...)`."""
    with (
        pytest.raises(PermissionError),
        telemetry.span(
            "keyvault.load", attributes={"server.address": "vault.example.net", "scheduler_bridge.secrets": 2}
        ) as span,
    ):
        span.set("scheduler_bridge.loaded", 1)
        span.set("scheduler_bridge.skipped", None)
        raise PermissionError("Forbidden for secret SCHEDULER-API-KEY value=hunter2")

    envelopes = exported(ingestion)
    load = only(dependencies(envelopes, "keyvault.load"))
    assert (load["type"], load["success"]) == ("InProc", False)
    assert load["properties"] == {"scheduler_bridge.secrets": "2", "scheduler_bridge.loaded": "1"}
    assert "hunter2" not in json.dumps(envelopes), "exception messages are never recorded"


def test_a_broken_connection_string_turns_telemetry_off_without_quoting_it(caplog):
    from mcp_bridge.telemetry._setup import start

    broken = "InstrumentationKey=not-a-guid-hunter2;IngestionEndpoint=http://127.0.0.1:9/"
    mode, recorder = start({"APPLICATIONINSIGHTS_CONNECTION_STRING": broken}, TEST_EXPORT_OPTIONS)

    assert (mode, recorder) == ("off", None)
    errors = [r.getMessage() for r in caplog.records if r.name == "mcp_bridge.telemetry._setup"]
    assert errors == ["Telemetry is off: setting up Azure Monitor failed (ValueError)"]
    assert "hunter2" not in caplog.text


async def test_audit_records_are_custom_events_and_tool_spans_carry_the_callers_id(
    configure, functions, stack, ingestion
):
    from tests.test_caller_roles import READER, ROLES, WRITER

    await configure(scheduler_tool_roles=ROLES, website_auth_enabled="True")
    arguments = schedule_arguments(topic="Merger talks with Contoso")
    booked = await functions.call_tool(
        "scheduleConversation", arguments, headers={**WRITER, "Idempotency-Key": "order-4711"}
    )
    refused = await functions.call_tool("scheduleConversation", arguments, headers=READER)
    assert (booked.status, refused.status) == (200, 403)

    envelopes = exported(ingestion)
    events = [
        e["data"]["baseData"] | {"tags": e["tags"]}
        for e in envelopes
        if e["data"]["baseType"] == "EventData" and e["data"]["baseData"]["name"] == "SchedulerBridgeToolCall"
    ]
    assert len(events) == 2, "one custom event per call, the refusal included"
    audit_fields = {
        key: value for key, value in events[0]["properties"].items() if not key.startswith("code.")
    }
    assert audit_fields == {
        "caller.kind": "principal",
        "caller.id": "oid-booking-service",
        "caller.name": "booking-service",
        "caller.idp": "aad",
        "caller.roles": "Scheduler.Write",
        "upstream": "scheduler",
        "tool": "scheduleConversation",
        "outcome": "ok",
        "status": "200",
        "endpoint": stack.east.mcp_url,
        "attempts": "1",
        "idempotency_key": "order-4711",
        "logger_name": "mcp_bridge.audit",
    }
    assert events[0]["tags"]["ai.user.authUserId"] == "oid-booking-service", "enduser.id, as a tag"
    assert (events[1]["properties"]["outcome"], events[1]["properties"]["status"]) == (
        "caller-not-allowed",
        "403",
    )
    span = only(dependencies(envelopes, "tools/call scheduleConversation"))  # the refusal never got one
    assert span["tags"]["ai.user.authUserId"] == "oid-booking-service"
    text = json.dumps(events)
    assert "Merger talks" not in text and "alice@example.com" not in text, "no argument in the trail"
    in_events = leaks(
        text, {"api key": API_KEY, "identity header": IDENTITY_HEADER, "signing key": SIGNING_KEY}
    )
    assert in_events == []
