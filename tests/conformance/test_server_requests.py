"""Server requests: a tool asks the client for input (elicitation) during the call.

On handshake-era sessions the server sends an `elicitation/create` request; on 2026-07-28 ones
(fastmcp) the tool returns an `InputRequiredResult`, which has no server-to-client request.

The bridge declares no elicitation capability and has no one to ask. The server must get a
prompt refusal, the caller a documented `422 input-required` problem carrying the server's
message within a second, and the session must keep working for the next call.
"""

from __future__ import annotations

import time

import pytest

from .calls import call
from .peers import peers_for

SCENARIO = "server requests"
WITHIN_SECONDS = 1.0


@pytest.mark.parametrize("peer", peers_for(SCENARIO), indirect=True, ids=lambda p: p.name)
async def test_an_eliciting_tool_answers_422_input_required_promptly(peer, cell, bridge, functions):
    spec = peer.peer
    assert spec.elicit is not None and spec.elicit_message is not None
    region = peer.region("a")
    url = peer.url(region)
    scheduler = await bridge(url)
    warm = await call(functions, spec.with_schema)
    assert warm.status == 200, warm.body
    session = scheduler.sessions[url]
    opened = session.connections_opened

    started = time.perf_counter()
    asked = await call(functions, spec.elicit)
    elapsed = time.perf_counter() - started

    assert asked.status == 422, asked.body
    assert asked.json["type"].endswith(":input-required"), asked.json
    assert spec.elicit_message in asked.json["detail"], asked.json
    assert elapsed < WITHIN_SECONDS, f"answered after {elapsed:.2f} s"
    after = await call(functions, spec.with_schema)
    assert after.status == 200, after.body
    assert session.connections_opened == opened, "the session was reopened after the server's request"
    how = "InputRequiredResult" if session.protocol_version == "2026-07-28" else "elicitation/create request"
    cell.note(
        f"{how} ({session.protocol_version}): 422 input-required in {elapsed * 1000:.0f} ms; "
        "the next call on the same session ok"
    )
