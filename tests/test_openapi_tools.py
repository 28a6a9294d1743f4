"""The live document: one typed operation per callable tool, in step with the catalog, cheap to poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from openapi_spec_validator import validate

from devstack.processes import free_port
from devstack.scheduler_counters import SCHEDULER_TOOL_NAMES
from mcp_bridge.runtime import get_bridge
from mcp_bridge.tool_openapi.operations import operation_id

from .conftest import control, schedule_arguments
from .test_openapi import schema_for
from .test_tool_calls import assert_problem
from .test_tool_catalog import fresh_scheduler  # noqa: F401 (a fixture)

PROBLEM = "application/problem+json"
COMPONENTS = "#/components/schemas/"


async def live(functions, **headers: str):
    return await functions("openapi", path="/api/openapi.json", headers=headers)


def tool_operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["x-mcp-tool"]: operation
        for item in doc["paths"].values()
        for operation in item.values()
        if "x-mcp-tool" in operation
    }


def component(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith(COMPONENTS), ref
    return doc["components"]["schemas"][ref.removeprefix(COMPONENTS)]


async def test_one_typed_operation_per_callable_tool_in_a_valid_document(configure, functions):
    await configure()
    reply = await live(functions)
    assert reply.status == 200, reply.body
    doc = reply.json
    validate(doc)  # openapi-spec-validator, OpenAPI 3.1
    operations = tool_operations(doc)
    assert set(operations) == set(SCHEDULER_TOOL_NAMES)
    _, listed = await (await get_bridge()).list_tools()
    published = {entry.tool.name: entry.tool for entry in listed}

    schedule = doc["paths"]["/tools/scheduleConversation"]["post"]
    assert schedule["operationId"] == "scheduleConversation"
    assert schedule["summary"] == "Schedule a conversation"
    assert schedule["description"] == published["scheduleConversation"].description
    assert schedule["x-mcp-annotations"] == {
        "title": "Schedule a conversation",
        "readOnlyHint": False,
        "destructiveHint": False,
        "idempotentHint": False,
        "openWorldHint": False,
    }
    # The devstack's 2026-07-28 regions serve the tasks extension: any call may be asked to be a task.
    assert [p["name"] for p in schedule["parameters"]] == ["Idempotency-Key", "Prefer"]
    body = schedule["requestBody"]
    assert body["required"] is True
    arguments = component(doc, body["content"]["application/json"]["schema"]["$ref"])
    assert arguments == published["scheduleConversation"].input_schema  # enums, defaults, bounds: all of it
    assert arguments["properties"]["duration_minutes"]["default"] == 30
    for name, tool in published.items():
        operation = operations[name]
        result = component(
            doc, operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        )
        assert result["properties"]["tool"]["const"] == name
        output = component(doc, result["properties"]["structuredContent"]["$ref"])
        assert output.keys() == tool.output_schema.keys() - {"$defs"}
        for status in (400, 404, 409, 413, 422, 500, 502, 503, 504):
            schema = operation["responses"][str(status)]["content"][PROBLEM]["schema"]
            assert schema == {"$ref": COMPONENTS + "ProblemDetails"}
    # A published $defs moved into components, its reference following it.
    listing = component(doc, COMPONENTS + "listConversationsOutput")
    row = listing["properties"]["conversations"]["items"]["$ref"]
    assert component(doc, row) == published["listConversations"].output_schema["$defs"]["ConversationSummary"]
    generic = doc["paths"]["/tools/{tool_name}"]["post"]["parameters"][0]
    assert generic["schema"]["enum"] == sorted(SCHEDULER_TOOL_NAMES)


async def test_the_allowlist_decides_which_tools_get_an_operation(configure, functions):
    await configure(scheduler_allowed_tools="getConversationStatus,listConversations")
    doc = (await live(functions)).json
    assert set(tool_operations(doc)) == {"getConversationStatus", "listConversations"}
    generic = doc["paths"]["/tools/{tool_name}"]["post"]["parameters"][0]
    assert generic["schema"]["enum"] == ["getConversationStatus", "listConversations"]
    assert "/tools/scheduleConversation" not in doc["paths"]


async def test_etag_and_cache_control_make_polling_cheap(configure, functions, stack):
    await configure()
    first = await live(functions)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "private, no-cache"
    before = control(stack.east.url)["mcp_requests"]
    for tag in (etag, f"W/{etag}", f'"stale", {etag}', "*"):
        again = await live(functions, **{"If-None-Match": tag})
        assert again.status == 304 and again.body == b""
        assert again.headers["ETag"] == etag
    assert control(stack.east.url)["mcp_requests"] == before, "polling asked the Scheduler nothing"
    changed = await live(functions, **{"If-None-Match": '"something-else"'})
    assert changed.status == 200 and changed.body == first.body


async def test_tools_list_changed_reaches_the_document(configure, functions, fresh_scheduler):  # noqa: F811
    scheduler = fresh_scheduler(tools_ttl_ms=600_000)
    await configure(endpoints=[scheduler.mcp_url])
    first = await live(functions)
    assert "describeRegion" not in tool_operations(first.json)
    await asyncio.sleep(0.3)  # the subscriptions/listen stream is open
    control(scheduler.url, "POST", "/_devstack/tools", {"name": "describeRegion"})
    deadline = time.monotonic() + 5
    while "describeRegion" not in tool_operations((reply := await live(functions)).json):
        assert time.monotonic() < deadline, "list_changed never reached the document"
        await asyncio.sleep(0.1)
    assert reply.headers["ETag"] != first.headers["ETag"]
    assert reply.json["paths"]["/tools/describeRegion"]["post"]["x-mcp-annotations"]["readOnlyHint"] is True
    validate(reply.json)


async def test_without_any_listing_the_document_is_a_503(configure, functions):
    await configure(endpoints=[f"http://127.0.0.1:{free_port()}/mcp"])
    reply = await live(functions)
    assert_problem(reply, 503, "unavailable")
    assert reply.headers["Retry-After"]


async def test_the_last_document_is_served_while_the_scheduler_is_away(
    configure,
    functions,
    fresh_scheduler,  # noqa: F811
    captured_logs,
):
    scheduler = fresh_scheduler()
    await configure(endpoints=[scheduler.mcp_url], scheduler_timeout_seconds="3")
    first = await live(functions)
    scheduler.kill()
    # As list_changed would: the listing must be asked for, and the Scheduler is gone.
    (await get_bridge()).endpoints[0].invalidate_catalog()
    again = await live(functions)
    assert "Serving the OpenAPI document from the last listing" in captured_logs.text
    assert again.status == 200
    assert again.headers["ETag"] == first.headers["ETag"] and again.body == first.body


async def test_live_answers_match_their_tools_operations(configure, functions):
    await configure()
    doc = (await live(functions)).json
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments())
    conversation_id = scheduled.json["structuredContent"]["conversation_id"]
    answers = {
        "scheduleConversation": scheduled,
        "getConversationStatus": await functions.call_tool(
            "getConversationStatus", {"conversation_id": conversation_id}
        ),
        "listConversations": await functions.call_tool("listConversations", {"limit": 3}),
        "cancelConversation": await functions.call_tool(
            "cancelConversation", {"conversation_id": conversation_id, "reason": "test"}
        ),
    }
    for name, reply in answers.items():
        assert reply.status == 200, reply.body
        validator = schema_for(doc, f"/tools/{name}", "post", 200, "application/json")
        errors = [error.message for error in validator.iter_errors(reply.json)]
        assert not errors, (name, errors)
    wrong = {**answers["listConversations"].json, "tool": "scheduleConversation"}
    assert not schema_for(doc, "/tools/listConversations", "post", 200, "application/json").is_valid(wrong)


def test_operation_ids_are_stable_and_never_clash_with_the_generic_routes():
    assert operation_id("scheduleConversation", {"call_tool"}) == "scheduleConversation"
    reserved = {"call_tool", "health"}
    assert operation_id("health", reserved).startswith("health_")
    assert operation_id("health", reserved) == operation_id("health", reserved)
    dotted = operation_id("calendar.create-event", reserved)
    assert dotted.startswith("calendar_create_event_") and dotted.isidentifier()
    assert operation_id("calendar.create_event", reserved) != dotted
    assert operation_id("9lives", reserved).startswith("tool_9lives_")
