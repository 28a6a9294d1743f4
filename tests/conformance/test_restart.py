"""Restart: the peer restarts between two calls, forgetting every session; the calls after it work.

The bridge still holds the old session id, which the restarted peer answers in its own way
(peers.Peer.unknown_session). The calls use the tool with a schema, which is not annotated as
read-only or idempotent on the SDK peers: resending it is safe only because a refused session
ran nothing.
"""

from __future__ import annotations

from .calls import call, failures

SCENARIO = "restart"


async def test_three_calls_after_a_restart_all_succeed(peer, cell, bridge, functions):
    spec = peer.peer
    region = peer.region("a")
    url = peer.url(region)
    scheduler = await bridge(url)
    first = await call(functions, spec.with_schema)
    assert first.status == 200, first.body
    session = scheduler.sessions[url]
    opened = session.connections_opened

    peer.restart(region)
    replies = [await call(functions, spec.with_schema) for _ in range(3)]

    assert failures(replies) == [], f"after a restart ({spec.unknown_session})"
    assert {reply.json["endpoint"] for reply in replies} == {url}
    reopened = session.connections_opened - opened
    cell.note(
        f"3/3 calls ok after the restart; sessions reopened: {reopened}; protocol {session.protocol_version}"
    )
