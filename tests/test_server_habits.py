"""Legal or common habits of real servers never surface as errors through the bridge.

Progress and logging notifications, JSON or SSE answers, SSE priming events with empty data, events
with no ids, no standalone GET stream (405), a DELETE that fails on close, a 202 with an odd content
type, handshake-era servers that issue no session id, and older servers answering
`server/discover` with 400 (every handshake-era peer here does). The peer is a real MCP server
(tests/peers/interactive.py) wrapped in `tests/peers/quirks.py`.
"""

from __future__ import annotations

import logging

import pytest

from mcp_bridge.runtime import get_bridge, reset_bridge
from tests.peers.process import start_interactive_peer

SERVERS = {
    "handshake era, every quirk": (
        "legacy",
        ["--quirks", "get-405,delete-fails,odd-202,sse-priming,no-event-ids"],
    ),
    "handshake era, no session id": ("legacy", ["--stateless"]),
    "handshake era, JSON answers": ("legacy", ["--json-response", "--quirks", "odd-202,delete-fails"]),
    "2026-07-28, primed events without ids": ("modern", ["--quirks", "sse-priming,no-event-ids"]),
}


@pytest.mark.parametrize("server", list(SERVERS))
async def test_habits_never_surface_as_errors(configure, functions, tmp_path, caplog, server):
    era, extra = SERVERS[server]
    peer = start_interactive_peer(tmp_path, era=era, extra=extra)
    try:
        await configure(endpoints=[f"{peer.url}/mcp"], auth="none", scheduler_ping_path="")
        with caplog.at_level(logging.DEBUG):
            listing = await functions("list_tools", path="/api/tools")
            assert listing.status == 200, listing.body
            assert {"echo", "countdown"} <= {tool["name"] for tool in listing.json["tools"]}
            for n in range(3):
                reply = await functions.call_tool("echo", {"message": f"m{n}"})
                assert reply.status == 200, reply.body
            progress = await functions.call_tool("countdown", {"steps": 4})
            assert progress.status == 200 and progress.json["content"][0]["text"] == "done", progress.body
            bridge = await get_bridge()
            assert bridge.endpoints[0].connections_opened == 1
            await reset_bridge()  # closes the session: DELETE, which may fail
        noisy = [
            f"{r.name}: {r.getMessage()}"
            for r in caplog.records
            if r.levelno >= logging.ERROR
            or (r.levelno >= logging.WARNING and r.name.startswith("mcp_bridge"))
        ]
        assert not noisy, noisy
    finally:
        peer.stop()
