"""Roles per tool: who may call what, refused before the Scheduler is asked, and listings and the
OpenAPI document that show each caller only what it may call.

The functions run in-process with the headers App Service Authentication would set (built by the
devstack's own Easy Auth, tests/devstack/test_easyauth.py); the Scheduler's counters prove that a
refusal never reached it.
"""

from __future__ import annotations

import pytest

from devstack.easyauth import principal_headers
from mcp_bridge.functions.openapi import document
from mcp_bridge.runtime import get_bridge
from mcp_bridge.tool_openapi.live import live_document

from .conftest import schedule_arguments, tool_calls

ROLES = "getConversationStatus:Scheduler.Read,listConversations:Scheduler.Read,*:Scheduler.Write"
READ_TOOLS = {"getConversationStatus", "listConversations"}
ALL_TOOLS = READ_TOOLS | {"scheduleConversation", "cancelConversation", "findCommonSlot"}
OPERATION_ROUTES = ("get_operation", "cancel_operation")


def principal(name: str, *roles: str) -> dict[str, str]:
    return principal_headers({"oid": f"oid-{name}", "name": name, "roles": list(roles)})


READER = principal("status-dashboard", "Scheduler.Read")
WRITER = principal("booking-service", "Scheduler.Write")
NOBODY = principal("no-roles")


def scheduler_calls(stack, tool: str) -> int:
    return tool_calls(stack.east, tool) + tool_calls(stack.west, tool)


@pytest.fixture
async def with_roles(configure):
    async def apply(**settings: str) -> None:
        await configure(scheduler_tool_roles=ROLES, website_auth_enabled="True", **settings)

    return apply


async def test_a_reader_calls_read_tools_and_is_refused_the_rest_without_a_scheduler_call(
    with_roles, functions, stack
):
    await with_roles()
    listed = await functions.call_tool("listConversations", {}, headers=READER)
    refused = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=READER)
    cancel = await functions.call_tool("cancelConversation", {"conversation_id": "c-1"}, headers=READER)

    assert listed.status == 200
    assert (refused.status, cancel.status) == (403, 403)
    problem = refused.json
    assert problem["type"] == "urn:problem:scheduler-bridge:caller-not-allowed"
    assert problem["required_roles"] == ["Scheduler.Write"], "names the roles that would do"
    assert "Scheduler.Write" in problem["detail"]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert scheduler_calls(stack, "scheduleConversation") == 0
    assert scheduler_calls(stack, "cancelConversation") == 0
    assert scheduler_calls(stack, "listConversations") == 1


async def test_a_writer_may_call_every_tool_through_the_wildcard(with_roles, functions, stack):
    await with_roles()
    booked = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=WRITER)
    conversation_id = booked.json["structuredContent"]["conversation_id"]
    status = await functions(
        "conversation_status",
        path=f"/api/conversations/{conversation_id}/status",
        route_params={"conversation_id": conversation_id},
        headers=WRITER,
    )

    assert booked.status == 200
    assert status.status == 200 and status.json["conversation_id"] == conversation_id
    assert scheduler_calls(stack, "scheduleConversation") == 1


async def test_the_status_routes_need_a_role_for_the_status_tool(with_roles, functions, stack):
    await with_roles()
    by_path = await functions(
        "conversation_status",
        path="/api/conversations/c-1/status",
        route_params={"conversation_id": "c-1"},
        headers=NOBODY,
    )
    by_query = await functions(
        "conversation_status_query", path="/api/conversation-status", params={"conversation_id": "c-1"},
        headers=NOBODY,
    )  # fmt: skip
    reader = await functions(
        "conversation_status_query", path="/api/conversation-status", params={"conversation_id": "c-1"},
        headers=READER,
    )  # fmt: skip

    assert (by_path.status, by_query.status) == (403, 403)
    assert by_path.json["required_roles"] == ["Scheduler.Read", "Scheduler.Write"]
    assert reader.status == 422, "allowed: the tool ran and said the conversation does not exist"
    assert scheduler_calls(stack, "getConversationStatus") == 1


async def test_a_tool_no_pair_names_is_closed_to_everyone(configure, functions, stack):
    await configure(scheduler_tool_roles="listConversations:Scheduler.Read", website_auth_enabled="True")
    reply = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=WRITER)

    assert reply.status == 403
    assert reply.json["required_roles"] == []
    assert "no role may call" in reply.json["detail"]
    assert scheduler_calls(stack, "scheduleConversation") == 0


async def test_a_refusal_comes_before_the_body_is_read(with_roles, functions, stack):
    await with_roles()
    reply = await functions.call_tool("scheduleConversation", b"{not json", headers=READER)

    assert reply.status == 403


@pytest.mark.parametrize(
    ("key_roles", "allowed"),
    [
        pytest.param(None, set(), id="no-key-caller-roles"),
        pytest.param("Scheduler.Read", READ_TOOLS, id="reader-key"),
        pytest.param("Scheduler.Read,Scheduler.Write", ALL_TOOLS, id="writer-key"),
    ],
)
async def test_key_callers_hold_scheduler_key_caller_roles_and_none_by_default(
    with_roles, functions, stack, key_roles, allowed
):
    await with_roles(**({"scheduler_key_caller_roles": key_roles} if key_roles else {}))
    listed = await functions("list_tools", path="/api/tools")
    reply = await functions.call_tool("listConversations", {})
    refused = await functions.call_tool("cancelConversation", {"conversation_id": "c-1"})

    assert {tool["name"] for tool in listed.json["tools"]} == allowed
    assert reply.status == (200 if "listConversations" in allowed else 403)
    if "cancelConversation" not in allowed:
        assert refused.status == 403 and "key caller" in refused.json["detail"]
    assert scheduler_calls(stack, "listConversations") == (1 if allowed else 0)


@pytest.mark.parametrize(
    ("headers", "visible"),
    [
        pytest.param(READER, READ_TOOLS, id="reader"),
        pytest.param(WRITER, ALL_TOOLS, id="writer"),
        pytest.param(NOBODY, set(), id="no-roles"),
    ],
)
async def test_the_tool_list_shows_each_caller_only_what_it_may_call(with_roles, functions, headers, visible):
    await with_roles()
    reply = await functions("list_tools", path="/api/tools", headers=headers)

    assert reply.status == 200
    assert {tool["name"] for tool in reply.json["tools"]} == visible


@pytest.mark.parametrize(
    ("headers", "operations", "tools"),
    [
        pytest.param(
            WRITER,
            {
                "call_tool",
                "list_tools",
                "conversation_status",
                "conversation_status_query",
                *OPERATION_ROUTES,
            },
            ALL_TOOLS,
        ),
        pytest.param(
            principal("lister", "Lister"),
            {"call_tool", "list_tools", *OPERATION_ROUTES},
            {"listConversations"},
            id="no-status-role",
        ),
        pytest.param({}, {"list_tools"}, set(), id="key-caller-without-roles"),
    ],
)
async def test_the_openapi_document_leaves_out_what_the_caller_may_not_use(
    configure, functions, headers, operations, tools
):
    await configure(scheduler_tool_roles=ROLES + ",listConversations:Lister", website_auth_enabled="True")
    reply = await functions("openapi", path="/api/openapi.json", headers=headers)

    assert reply.status == 200
    described = {
        op["operationId"]
        for path in reply.json["paths"].values()
        for op in path.values()
        if "x-mcp-tool" not in op
    }
    # The `/api/servers/{server}/...` form of each (servers_api) goes with it.
    servers = {f"server_{op}" for op in operations & {"call_tool", "list_tools", *OPERATION_ROUTES}}
    assert described == operations | servers | {"health", "openapi"}
    per_tool = {
        op["x-mcp-tool"]
        for path in reply.json["paths"].values()
        for op in path.values()
        if "x-mcp-tool" in op
    }
    assert per_tool == tools, "one operation for each tool the caller may call, and no other"


async def test_without_tool_roles_nothing_changes(configure, functions, stack):
    await configure(website_auth_enabled="True")
    listed = await functions("list_tools", path="/api/tools", headers=NOBODY)
    booked = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=NOBODY)
    by_key = await functions.call_tool("listConversations", {})
    doc = await functions("openapi", path="/api/openapi.json", headers=NOBODY)

    assert {tool["name"] for tool in listed.json["tools"]} == ALL_TOOLS
    assert (booked.status, by_key.status) == (200, 200)
    # The tools as callers meet them (a 2026-07-28 tasks server may run any of them as a task).
    assert doc.json == document(tools=await live_document.tools(await get_bridge()))


async def test_the_allowlist_still_comes_first_for_callers_with_a_role(with_roles, functions, stack):
    await with_roles(scheduler_allowed_tools="listConversations")
    reply = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=WRITER)

    assert reply.status == 403
    assert reply.json["type"].endswith(":tool-not-allowed")


INVALID_SETTINGS = {
    "no-colon": ({"scheduler_tool_roles": "listConversations"}, "SCHEDULER_TOOL_ROLES"),
    "space-in-tool": ({"scheduler_tool_roles": "list Conversations:Scheduler.Read"}, "SCHEDULER_TOOL_ROLES"),
    "space-in-role": ({"scheduler_tool_roles": "listConversations:Scheduler Read"}, "SCHEDULER_TOOL_ROLES"),
    "only-commas": ({"scheduler_tool_roles": ",, ,"}, "SCHEDULER_TOOL_ROLES"),
    "key-roles-alone": ({"scheduler_key_caller_roles": "Scheduler.Read"}, "SCHEDULER_KEY_CALLER_ROLES"),
    "bad-key-role": (
        {"scheduler_tool_roles": ROLES, "scheduler_key_caller_roles": "a b"},
        "SCHEDULER_KEY_CALLER_ROLES",
    ),
}


async def test_an_invalid_role_setting_is_500_misconfigured_naming_it(configure, functions, stack):
    answers = {}
    for case, (settings, _) in INVALID_SETTINGS.items():
        await configure(**settings)
        reply = await functions.call_tool("listConversations", {})
        answers[case] = (
            reply.status,
            reply.json["type"].rsplit(":", 1)[-1],
            [e["name"] for e in reply.json["settings"]],
        )

    assert answers == {case: (500, "misconfigured", [named]) for case, (_, named) in INVALID_SETTINGS.items()}
    assert scheduler_calls(stack, "listConversations") == 0
