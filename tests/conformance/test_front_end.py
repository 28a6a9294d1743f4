"""Front end: the region's gateway stays up after the peer behind it died, and answers 502, 503
or 504, or resets the connection mid-request. Read-only calls must lose nothing, for a sequential
caller at about one call a second and for a burst of 100 concurrent callers.

The dead region may still receive what the retry budget lets through; each cell notes how many
requests it got. Each peer meets a different dead answer in each phase, so the matrix covers
all four in both.
"""

from __future__ import annotations

import asyncio

from .calls import call, failures, statuses
from .frontend import DeadAnswer, FrontEnd
from .peers import PEERS

SCENARIO = "front end"
SEQUENTIAL_CALLS = 6
"""Enough to outlast the retry budget's floor (3 per 10 s) and reach passive ejection (5 failures)."""
BURST = 100
WARM_TRIES = 3
ANSWERS: tuple[DeadAnswer, ...] = (502, 503, 504, "reset")


def _answer(peer, phase: int) -> DeadAnswer:
    return ANSWERS[(PEERS.index(peer.peer) + phase) % len(ANSWERS)]


def _received(front: FrontEnd) -> str:
    counters = front.counters
    methods = ", ".join(f"{count} {method}" for method, count in sorted(counters.methods.items()))
    return f"dead region received {counters.received} requests ({methods}; {counters.tool_calls} tools/call)"


async def _warm_then_kill(peer, bridge, functions, answer: DeadAnswer, *, region: str) -> FrontEnd:
    """A bridge with an open session through the front end to `region`, whose peer then dies."""
    spec = peer.peer
    first, second = peer.regions(region, "b")
    front = await FrontEnd(first.port, dead_answer=answer).start()
    await bridge(front.url + "/mcp", peer.url(second))
    for _ in range(WARM_TRIES):
        # On a loaded machine the peer's first answer through a fresh front end can come late
        # enough for the front end to answer for it (and the call to move to the other region).
        warm = await call(functions, spec.with_schema)
        if warm.status == 200 and warm.json["endpoint"] == front.url + "/mcp":
            break
        await asyncio.sleep(0.5)
    assert warm.status == 200 and warm.json["endpoint"] == front.url + "/mcp", warm.body
    front.reset_counters()
    first.kill()
    return front


async def test_a_sequential_caller_loses_no_read_only_call(peer, cell, bridge, functions):
    answer = _answer(peer, 0)
    front = await _warm_then_kill(peer, bridge, functions, answer, region="a")
    try:
        loop = asyncio.get_running_loop()
        replies = []
        for n in range(SEQUENTIAL_CALLS):
            started = loop.time()
            replies.append(await call(functions, peer.peer.read_only))
            if n < SEQUENTIAL_CALLS - 1:
                await asyncio.sleep(max(0.0, 1.0 - (loop.time() - started)))
        cell.note(f"sequential, dead front end answering {answer}: {statuses(replies)}; {_received(front)}")
        assert failures(replies) == []
    finally:
        await front.aclose()


async def test_a_burst_of_concurrent_callers_loses_no_read_only_call(peer, cell, bridge, functions):
    answer = _answer(peer, 3)
    # Region "c" is a third process of the peer, so this phase needs no restart of "a".
    front = await _warm_then_kill(peer, bridge, functions, answer, region="c")
    try:
        replies = await asyncio.gather(*(call(functions, peer.peer.read_only) for _ in range(BURST)))
        cell.note(
            f"burst of {BURST}, dead front end answering {answer}: {statuses(replies)}; {_received(front)}"
        )
        assert failures(replies) == []
    finally:
        await front.aclose()
