"""The reference Scheduler's tools, through a real mcp Client: schemas, annotations, results, tool errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema

from tests.devstack.conftest import SchedulerServer, counters, mcp_client


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_tools_publish_rich_input_schemas(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == {
        "scheduleConversation",
        "getConversationStatus",
        "cancelConversation",
        "listConversations",
        "findCommonSlot",
    }
    schedule = tools["scheduleConversation"].input_schema
    assert schedule["required"] == ["participants", "start_time", "topic"]
    participants = schedule["properties"]["participants"]
    assert (participants["type"], participants["minItems"], participants["maxItems"]) == ("array", 1, 50)
    assert participants["items"]["minLength"] == 1
    assert schedule["properties"]["start_time"]["format"] == "date-time"
    assert "pattern" in schedule["properties"]["start_time"]
    assert (schedule["properties"]["topic"]["minLength"], schedule["properties"]["topic"]["maxLength"]) == (
        1,
        200,
    )
    duration = schedule["properties"]["duration_minutes"]
    assert (duration["type"], duration["minimum"], duration["maximum"], duration["default"]) == (
        "integer",
        5,
        480,
        30,
    )

    status_id = tools["getConversationStatus"].input_schema["properties"]["conversation_id"]
    assert status_id["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    listing = tools["listConversations"].input_schema["properties"]
    assert {"enum": ["scheduled", "cancelled"], "type": "string"} in listing["status"]["anyOf"]
    assert (listing["limit"]["minimum"], listing["limit"]["maximum"], listing["limit"]["default"]) == (
        1,
        100,
        20,
    )
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None


async def test_annotations_are_honest(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        annotations = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}

    schedule = annotations["scheduleConversation"]
    assert (schedule.read_only_hint, schedule.idempotent_hint, schedule.destructive_hint) == (
        False,
        False,
        False,
    )
    cancel = annotations["cancelConversation"]
    assert (cancel.read_only_hint, cancel.idempotent_hint, cancel.destructive_hint) == (False, True, True)
    for reader in ("getConversationStatus", "listConversations"):
        assert (annotations[reader].read_only_hint, annotations[reader].idempotent_hint) == (True, True)


async def test_schedule_status_cancel_and_list(scheduler: SchedulerServer) -> None:
    start = tomorrow()
    async with mcp_client(scheduler.mcp_url) as client:
        scheduled = await client.call_tool(
            "scheduleConversation",
            {
                "participants": ["alice@example.com", "bob@example.com"],
                "start_time": start,
                "topic": "Review",
            },
        )
        assert not scheduled.is_error
        result = scheduled.structured_content
        assert result is not None
        conversation_id = result["conversation_id"]
        assert conversation_id.startswith("conv-")
        assert result["status"] == "scheduled"
        assert result["participants"] == ["alice@example.com", "bob@example.com"]
        assert result["duration_minutes"] == 30
        assert result["region"] == "eastus"
        assert datetime.fromisoformat(result["start_time"]) == datetime.fromisoformat(start)

        status = await client.call_tool("getConversationStatus", {"conversation_id": conversation_id})
        assert status.structured_content is not None
        assert status.structured_content["status"] == "scheduled"
        assert status.structured_content["topic"] == "Review"

        for _ in range(2):  # idempotent: the second cancel changes nothing and still succeeds
            cancelled = await client.call_tool(
                "cancelConversation", {"conversation_id": conversation_id, "reason": "x"}
            )
            assert not cancelled.is_error
            assert cancelled.structured_content is not None
            assert cancelled.structured_content["status"] == "cancelled"

        listed = await client.call_tool("listConversations", {"status": "cancelled", "limit": 100})
        assert listed.structured_content is not None
        ids = [c["conversation_id"] for c in listed.structured_content["conversations"]]
        assert conversation_id in ids
        scheduled_only = await client.call_tool("listConversations", {"status": "scheduled"})
        assert scheduled_only.structured_content is not None
        assert conversation_id not in [
            c["conversation_id"] for c in scheduled_only.structured_content["conversations"]
        ]

    snapshot = await counters(scheduler.url)
    assert snapshot["tool_calls"] == {
        "scheduleConversation": 1,
        "getConversationStatus": 1,
        "cancelConversation": 2,
        "listConversations": 2,
        "findCommonSlot": 0,
    }


async def test_tool_errors_are_is_error_results(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        past = await client.call_tool(
            "scheduleConversation",
            {"participants": ["a@example.com"], "start_time": "2001-01-01T00:00:00Z", "topic": "t"},
        )
        naive = await client.call_tool(
            "scheduleConversation",
            {"participants": ["a@example.com"], "start_time": "2999-01-01T00:00:00", "topic": "t"},
        )
        unparseable = await client.call_tool(
            "scheduleConversation",
            {"participants": ["a@example.com"], "start_time": "2999-13-45T99:00:00Z", "topic": "t"},
        )
        unknown = await client.call_tool("getConversationStatus", {"conversation_id": "conv-missing"})
        unknown_cancel = await client.call_tool("cancelConversation", {"conversation_id": "conv-missing"})

    assert past.is_error and "in the past" in past.content[0].text  # type: ignore[union-attr]
    assert naive.is_error
    assert unparseable.is_error
    assert unknown.is_error and "conversation conv-missing not found" in unknown.content[0].text  # type: ignore[union-attr]
    assert unknown_cancel.is_error


async def test_invalid_arguments_never_reach_the_tool(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        empty = await client.call_tool(
            "scheduleConversation", {"participants": [], "start_time": tomorrow(), "topic": "t"}
        )
        too_long = await client.call_tool(
            "scheduleConversation", {"participants": ["a"], "start_time": tomorrow(), "topic": "x" * 201}
        )
        bad_id = await client.call_tool(
            "getConversationStatus", {"conversation_id": "has spaces/and slashes"}
        )
        bad_limit = await client.call_tool("listConversations", {"limit": 0})

    assert all(result.is_error for result in (empty, too_long, bad_id, bad_limit))
    assert (await counters(scheduler.url))["tool_calls"] == {
        "scheduleConversation": 0,
        "getConversationStatus": 0,
        "cancelConversation": 0,
        "listConversations": 0,
        "findCommonSlot": 0,
    }
