"""Progress: a tool that reports progress and log messages while it runs completes normally.

The bridge sends no progress token, so a peer that follows the spec sends progress only if one
arrives; the peers' tools also send a log message per step, which every peer sends. The cell notes
whether a token reached the peer.
"""

from __future__ import annotations

from .calls import call
from .peers import log_count

SCENARIO = "progress"


async def test_a_tool_that_reports_progress_completes(peer, cell, bridge, functions):
    spec = peer.peer
    assert spec.progress is not None
    region = peer.special("progress") if spec.progress_server else peer.region("a")
    await bridge(peer.url(region))

    reply = await call(functions, spec.progress)

    assert reply.status == 200, reply.body
    texts = [block.get("text", "") for block in reply.json["content"]]
    assert any(("5" in text) for text in texts), texts
    tokens = log_count(region, "PROGRESS_TOKEN yes")
    where = "a second process of the same SDK" if spec.progress_server else "the peer"
    cell.note(
        f"{spec.progress.tool} on {where} completed"
        + (
            ""
            if spec.ran_marker is None and not spec.progress_server
            else f"; progress token sent: {tokens > 0}"
        )
    )
