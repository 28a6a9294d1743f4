"""Hypothesis properties of request parsing and validation, in process (no server needed, fast).

- `read_arguments`: any body either parses to the JSON object it encodes or is refused with a 400
  or 413 problem; nothing else ever escapes (an escape would be a 500).
- `check_conversation_id`: accepts exactly the documented alphabet and length; nothing with a
  control character, space or slash gets through (those would reach logs and URLs).
- catalog validation against the real Scheduler tool schemas: never raises, reports bounded,
  well-formed violations, and agrees with jsonschema's own verdict.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for
from mcp_types import Tool

from devstack.conversations import InMemoryConversationStore
from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_tools import register_scheduler_tools
from mcp_bridge.functions.tools_api import (
    CONVERSATION_ID,
    MAX_ARGUMENT_DEPTH,
    check_conversation_id,
    read_arguments,
)
from mcp_bridge.problems import BadRequest, PayloadTooLarge
from mcp_bridge.upstream.catalog import MAX_VIOLATIONS, CatalogTool, _compile

from .conftest import tally

LIMIT = 512
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


def request(body: bytes, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST", url="http://127.0.0.1/api/tools/t", headers=headers or {}, params={}, body=body
    )


bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=200).map(str.encode),
    json_values.map(lambda value: json.dumps(value).encode()),
    json_objects.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 60).map(lambda depth: b'{"a":' + b"[" * depth + b"]" * depth + b"}"),
    st.sampled_from([b"NaN", b'{"x": Infinity}', b"[" * 3000, b"\xef\xbb\xbf{}", b" \n\t "]),
)


@FAST
@given(body=bodies, declared=st.none() | st.integers(0, 2 * LIMIT))
def test_read_arguments_parses_an_object_or_refuses_with_400_or_413(body, declared):
    headers = {} if declared is None else {"content-length": str(declared)}
    try:
        arguments = read_arguments(request(body, headers), LIMIT)
    except PayloadTooLarge as problem:
        assert problem.status == 413
        assert len(body) > LIMIT or (declared or 0) > LIMIT
        tally["parse: body over MAX_REQUEST_BYTES"] += 1
        return
    except BadRequest as problem:
        assert problem.status == 400 and problem.detail
        tally["parse: " + _kind(problem.detail)] += 1
        return
    assert isinstance(arguments, dict)
    assert len(body) <= LIMIT
    if body.strip():
        assert arguments == json.loads(body)


def _kind(detail: str) -> str:
    for marker, kind in (
        ("UTF-8", "not UTF-8"),
        ("nested", "nested too deeply"),
        ("is not a JSON value", "NaN/Infinity"),
        ("malformed", "malformed JSON"),
        ("JSON object", "not an object"),
    ):
        if marker in detail:
            return kind
    return "other"


def test_nesting_at_the_limit_passes_and_beyond_it_is_refused():
    at_limit = b"[" * (MAX_ARGUMENT_DEPTH - 1) + b"]" * (MAX_ARGUMENT_DEPTH - 1)
    assert read_arguments(request(b'{"a":' + at_limit + b"}"), 10_000) == {"a": json.loads(at_limit)}
    with pytest.raises(BadRequest):
        read_arguments(request(b'{"a":[' + at_limit + b"]}"), 10_000)


ID_ALPHABET = string.ascii_letters + string.digits + "._:-"


@FAST
@given(
    conversation_id=st.one_of(
        st.text(max_size=140) | st.just("a" * 129),
        st.text(alphabet=ID_ALPHABET, min_size=1, max_size=140),
        st.text(alphabet=ID_ALPHABET + "\r\n /%\x00é", min_size=1, max_size=40),
    )
)
def test_conversation_ids_are_exactly_the_documented_set(conversation_id):
    valid = 1 <= len(conversation_id) <= 128 and all(c in ID_ALPHABET for c in conversation_id)
    try:
        assert check_conversation_id(conversation_id) == conversation_id
    except BadRequest:
        assert not valid
        kind = (
            "too long" if len(conversation_id) > 128 else "empty" if not conversation_id else "bad characters"
        )
        tally[f"conversation_id: {kind}"] += 1
        return
    assert valid
    assert not re.search(r"[\s/%\x00-\x1f]", conversation_id)
    assert CONVERSATION_ID.fullmatch(conversation_id)


@pytest.fixture(scope="module")
def scheduler_tools() -> dict[str, CatalogTool]:
    """The real Scheduler tools, listed from the devstack's MCP server in process."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="scheduler")
    register_scheduler_tools(
        server, store=InMemoryConversationStore(), counters=SchedulerCounters(region="p"), region="p"
    )
    listed = asyncio.run(server.list_tools())
    tools = [Tool.model_validate(tool.model_dump(by_alias=True, mode="json")) for tool in listed]
    return {tool.name: CatalogTool(tool, _compile(tool)) for tool in tools}


def plausible_arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects built from the schema's own property names, with values of any JSON type."""
    names = [*schema.get("properties", {}), "unexpected"]
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


@pytest.mark.parametrize(
    "tool_name", ["scheduleConversation", "getConversationStatus", "cancelConversation", "listConversations"]
)
def test_catalog_validation_is_total_bounded_and_agrees_with_jsonschema(scheduler_tools, tool_name):
    tool = scheduler_tools[tool_name]
    assert tool.validator is not None, "the real schemas compile"
    schema = tool.tool.input_schema
    reference = validator_for(schema)(schema)

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(arguments=st.one_of(json_objects, plausible_arguments(schema)))
    def check(arguments: dict[str, Any]) -> None:
        violations = tool.violations(arguments)
        assert len(violations) <= MAX_VIOLATIONS
        for violation in violations:
            assert set(violation) == {"pointer", "message"}
            assert violation["pointer"].startswith("/") and violation["message"]
        assert (not violations) == reference.is_valid(arguments)
        if violations:
            tally["arguments: schema violations"] += 1

    check()
