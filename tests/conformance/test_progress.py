"""Progress: a tool that reports progress while it runs, called through the bridge.

The bridge sends a progress token on every `tools/call`, so a peer that follows the spec reports
progress; the peers' tools also log one line per step. The test watches the call as an SSE caller
would (`mcp_bridge.calls.progress.watching`) and asserts that the token reached the peer (where the
peer says so in its log) and that its notifications came back through the bridge, in order.
"""

from __future__ import annotations

from mcp_bridge.calls.progress import Progress, watching

from .calls import call
from .peers import log_count

SCENARIO = "progress"


async def test_a_tool_that_reports_progress_completes(peer, cell, bridge, functions):
    spec = peer.peer
    assert spec.progress is not None
    region = peer.special("progress") if spec.progress_server else peer.region("a")
    await bridge(peer.url(region))

    received: list[Progress] = []
    with watching(received.append):
        reply = await call(functions, spec.progress)

    assert reply.status == 200, reply.body
    texts = [block.get("text", "") for block in reply.json["content"]]
    assert any(("5" in text) for text in texts), texts
    steps = [event.progress for event in received]
    assert len(steps) >= 2 and steps == sorted(steps), received  # every peer here reports progress
    where = "a second process of the same SDK" if spec.progress_server else "the peer"
    reported_by_peer = spec.ran_marker is not None or spec.progress_server
    tokens = log_count(region, "PROGRESS_TOKEN yes")
    if reported_by_peer:
        assert tokens > 0, "the peer saw no progress token"
    last = received[-1]
    cell.note(
        f"{spec.progress.tool} on {where} completed; progress token sent"
        + (f" (peer logged it {tokens}×)" if reported_by_peer else "")
        + f"; {len(received)} notifications received through the bridge"
        + (f", last {last.progress:g}/{last.total:g}" if last.total is not None else "")
    )
