"""Schemathesis against the real HTTP surface: function_app.py in the devstack host, keys and all.

For every documented operation, one per Scheduler tool included, positive and negative cases
generated from `/api/openapi.json` (bounded: `EXAMPLES` each). Properties checked on every answer:

- no 5xx other than the documented upstream statuses 502/503/504 (nothing here breaks upstream,
  so in practice none at all);
- an answer that refuses the input (400, 401, 403, 404, 405, 413) leaves the Scheduler's tool
  counters untouched: invalid input never reaches a tool;
- no secret (function key, API key, identity header, signing key, a JWT) in any answer, nor in the
  host's log afterwards;
- problem answers match the documented `ProblemDetails` schema, success answers their models.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from ..conftest import Devstack
from .conftest import FUNCTION_KEY, SECRETS, FuzzHost, tally

EXAMPLES = 20
REFUSED = {400, 401, 403, 404, 405, 413}
UPSTREAM = {502, 503, 504}
REAL_TOOLS = (
    "scheduleConversation",
    "getConversationStatus",
    "cancelConversation",
    "listConversations",
    "findCommonSlot",
)
KEY = {"x-functions-key": FUNCTION_KEY}


_counters = httpx2.Client(timeout=5)  # one pool: a client per read would cost more than the call


def tool_calls(devstack: Devstack) -> dict[str, int]:
    totals: dict[str, int] = {}
    for scheduler in (devstack.east, devstack.west):
        counts = _counters.get(scheduler.url + "/_devstack/counters").json()["tool_calls"]
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return totals


@pytest.fixture(scope="module")
def api(fuzz_host: FuzzHost) -> Any:
    return schemathesis.openapi.from_url(fuzz_host.url + "/api/openapi.json", headers=KEY, timeout=10)


def content_type(response: Any) -> str:
    value = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    return (value[0] if isinstance(value, list) else value).split(";")[0]  # schemathesis: lists


def kind_of(response: Any) -> str | None:
    """What kind of bad input the answer says this was (None: the input was accepted)."""
    status = response.status_code
    if status == 401:
        return "401 no or wrong function key"
    if content_type(response) == "application/problem+json":
        slug = response.json()["type"].rsplit(":", 1)[-1]
        if status < 500:
            detail = response.json()["detail"]
            if slug == "bad-request":
                slug += ": " + next(
                    (label for marker, label in _BAD_REQUEST_KINDS if marker in detail), "other"
                )
            return f"{status} {slug}"
    if status in (404, 405):
        return f"{status} no such route or method (host)"
    return None


_BAD_REQUEST_KINDS = (
    ("conversation_id must be", "conversation_id"),
    ("query string", "missing conversation_id"),
    ("UTF-8", "not UTF-8"),
    ("malformed JSON", "malformed JSON"),
    ("must be a JSON object", "not an object"),
    ("nested", "nested too deeply"),
)


def check_answer(case: Any, response: Any, before: dict[str, int], after: dict[str, int]) -> None:
    status = response.status_code
    label = f"{case.method} {case.formatted_path} -> {status}"
    assert status < 500 or status in UPSTREAM, f"{label}: {response.text[:500]}"
    kind = kind_of(response)
    if kind is not None:
        tally[kind] += 1
    if status in REFUSED:
        assert after == before, f"{label}: a refused input reached a tool ({before} -> {after})"
    exposed = response.text + json.dumps(dict(response.headers))
    for secret in SECRETS:
        assert secret not in exposed, f"{label}: a secret is in the answer"
    assert "eyJ" not in exposed and "Traceback" not in exposed, label
    if content_type(response) == "application/problem+json":
        assert response.json()["status"] == status
    if status in (200, 400, 403, 404, 413, 422, 500, 502, 503, 504) and response.content:
        case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])


def run_operation(
    api: Any, devstack: Devstack, base_url: str, label: str, mode: GenerationMode, **fixed: Any
) -> None:
    strategy = api.find_operation_by_label(label).as_strategy(generation_mode=mode, **fixed)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        _bounded_scan(case)
        before = tool_calls(devstack)
        response = case.call(base_url=base_url, headers=KEY, timeout=15)
        check_answer(case, response, before, tool_calls(devstack))

    fuzz()


def _bounded_scan(case: Any) -> None:
    """findCommonSlot takes as long as `scan_seconds` asks (up to 10 minutes): fuzz it, but quickly."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("scan_seconds"), int | float):
        body["scan_seconds"] = min(body["scan_seconds"], 0.05)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(
    "label",
    [
        "POST /tools/{tool_name}",
        "GET /tools",
        "GET /conversations/{conversation_id}/status",
        "GET /conversation-status",
        "GET /health",
        "GET /openapi.json",
    ],
)
def test_fuzz_each_operation(api, devstack, fuzz_host, label, mode):
    run_operation(api, devstack, fuzz_host.url + "/api", label, mode)


def test_every_tool_has_its_own_operation(api):
    per_tool = {
        operation.definition.raw["x-mcp-tool"]
        for result in api.get_all_operations()
        if "x-mcp-tool" in (operation := result.ok()).definition.raw
    }
    assert per_tool == set(REAL_TOOLS)


@pytest.mark.parametrize("tool", REAL_TOOLS)
def test_fuzz_each_tools_own_operation(api, devstack, fuzz_host, tool):
    """Typed bodies from the tool's inputSchema (positive) and violations of it (negative)."""
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        run_operation(api, devstack, fuzz_host.url + "/api", f"POST /tools/{tool}", mode)


@settings(
    max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    body=st.one_of(
        st.binary(max_size=64),
        st.integers(min_value=1, max_value=40).map(
            lambda depth: b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        ),
        st.sampled_from([b'{"limit": NaN}', b'{"limit": Infinity}', b"\xff\xfe{}", b"{" * 5000, b"x" * 5000]),
    )
)
def test_raw_bodies_over_http(devstack, fuzz_host, body):
    """Bodies no schema would generate: bytes, deep nesting, JSON's non-values, the size cap."""
    before = tool_calls(devstack)
    response = requests.post(
        fuzz_host.url + "/api/tools/listConversations",
        data=body,
        headers={**KEY, "content-type": "application/json"},
        timeout=15,
    )
    check_answer(_RawCase(), response, before, tool_calls(devstack))


class _RawCase:
    method = "POST"
    formatted_path = "/tools/listConversations"

    def validate_response(self, response: requests.Response, checks: Any) -> None:
        if content_type(response) == "application/problem+json":
            from mcp_bridge.functions.openapi import document

            doc = document()
            schema = {"$ref": "#/components/schemas/ProblemDetails", "components": doc["components"]}
            Draft202012Validator(schema).validate(response.json())


@pytest.mark.parametrize("key", [None, "wrong-key", FUNCTION_KEY + "x"])
def test_no_key_or_a_wrong_key_never_reaches_the_bridge(devstack, fuzz_host, key):
    before = tool_calls(devstack)
    headers = {"x-functions-key": key} if key else {}
    response = requests.post(
        fuzz_host.url + "/api/tools/listConversations", json={}, headers=headers, timeout=15
    )
    assert response.status_code == 401
    check_answer(_RawCase(), response, before, tool_calls(devstack))


def test_the_host_log_holds_no_secret(fuzz_host, devstack):
    # Leaves a key in a URL on purpose: the host logs paths, the bridge redacts what it logs.
    requests.get(fuzz_host.url + "/api/tools", params={"code": FUNCTION_KEY}, timeout=15).raise_for_status()
    text = fuzz_host.log_path.read_text(errors="replace")
    assert "Executing 'Functions." in text, "the log was really written"
    for secret in SECRETS:
        assert secret not in text
    assert "Bearer ey" not in text
