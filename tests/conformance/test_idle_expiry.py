"""Idle expiry: the peer forgets a session that stayed idle; the calls after it work.

The peers that can expire idle sessions (mcp 1.30's and fastmcp's `session_idle_timeout`) count
an open GET event stream as activity, and the bridge's client holds one, so the session would
never go idle. The peer therefore runs behind the tests' front end, configured as a
request/response gateway that answers that GET with 405, as the spec lets a server do.
"""

from __future__ import annotations

import asyncio

import pytest

from .calls import call, failures
from .frontend import FrontEnd
from .peers import IDLE_TIMEOUT_SECONDS, peers_for

SCENARIO = "idle expiry"


@pytest.mark.parametrize("peer", peers_for(SCENARIO), indirect=True, ids=lambda p: p.name)
async def test_calls_after_the_session_expired_succeed(peer, cell, bridge, functions):
    spec = peer.peer
    region = peer.special("idle")
    front = await FrontEnd(region.port, refuse_get=True).start()
    try:
        url = front.url + "/mcp"
        scheduler = await bridge(url)
        first = await call(functions, spec.with_schema)
        assert first.status == 200, first.body
        session = scheduler.sessions[url]
        opened = session.connections_opened
        expired_before = peer.expirations(region)

        await asyncio.sleep(IDLE_TIMEOUT_SECONDS * 2.5)
        replies = [await call(functions, spec.with_schema) for _ in range(3)]

        assert failures(replies) == [], f"after idle expiry ({spec.unknown_session})"
        if not session.has_session_id:
            cell.not_applicable(
                f"the bridge speaks {session.protocol_version} with this peer: no session to expire "
                "(3/3 calls after the idle period were ok)"
            )
            return
        assert peer.expirations(region) > expired_before, "the peer never expired the idle session"
        assert session.connections_opened == opened + 1
        cell.note(f"session expired after {IDLE_TIMEOUT_SECONDS:g} s idle; 3/3 calls ok, one reopen")
    finally:
        await front.aclose()
