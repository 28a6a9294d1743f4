"""Strict arguments: a name the tool's schema does not declare is a 400 that never reaches the Scheduler."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.arguments.strict import leaf_names, unknown_arguments

from .conftest import schedule_arguments, tool_calls
from .test_tool_calls import assert_problem

NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "attendees": {
            "type": "array",
            "items": {"$ref": "#/$defs/Attendee"},
        },
        "room": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"building": {"type": "string"}, "floor": {"type": "integer"}},
                },
            ]
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "extra": {"type": "object"},
        "pair": {
            "type": "array",
            "prefixItems": [{"type": "object", "properties": {"x": {"type": "number"}}}],
        },
    },
    "$defs": {
        "Attendee": {
            "type": "object",
            "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
            "allOf": [{"properties": {"optional": {"type": "boolean"}}}],
        }
    },
}


def names(schema: dict[str, Any], arguments: dict[str, Any]) -> dict[str, str | None]:
    return {item.pointer: item.suggestion for item in unknown_arguments(schema, arguments)}


def test_unknown_names_are_found_at_every_level_with_the_closest_declared_name():
    arguments = {
        "titel": "x",
        "attendees": [{"email": "a@example.com", "nmae": "A", "optional": True}, {"emial": "b"}],
        "room": {"building": "B", "flor": 2},
        "pair": [{"x": 1, "y": 2}],
    }
    assert names(NESTED, arguments) == {
        "/titel": "title",
        "/attendees/0/nmae": "name",
        "/attendees/1/emial": "email",
        "/room/flor": "floor",
        "/pair/0/y": None,
    }


def test_declared_names_maps_and_explicit_extras_pass():
    arguments = {
        "title": "x",
        "attendees": [{"email": "a", "name": "A", "optional": False}],
        "room": None,
        "labels": {"anything": "goes", "here": "too"},  # additionalProperties gives a schema
        "extra": {"free": {"form": 1}},  # an object that declares nothing is a map
        "pair": [{"x": 1}, {"whatever": 1}],  # past prefixItems, with no items schema
    }
    assert names(NESTED, arguments) == {}


def test_explicitly_allowed_extras_are_honoured_at_the_top_level():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}
    assert names(schema, {"a": "x", "b": 1}) == {}
    closed = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert names(closed, {"a": "x", "b": 1}) == {"/b": None}
    patterned = {"type": "object", "patternProperties": {"^x-": {"type": "string"}}}
    assert names(patterned, {"x-trace": "1", "trace": "1"}) == {"/trace": None}


def test_the_top_level_is_always_the_argument_list():
    assert names({"type": "object"}, {"a": 1}) == {"/a": None}
    assert names({"type": "object", "properties": {}}, {}) == {}


def test_what_the_walk_cannot_follow_is_allowed():
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}
    assert names(remote, {"a": {"anything": 1}}) == {}
    dangling = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
    assert names(dangling, {"a": {"anything": 1}}) == {}
    cyclic = {"$ref": "#", "type": "object", "properties": {"next": {"$ref": "#"}}}
    assert names(cyclic, {"next": {"next": {"nxt": 1}}}) == {"/next/next/nxt": "next"}


def test_case_only_differences_suggest_the_declared_spelling():
    schema = {"type": "object", "properties": {"conversationId": {"type": "string"}}}
    assert names(schema, {"conversationid": "c"}) == {"/conversationid": "conversationId"}


def test_the_names_whose_values_are_never_walked_skip_the_walk_and_find_the_same():
    flat = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}, "x": True}}
    assert leaf_names(flat) == {"id", "n", "x"}
    assert leaf_names(NESTED) == {"title", "extra"}  # a free-form map is not walked either; the rest are
    for schema in ({**flat, "allOf": [{"properties": {"y": {}}}]}, {"$ref": "#", "properties": {}}):
        assert leaf_names(schema) == frozenset()  # branches or refs at the top: always walked
    cases = [
        (flat, {"id": "a", "n": 1}),
        (flat, {"id": {"nested": "objects are not looked into"}, "x": [{"a": 1}]}),
        (flat, {"id": "a", "idd": "b"}),
        ({**flat, "additionalProperties": True}, {"id": "a", "other": 1}),
        (NESTED, {"title": "x"}),
        (NESTED, {"title": "x", "room": {"flor": 2}}),
        ({"type": "object"}, {"a": 1}),
    ]
    for schema, arguments in cases:
        fast = unknown_arguments(schema, arguments, leaves=leaf_names(schema))
        assert fast == unknown_arguments(schema, arguments), (schema, arguments)
    assert unknown_arguments(flat, {"id": "a", "idd": "b"}, leaves=leaf_names(flat))[0].suggestion == "id"


async def test_a_misspelt_argument_is_refused_and_the_scheduler_is_not_called(configure, functions, stack):
    await configure()
    arguments = {**schedule_arguments(), "duration_minuts": 45}
    reply = await functions.call_tool("scheduleConversation", arguments)
    problem = assert_problem(reply, 400, "invalid-arguments")
    assert problem["detail"] == "unknown argument 'duration_minuts' — did you mean 'duration_minutes'?"
    assert problem["violations"] == [
        {
            "pointer": "/duration_minuts",
            "message": "unknown argument 'duration_minuts' — did you mean 'duration_minutes'?",
            "suggestion": "duration_minutes",
        }
    ]
    assert tool_calls(stack.east, "scheduleConversation") == 0
    assert tool_calls(stack.west, "scheduleConversation") == 0


async def test_unknown_names_and_schema_violations_are_reported_together(configure, functions, stack):
    await configure()
    reply = await functions.call_tool("listConversations", {"limit": 0, "stauts": "scheduled", "zzz": 1})
    problem = assert_problem(reply, 400, "invalid-arguments")
    pointers = [violation["pointer"] for violation in problem["violations"]]
    assert pointers == ["/stauts", "/zzz", "/limit"]
    assert "did you mean 'status'?" in problem["detail"]
    assert "declared: status, limit" in problem["violations"][1]["message"]
    assert problem["detail"].endswith("; and 1 more problem(s)")
    assert tool_calls(stack.east, "listConversations") == 0


@pytest.mark.parametrize("strict", ["false", "0"])
async def test_strictness_can_be_turned_off_for_passthrough(configure, functions, stack, strict):
    await configure(scheduler_strict_arguments=strict)
    reply = await functions.call_tool("scheduleConversation", {**schedule_arguments(), "duration_minuts": 45})
    assert reply.status == 200, reply.body
    assert reply.json["structuredContent"]["duration_minutes"] == 30, "the Scheduler dropped the typo"
    assert tool_calls(stack.east, "scheduleConversation") == 1


async def test_an_invalid_strictness_setting_is_misconfigured(configure, functions):
    await configure(scheduler_strict_arguments="perhaps")
    reply = await functions.call_tool("listConversations", {})
    problem = assert_problem(reply, 500, "misconfigured")
    assert problem["settings"][0]["name"] == "SCHEDULER_STRICT_ARGUMENTS"
