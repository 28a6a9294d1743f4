"""A server that asks the client for something mid-call gets a prompt refusal; the caller gets
`422 input-required` in the server's words within a second; the session keeps working.

The bridge declares no sampling, elicitation or roots capability: an HTTP caller has no user
behind it. Handshake-era servers ask on the call's SSE stream; 2026-07-28 servers return an
`InputRequiredResult`. Both are covered, with a real MCP server (tests/peers/interactive.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mcp_bridge.runtime import get_bridge
from tests.peers.process import start_interactive_peer


@pytest.fixture(scope="module", params=["legacy", "modern"])
def interactive_peer(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[str, str]]:
    era = request.param
    process = start_interactive_peer(tmp_path_factory.mktemp("peer"), era=era)
    try:
        yield era, f"{process.url}/mcp"
    finally:
        process.stop()


async def test_an_elicitation_is_refused_and_answered_422_in_the_servers_words(
    configure, functions, interactive_peer
):
    era, url = interactive_peer
    await configure(endpoints=[url], auth="none", scheduler_ping_path="")
    assert (await functions.call_tool("echo", {"message": "warm"})).status == 200
    started = time.perf_counter()
    reply = await functions.call_tool("askName", {})
    elapsed = time.perf_counter() - started
    assert reply.status == 422, reply.body
    assert reply.json["type"].endswith(":input-required")
    assert reply.json["server_message"] == "Which name should the booking carry?"
    assert elapsed < 1.0, f"{era}: answered after {elapsed:.2f} s"
    after = await functions.call_tool("echo", {"message": "still there"})
    assert after.status == 200 and after.json["content"][0]["text"] == "echo: still there"
    bridge = await get_bridge()
    assert bridge.endpoints[0].connections_opened == 1, "the session survived the refusal"


# Only a handshake-era server can ask mid-call and then wait; at 2026-07-28 the question is the result.
@pytest.mark.parametrize("interactive_peer", ["legacy"], indirect=True)
async def test_a_server_that_waits_after_the_refusal_does_not_hold_the_caller(
    configure, functions, interactive_peer
):
    _, url = interactive_peer
    await configure(endpoints=[url], auth="none", scheduler_ping_path="")
    assert (await functions.call_tool("echo", {"message": "warm"})).status == 200
    started = time.perf_counter()
    reply = await functions.call_tool("stubborn", {})
    assert reply.status == 422, reply.body
    assert time.perf_counter() - started < 1.0
    assert (await functions.call_tool("echo", {"message": "next"})).status == 200


async def test_progress_and_log_notifications_do_not_disturb_a_call(configure, functions, interactive_peer):
    _, url = interactive_peer
    await configure(endpoints=[url], auth="none", scheduler_ping_path="")
    reply = await functions.call_tool("countdown", {"steps": 5})
    assert reply.status == 200, reply.body
    assert reply.json["content"][0]["text"] == "done"
