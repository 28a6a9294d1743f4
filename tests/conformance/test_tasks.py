"""Tasks: a tool that runs as an MCP task becomes a long-running operation (202, status monitor,
result), can be cancelled, and a task that asks for input ends with the server's reason.

server-everything's `simulate-research-query` (taskSupport `required`, four 1 s stages) and the
TypeScript SDK example's `delay` and `collect-user-info-task` (both `required`; the second asks
for elicitation, which the bridge does not declare). All speak 2025-11-25 core tasks, each task
bound to the MCP session that created it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .peers import peers_for

SCENARIO = "tasks"
ASYNC = {"Prefer": "respond-async"}


async def monitor(functions: Any, operation_id: str, *, cancel: bool = False) -> Any:
    suffix, name, method = ("/cancel", "cancel_operation", "POST") if cancel else ("", "get_operation", "GET")
    return await functions(
        name,
        method=method,
        path=f"/api/operations/{operation_id}{suffix}",
        route_params={"operation_id": operation_id},
    )


async def until_done(functions: Any, operation_id: str, limit: float = 20.0) -> tuple[Any, int]:
    polls = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        reply = await monitor(functions, operation_id)
        polls += 1
        assert reply.status == 200, reply.body
        if reply.json["status"] not in ("NotStarted", "Running") or loop.time() > end:
            return reply, polls
        await asyncio.sleep(0.25)


@pytest.mark.parametrize("peer", peers_for(SCENARIO), indirect=True, ids=lambda p: p.name)
async def test_a_task_tool_is_an_operation_that_succeeds_and_one_that_is_cancelled(
    peer, cell, bridge, functions
):
    spec = peer.peer
    assert spec.task is not None
    await bridge(peer.url(peer.region("a")))

    started = await functions.call_tool(spec.task.tool, dict(spec.task.arguments), headers=ASYNC)
    assert started.status == 202, started.body
    operation_id = started.json["id"]
    done, polls = await until_done(functions, operation_id)
    assert done.json["status"] == "Succeeded", done.json
    assert done.json["result"]["content"], done.json

    second = await functions.call_tool(spec.task.tool, dict(spec.task.arguments), headers=ASYNC)
    canceled = await monitor(functions, second.json["id"], cancel=True)
    assert canceled.status == 200, canceled.body
    assert canceled.json["status"] == "Canceled"
    assert (await monitor(functions, second.json["id"], cancel=True)).status == 409
    cell.note(f"{spec.task.tool}: 202, Succeeded after {polls} polls; a second one Canceled, then 409")


@pytest.mark.parametrize(
    "peer", [p for p in peers_for(SCENARIO) if p.task_asking], indirect=True, ids=lambda p: p.name
)
async def test_a_task_that_asks_for_input_fails_with_the_servers_reason(peer, cell, bridge, functions):
    spec = peer.peer
    assert spec.task_asking is not None
    await bridge(peer.url(peer.region("a")))

    started = await functions.call_tool(
        spec.task_asking.tool, dict(spec.task_asking.arguments), headers=ASYNC
    )
    assert started.status == 202, started.body
    done, _ = await until_done(functions, started.json["id"])

    assert done.json["status"] == "Failed", done.json
    assert done.json["error"]["type"].endswith(":tool-error")
    reason = done.json["error"]["content"][0]["text"]
    assert "elicitation" in reason
    cell.note(f"{spec.task_asking.tool}: Failed, tool-error: {reason[:80]}")
