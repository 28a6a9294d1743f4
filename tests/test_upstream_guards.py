"""What the bridge refuses from the Scheduler: redirects (never followed) and oversized answers (cut off)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from devstack.scheduler import SchedulerConfig, build_app
from devstack.scheduler_auth import SchedulerCredentials
from mcp_bridge.runtime import reset_bridge
from mcp_bridge.upstream.wire import ShieldedTransport, WireTrace, current_trace
from tests.devstack.conftest import serving

from .conftest import API_KEY, AUDIENCE, CLIENT_ID, SIGNING_KEY, control, tool_calls
from .test_tool_calls import assert_problem

MARKER = "redirect-target-marker"
REDIRECT_TO_SELF = {"status": 307, "location": f"/mcp?next={MARKER}"}


async def test_the_sdk_alone_would_follow_a_same_origin_redirect(stack):
    """The threat is real: the MCP SDK's transport follows a 307 to /mcp by itself."""
    control(stack.east.url, "POST", "/_devstack/faults", {**REDIRECT_TO_SELF, "tools": ["listConversations"]})
    headers = {"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        Client(streamable_http_client(stack.east.mcp_url, http_client=http), mode="auto") as client,
    ):
        result = await client.call_tool("listConversations", {})
    assert not result.is_error
    assert tool_calls(stack.east, "listConversations") == 1, "the redirected POST ran the tool"


async def test_a_redirected_tool_call_is_refused_not_followed_and_not_repeated(
    configure, functions, stack, captured_logs
):
    await configure()
    control(stack.east.url, "POST", "/_devstack/faults", {**REDIRECT_TO_SELF, "tools": ["listConversations"]})
    reply = await functions.call_tool("listConversations", {})
    problem = assert_problem(reply, 502, "upstream-error")
    assert "redirect (HTTP 307)" in problem["detail"]
    assert "never follows redirects" in problem["detail"]
    assert problem["endpoint"] == stack.east.mcp_url
    ours = "".join(r.getMessage() for r in captured_logs.records if r.name.startswith("mcp_bridge"))
    assert "Refused a redirect (HTTP 307)" in ours
    assert MARKER not in reply.body.decode() + ours, "the bridge neither echoes nor logs the Location"
    assert tool_calls(stack.east, "listConversations") == 0, "a followed redirect would have run it"
    assert tool_calls(stack.west, "listConversations") == 0, "a redirect is not retried elsewhere"


async def test_a_redirect_at_session_open_is_refused_on_every_attempt(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url])
    control(stack.east.url, "POST", "/_devstack/faults", {"status": 308, "location": "/mcp", "times": None})
    reply = await functions.call_tool("listConversations", {})
    problem = assert_problem(reply, 502, "upstream-error")
    assert "redirect (HTTP 308)" in problem["detail"]
    counters = control(stack.east.url)
    assert counters["sessions_created"] == 0
    assert counters["tool_calls"]["listConversations"] == 0


# -- oversized answers, from a private Scheduler region whose data the test controls ---------------

LONG_PARTICIPANTS = [f"participant-{n:02d}-" + "x" * 280 + "@example.com" for n in range(50)]


@pytest.fixture
async def private_region() -> AsyncIterator[str]:
    """A Scheduler region of its own (in-memory conversations) on 127.0.0.1, same credentials."""
    credentials = SchedulerCredentials(
        audience=AUDIENCE, signing_key=SIGNING_KEY, client_id=CLIENT_ID, api_key=API_KEY
    )
    async with serving(build_app(SchedulerConfig(region="private", credentials=credentials))) as url:
        yield url
        await reset_bridge()  # close the bridge's streams first, or the server waits for them


async def counters_of(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(timeout=5) as http:
        return (await http.get(url + "/_devstack/counters")).json()


def long_conversation(topic: str) -> dict[str, Any]:
    from .conftest import schedule_arguments

    return {**schedule_arguments(topic), "participants": LONG_PARTICIPANTS}


async def test_an_oversized_answer_to_a_read_only_tool_is_a_502_and_not_retried(
    configure, functions, stack, private_region
):
    endpoints = [private_region + "/mcp", stack.west.mcp_url]
    await configure(endpoints=endpoints)
    for n in range(8):  # about 15 KiB each: a listing of all eight is about 125 KiB
        scheduled = await functions.call_tool("scheduleConversation", long_conversation(f"big {n}"))
        assert scheduled.status == 200, scheduled.body
    listed = await functions.call_tool("listConversations", {"limit": 100})
    assert listed.status == 200 and len(listed.body) > 100_000, "under the default 10 MiB cap it passes"

    await configure(endpoints=endpoints, max_upstream_response_bytes=str(64 * 1024))
    before = (await counters_of(private_region))["tool_calls"]["listConversations"]
    reply = await functions.call_tool("listConversations", {"limit": 100})
    problem = assert_problem(reply, 502, "upstream-response-too-large")
    assert problem["max_bytes"] == 64 * 1024
    assert problem["endpoint"] == private_region + "/mcp"
    assert "MAX_UPSTREAM_RESPONSE_BYTES" in problem["detail"]
    assert (await counters_of(private_region))["tool_calls"]["listConversations"] == before + 1
    assert tool_calls(stack.west, "listConversations") == 0, "the same data elsewhere is as large"


async def test_an_oversized_answer_to_a_non_idempotent_tool_says_it_may_have_run(
    configure, functions, stack, private_region
):
    await configure(
        endpoints=[private_region + "/mcp", stack.west.mcp_url], max_upstream_response_bytes="12000"
    )
    reply = await functions.call_tool("scheduleConversation", long_conversation("echoed back in full"))
    problem = assert_problem(reply, 502, "upstream-response-too-large")
    assert "may have taken effect" in problem["detail"]
    assert "not repeated" in problem["detail"]
    assert (await counters_of(private_region))["tool_calls"]["scheduleConversation"] == 1
    assert tool_calls(stack.west, "scheduleConversation") == 0


# -- the cap itself, per body and per event ----------------------------------------------------


async def _events(count: int, size: int) -> AsyncIterator[bytes]:
    for n in range(count):
        yield f"id: {n}\ndata: {'y' * size}\n\n".encode()
        await asyncio.sleep(0)


def _cap_app() -> Starlette:
    async def big_json(_request):
        return Response(b"[" + b"1," * 5000 + b"1]", media_type="application/json")

    async def small_json(_request):
        return Response(b'{"ok":true}', media_type="application/json")

    async def many_small_events(_request):
        return StreamingResponse(_events(100, 200), media_type="text/event-stream")

    async def one_big_event(_request):
        return StreamingResponse(_events(1, 5000), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/big-json", big_json),
            Route("/small-json", small_json),
            Route("/many-small-events", many_small_events),
            Route("/one-big-event", one_big_event),
        ]
    )


@pytest.fixture
async def capped() -> AsyncIterator[tuple[httpx2.AsyncClient, str]]:
    async with (
        serving(_cap_app()) as url,
        httpx2.AsyncClient(
            transport=ShieldedTransport(httpx2.AsyncHTTPTransport(), max_response_bytes=1024)
        ) as http,
    ):
        yield http, url


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/small-json", None),
        ("/many-small-events", None),
        ("/big-json", "too_large"),
        ("/one-big-event", "too_large"),
    ],
)
async def test_the_cap_applies_to_a_body_or_to_each_event(capped, path, failure):
    http, url = capped
    trace = WireTrace()
    token = current_trace.set(trace)
    try:
        try:
            response = await http.get(url + path)
            body = response.content
        except httpx2.StreamError:
            body = None
    finally:
        current_trace.reset(token)
    assert trace.failure == failure
    if failure is None:
        assert body is not None and response.status_code == 200
        if path == "/many-small-events":
            assert len(body) > 20_000, "a long stream of small events passes a 1 KiB cap"
    else:
        assert body is None or response.status_code == 599
