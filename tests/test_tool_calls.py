"""Tool calls end to end: HTTP function → shared client → MCP → the devstack Scheduler, and back."""

from __future__ import annotations

import pytest

from .conftest import schedule_arguments, tool_calls

PROBLEM = "application/problem+json"


def assert_problem(reply, status: int, slug: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == PROBLEM
    body = reply.json
    assert body["status"] == status
    assert body["type"] == f"urn:problem:scheduler-bridge:{slug}"
    assert body["instance"].startswith("/api/")
    assert "code=" not in body["instance"]
    assert "Traceback" not in reply.body.decode()
    return body


async def test_schedule_then_status_round_trip(configure, functions, stack):
    await configure()
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert scheduled.status == 200, scheduled.body
    body = scheduled.json
    assert body["tool"] == "scheduleConversation"
    assert body["endpoint"] == stack.east.mcp_url
    assert body["isError"] is False
    conversation_id = body["structuredContent"]["conversation_id"]
    assert body["content"], "text content is passed through"

    status = await functions.status(conversation_id)
    assert status.status == 200, status.body
    assert status.json["conversation_id"] == conversation_id
    assert status.json["status"]["status"] == "scheduled"

    query_form = await functions(
        "conversation_status_query",
        path="/api/conversation-status",
        params={"conversation_id": conversation_id},
    )
    assert query_form.status == 200
    assert query_form.json["status"] == status.json["status"]
    assert tool_calls(stack.east, "scheduleConversation") == 1
    assert tool_calls(stack.east, "getConversationStatus") == 2


async def test_list_tools_describes_each_tool(configure, functions):
    await configure()
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 200
    tools = {tool["name"]: tool for tool in reply.json["tools"]}
    assert set(tools) >= {
        "scheduleConversation",
        "getConversationStatus",
        "cancelConversation",
        "listConversations",
    }
    status_tool = tools["getConversationStatus"]
    assert set(status_tool) == {"name", "title", "description", "inputSchema", "annotations"}
    assert status_tool["annotations"]["readOnlyHint"] is True
    assert tools["scheduleConversation"]["annotations"]["idempotentHint"] is False
    assert "conversation_id" in status_tool["inputSchema"]["properties"]


async def test_empty_body_means_no_arguments(configure, functions, stack):
    await configure()
    reply = await functions.call_tool("listConversations")
    assert reply.status == 200, reply.body
    assert tool_calls(stack.east, "listConversations") == 1


async def test_allowlist_filters_listing_and_refuses_calls(configure, functions, stack):
    await configure(scheduler_allowed_tools="getConversationStatus,listConversations")
    listed = await functions("list_tools", path="/api/tools")
    assert {tool["name"] for tool in listed.json["tools"]} == {"getConversationStatus", "listConversations"}
    refused = await functions.call_tool("scheduleConversation", schedule_arguments())
    body = assert_problem(refused, 403, "tool-not-allowed")
    assert body["tool"] == "scheduleConversation"
    assert tool_calls(stack.east, "scheduleConversation") == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
async def test_malformed_bodies_are_400_and_never_reach_the_scheduler(
    configure, functions, stack, body, detail
):
    await configure()
    reply = await functions.call_tool("scheduleConversation", body)
    problem = assert_problem(reply, 400, "bad-request")
    assert detail in problem["detail"]
    assert tool_calls(stack.east, "scheduleConversation") == 0


async def test_schema_violations_are_listed_and_the_scheduler_is_not_called(configure, functions, stack):
    await configure()
    reply = await functions.call_tool(
        "scheduleConversation", {"participants": [], "topic": "", "duration_minutes": 100000}
    )
    problem = assert_problem(reply, 400, "invalid-arguments")
    pointers = {violation["pointer"] for violation in problem["violations"]}
    assert {"/", "/participants", "/topic", "/duration_minutes"} <= pointers  # "/" = missing start_time
    assert all(violation["message"] for violation in problem["violations"])
    assert tool_calls(stack.east, "scheduleConversation") == 0
    assert tool_calls(stack.west, "scheduleConversation") == 0


async def test_unknown_tool_is_404(configure, functions):
    await configure()
    reply = await functions.call_tool("noSuchTool", {})
    problem = assert_problem(reply, 404, "tool-not-found")
    assert problem["tool"] == "noSuchTool"


async def test_body_over_the_limit_is_413(configure, functions, stack):
    await configure(max_request_bytes="64")
    reply = await functions.call_tool("scheduleConversation", {"topic": "x" * 100})
    assert_problem(reply, 413, "payload-too-large")
    declared = await functions.call_tool("listConversations", b"{}", headers={"content-length": "100000"})
    assert_problem(declared, 413, "payload-too-large")
    assert tool_calls(stack.east, "scheduleConversation") == 0


async def test_tool_error_is_422_with_its_content(configure, functions):
    await configure()
    reply = await functions.status("conv-does-not-exist")
    problem = assert_problem(reply, 422, "tool-error")
    assert problem["tool"] == "getConversationStatus"
    assert any("not found" in block.get("text", "") for block in problem["content"])


@pytest.mark.parametrize("conversation_id", ["x" * 129, "bad id", "semi;colon", "slash%2F"])
async def test_bad_conversation_ids_are_400(configure, functions, stack, conversation_id):
    await configure()
    reply = await functions.status(conversation_id)
    assert_problem(reply, 400, "bad-request")
    assert tool_calls(stack.east, "getConversationStatus") == 0


async def test_missing_query_id_uses_the_original_guides_message(configure, functions):
    await configure()
    reply = await functions("conversation_status_query", path="/api/conversation-status")
    problem = assert_problem(reply, 400, "bad-request")
    assert problem["detail"] == "Please pass a conversation_id on the query string"


async def test_upstream_json_rpc_error_is_502(configure, functions, stack):
    await configure()
    # The Scheduler's own server-side validation rejects what our schema check cannot see:
    # here, an argument the server is told (via a fault) to refuse with HTTP 500.
    from .conftest import control

    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 500, "times": 1, "tools": ["listConversations"]},
    )
    control(
        stack.west.url,
        "POST",
        "/_devstack/faults",
        {"status": 500, "times": 1, "tools": ["listConversations"]},
    )
    reply = await functions.call_tool("listConversations", {})
    assert_problem(reply, 502, "upstream-error")


async def test_deadline_is_504(configure, functions, stack):
    await configure(scheduler_timeout_seconds="1", scheduler_endpoints=stack.east.mcp_url)
    from .conftest import control

    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"hang": True, "times": 1, "tools": ["scheduleConversation"]},
    )
    reply = await functions.call_tool("scheduleConversation", schedule_arguments())
    problem = assert_problem(reply, 504, "deadline-exceeded")
    assert problem["timeout_seconds"] == 1


async def test_invalid_settings_answer_500_naming_the_setting(configure, functions, monkeypatch):
    await configure()
    monkeypatch.setenv("SCHEDULER_TIMEOUT_SECONDS", "-5")
    from mcp_bridge.config.loader import reset_settings

    reset_settings()
    reply = await functions("list_tools", path="/api/tools")
    problem = assert_problem(reply, 500, "misconfigured")
    assert problem["settings"][0]["name"] == "SCHEDULER_TIMEOUT_SECONDS"
    assert "-5" not in problem["detail"]
