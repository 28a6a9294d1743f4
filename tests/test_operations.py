"""Long-running operations against real task servers of other teams, on loopback (2025-11-25 tasks):

- server-everything 2026.8.31's `simulate-research-query` (taskSupport `required`, 4 stages of 1 s);
- the TypeScript SDK 1.32.2 example's `delay` and `collect-user-info-task` (both `required`; the
  second asks for elicitation, which the bridge does not offer, so the task fails);
- the same SDK's `simpleTaskInteractive` example, whose `confirm_delete` waits in `input_required`.

The bridge runs in-process (the registered functions) with its operations kept in this process
(no shared storage); tests/test_operations_instances.py covers two hosts sharing Azurite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.easyauth import principal_headers
from devstack.processes import ManagedProcess, free_port
from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import reset_bridge
from tests.conformance.install import installed
from tests.conformance.peers import LOOPBACK_PRELOAD, PEERS, READY_STATUSES, log_count, mcp_url

EVERYTHING = next(p for p in PEERS if p.name == "server-everything")
TS_SDK = next(p for p in PEERS if p.name == "ts-sdk-1.32")
RESEARCH = "simulate-research-query"
SESSION_OPENED = "Session initialized with ID"
ROLES = "*:Scheduler.Write"
ALICE = principal_headers({"oid": "oid-alice", "name": "alice", "roles": ["Scheduler.Write"]})
MALLORY = principal_headers({"oid": "oid-mallory", "name": "mallory", "roles": ["Scheduler.Write"]})

pytestmark = pytest.mark.skipif(
    not (installed(EVERYTHING) and installed(TS_SDK)), reason="`make peers` installs the task servers"
)


def header(reply: Any, name: str) -> str | None:
    return next((v for k, v in reply.headers.items() if k.lower() == name.lower()), None)


def operation_of(reply: Any) -> str:
    location = header(reply, "Operation-Location")
    assert location and location.startswith("http://127.0.0.1:7071/api/operations/op_"), location
    assert "code=" not in location  # the caller's key never comes back in a header
    return location.rsplit("/", 1)[1]


def interactive(logs: Path) -> ManagedProcess:
    """The TypeScript SDK's `simpleTaskInteractive` example: its tasks wait in `input_required`."""
    port = free_port()
    script = (
        TS_SDK.folder
        / "node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleTaskInteractive.js"
    )
    return ManagedProcess(
        name="ts-sdk-task-interactive",
        module="ts-sdk-task-interactive",
        command=[shutil.which("node") or "node", "-r", str(LOOPBACK_PRELOAD), str(script)],
        args=[],
        port=port,
        log_path=logs / "ts-sdk-task-interactive.log",
        ready_path="/mcp",
        ready_statuses=READY_STATUSES,
        env={"PORT": str(port), "NODE_ENV": "production"},
        cwd=TS_SDK.folder,
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ManagedProcess]]:
    logs = tmp_path_factory.mktemp("task-servers")
    processes = {
        "everything": EVERYTHING.process(logs),
        "sdk": TS_SDK.process(logs),
        "interactive": interactive(logs),
    }
    for process in processes.values():
        process.start()
    try:
        for process in processes.values():
            process.wait_ready(45)
        yield processes
    finally:
        for process in processes.values():
            process.stop()


@pytest.fixture
async def bridge_at(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    async def configure(*endpoints: str, **settings: str) -> None:
        values = {
            "SCHEDULER_ENDPOINTS": ",".join(endpoints),
            "SCHEDULER_AUTH": "none",
            "SCHEDULER_PING_PATH": "",
            "SCHEDULER_TIMEOUT_SECONDS": "10",
            "SCHEDULER_TOOL_ROLES": ROLES,
            "WEBSITE_AUTH_ENABLED": "true",
        }
        values.update({key.upper(): value for key, value in settings.items()})
        for key in list(os.environ):
            if key.startswith(("SCHEDULER_", "OPERATIONS_", "AzureWebJobsStorage")):
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        await reset_bridge()

    yield configure
    await reset_bridge()
    reset_settings()


async def get(functions: Any, operation_id: str, who: dict[str, str] = ALICE) -> Any:
    return await functions(
        "get_operation",
        path=f"/api/operations/{operation_id}",
        route_params={"operation_id": operation_id},
        headers=who,
    )


async def cancel(functions: Any, operation_id: str, who: dict[str, str] = ALICE) -> Any:
    return await functions(
        "cancel_operation",
        method="POST",
        path=f"/api/operations/{operation_id}/cancel",
        route_params={"operation_id": operation_id},
        headers=who,
    )


async def until_done(functions: Any, operation_id: str, limit: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        reply = await get(functions, operation_id)
        assert reply.status == 200, reply.body
        if reply.json["status"] not in ("NotStarted", "Running") or loop.time() > end:
            return reply
        await asyncio.sleep(0.3)


async def test_a_required_task_tool_answers_202_then_its_monitor_reaches_the_result(
    servers, bridge_at, functions
):
    await bridge_at(mcp_url(servers["everything"]))

    started = await functions.call_tool(RESEARCH, {"topic": "tides"}, headers={**ALICE, "Prefer": "wait=1"})

    assert started.status == 202, started.body
    assert header(started, "Preference-Applied") == "wait=1"
    assert header(started, "Retry-After") == "1"  # the server's pollInterval, 1000 ms
    operation_id = operation_of(started)
    assert started.json["id"] == operation_id
    assert started.json["status"] == "Running"
    assert started.json["tool"] == RESEARCH
    assert started.json["progress"]["statusMessage"].endswith("...")

    done = await until_done(functions, operation_id)

    body = done.json
    assert body["status"] == "Succeeded", body
    assert body["result"]["tool"] == RESEARCH
    assert "Research Report: tides" in body["result"]["content"][0]["text"]
    assert header(done, "Retry-After") is None  # nothing left to poll for


async def test_a_task_that_ends_within_the_wait_is_an_ordinary_200(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["sdk"]))

    reply = await functions.call_tool("delay", {"duration": 300}, headers=ALICE)

    assert reply.status == 200, reply.body
    assert reply.json["content"][0]["text"] == "Completed 300ms delay"
    assert header(reply, "Preference-Applied") is None  # no Prefer was sent, none applied
    assert header(reply, "Operation-Location") is None


async def test_a_failed_task_is_failed_with_the_tool_error_problem(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["sdk"]))

    started = await functions.call_tool(
        "collect-user-info-task", {"infoType": "contact"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    assert started.status == 202, started.body
    assert header(started, "Preference-Applied") == "respond-async"

    done = await until_done(functions, operation_of(started))

    body = done.json
    assert body["status"] == "Failed", body
    assert body["error"]["type"].endswith(":tool-error")
    assert body["error"]["status"] == 422
    assert "elicitation" in body["error"]["content"][0]["text"]

    synchronous = await functions.call_tool("collect-user-info-task", {"infoType": "contact"}, headers=ALICE)
    assert synchronous.status == 422  # within the wait: the problem a synchronous call gets
    assert synchronous.json["type"].endswith(":tool-error")


async def test_cancel_ends_a_running_task_and_a_second_cancel_is_409(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["everything"]))
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operation_id = operation_of(started)

    canceled = await cancel(functions, operation_id)

    assert canceled.status == 200, canceled.body
    assert canceled.json["status"] == "Canceled"
    again = await cancel(functions, operation_id)
    assert again.status == 409
    assert again.json["type"].endswith(":operation-finished")
    await asyncio.sleep(1.2)  # the server's task stays cancelled: the monitor never moves on
    assert (await get(functions, operation_id)).json["status"] == "Canceled"


async def test_unknown_foreign_malformed_ids_get_one_404(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["everything"]))
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operation_id = operation_of(started)
    gets = log_count(servers["everything"], "tasks/get")

    replies = [
        await get(functions, operation_id, MALLORY),  # another caller
        await cancel(functions, operation_id, MALLORY),
        await get(functions, "op_" + "A" * 32),  # well formed, unknown
        await get(functions, "op_../../etc"),  # malformed
        await get(functions, operation_id[:-1] + ("A" if operation_id[-1] != "A" else "B")),  # tampered
    ]

    for reply in replies:
        assert reply.status == 404, reply.body
        assert reply.json["type"].endswith(":operation-not-found")
        assert reply.json["detail"] == replies[0].json["detail"]
    assert log_count(servers["everything"], "tasks/get") == gets  # the Scheduler was not asked
    assert (await get(functions, operation_id)).status == 200  # its owner still sees it
    await cancel(functions, operation_id)


async def test_respond_async_on_an_ordinary_tool_is_an_ordinary_call(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["everything"]))

    reply = await functions.call_tool("echo", {"message": "hi"}, headers={**ALICE, "Prefer": "respond-async"})

    assert reply.status == 200, reply.body
    assert header(reply, "Preference-Applied") is None
    assert "hi" in reply.json["content"][0]["text"]


async def test_many_pollers_share_one_tasks_get_per_poll_interval(servers, bridge_at, functions):
    from mcp_bridge.config.loader import load_settings
    from mcp_bridge.operations.service import operations_for
    from mcp_bridge.runtime import get_bridge

    await bridge_at(mcp_url(servers["everything"]))
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operation_id = operation_of(started)
    poller = (await operations_for(await get_bridge(), load_settings())).poller
    before = poller.gets

    replies = await asyncio.gather(*(get(functions, operation_id) for _ in range(50)))

    assert {reply.status for reply in replies} == {200}
    assert poller.gets - before == 1
    await cancel(functions, operation_id)


async def test_a_task_waiting_for_input_is_shown_and_can_be_canceled(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["interactive"]))
    started = await functions.call_tool(
        "confirm_delete", {"filename": "q3.xlsx"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    assert started.status == 202, started.body
    operation_id = operation_of(started)

    waiting = None
    for _ in range(20):
        waiting = await get(functions, operation_id)
        if waiting.json.get("inputRequired"):
            break
        await asyncio.sleep(0.3)

    assert waiting is not None and waiting.status == 200
    assert waiting.json["status"] == "Running"  # not terminal: a later step may answer it
    assert waiting.json["inputRequired"][0]["kind"] == "unknown"  # 2025-11-25: asked on tasks/result only
    # This server has no tasks/cancel: the bridge stops following the task and says so.
    canceled = await cancel(functions, operation_id)
    assert canceled.status == 200, canceled.body
    assert canceled.json["status"] == "Canceled"
    assert "could not cancel" in canceled.json["progress"]["statusMessage"]


async def test_a_killed_region_is_503_then_the_lost_task_fails_and_is_never_restarted(
    servers, bridge_at, functions
):
    everything = servers["everything"]
    await bridge_at(mcp_url(everything))
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operation_id = operation_of(started)
    sessions = log_count(everything, SESSION_OPENED)

    everything.kill()
    await asyncio.sleep(1.1)  # past the poll interval: the next poll asks the server
    down = await get(functions, operation_id)
    assert down.status == 503, down.body
    assert down.json["type"].endswith(":operation-region-unreachable")
    assert int(header(down, "Retry-After") or 0) >= 1

    everything.restart(45)
    await asyncio.sleep(1.1)
    lost = await get(functions, operation_id)
    assert lost.status == 200, lost.body
    assert lost.json["status"] == "Failed"
    assert lost.json["error"]["type"].endswith(":task-lost")
    # Not started again: a tools/call needs a session, and the bridge opened none on the new process.
    assert log_count(everything, SESSION_OPENED) == sessions
    assert (await get(functions, operation_id)).json["status"] == "Failed"  # and it stays so
    assert (await cancel(functions, operation_id)).status == 409


async def test_an_idempotency_key_replays_the_same_202_and_operation(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["everything"]))
    headers = {**ALICE, "Prefer": "respond-async", "Idempotency-Key": "research-tides-1"}
    first = await functions.call_tool(RESEARCH, {"topic": "tides"}, headers=headers)
    posts = log_count(servers["everything"], EVERYTHING.posts)
    again = await functions.call_tool(RESEARCH, {"topic": "tides"}, headers=headers)

    assert first.status == again.status == 202
    assert header(again, "Operation-Location") == header(first, "Operation-Location")
    assert again.body == first.body
    assert header(again, "Idempotent-Replayed") == "true"
    assert header(again, "Preference-Applied") == "respond-async"
    assert log_count(servers["everything"], EVERYTHING.posts) == posts  # the Scheduler was not called
    await cancel(functions, operation_of(first))


async def test_a_caller_at_its_limit_is_refused_before_the_scheduler_is_called(servers, bridge_at, functions):
    await bridge_at(mcp_url(servers["everything"]), operations_max_per_caller="2")
    headers = {**ALICE, "Prefer": "respond-async"}
    ids = [
        operation_of(await functions.call_tool(RESEARCH, {"topic": "x"}, headers=headers)) for _ in range(2)
    ]
    posts = log_count(servers["everything"], EVERYTHING.posts)

    refused = await functions.call_tool(RESEARCH, {"topic": "x"}, headers=headers)

    assert refused.status == 429, refused.body
    assert refused.json["type"].endswith(":too-many-operations")
    assert header(refused, "Retry-After")
    assert log_count(servers["everything"], EVERYTHING.posts) == posts
    other = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**MALLORY, "Prefer": "respond-async"}
    )
    assert other.status == 202  # the limit is per caller
    await cancel(functions, ids[0])  # a finished operation no longer counts
    again = await functions.call_tool(RESEARCH, {"topic": "x"}, headers=headers)
    assert again.status == 202, again.body
    for operation_id in (ids[1], operation_of(again)):
        await cancel(functions, operation_id)
    await cancel(functions, operation_of(other), MALLORY)


async def test_watch_follows_an_operation_to_its_end(servers, bridge_at, functions):
    from mcp_bridge.callers.principal import Caller
    from mcp_bridge.config.loader import load_settings
    from mcp_bridge.operations.service import operations_for
    from mcp_bridge.operations.watch import watch
    from mcp_bridge.runtime import get_bridge

    await bridge_at(mcp_url(servers["everything"]))
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operations = await operations_for(await get_bridge(), load_settings())
    alice = Caller(kind="principal", roles=frozenset({"Scheduler.Write"}), id="oid-alice")

    seen = [s async for s in watch(operations, operation_of(started), caller=alice, instance="/api/x")]

    messages = [s.monitor.progress.status_message for s in seen if s.monitor.progress]
    assert len(set(messages)) >= 3, messages  # the stages, each once
    assert seen[-1].terminal and seen[-1].succeeded
    assert not any(s.terminal for s in seen[:-1])


async def test_within_the_wait_a_task_that_needs_input_fails_fast_and_says_why(servers, bridge_at, functions):
    """The bridge waits on `tasks/result`, where a 2025-11-25 server delivers its requests for input;
    the TypeScript SDK refuses to send one to a client without the capability, and fails the task."""
    await bridge_at(mcp_url(servers["interactive"]))

    reply = await functions.call_tool(
        "confirm_delete", {"filename": "q3.xlsx"}, headers={**ALICE, "Prefer": "wait=5"}
    )

    assert reply.status == 422, reply.body
    assert reply.json["type"].endswith(":tool-error")
    assert "does not support form elicitation" in reply.json["content"][0]["text"]


async def test_the_session_holding_a_task_is_never_closed_and_never_shown(servers, bridge_at, functions):
    """server-everything drops a session's tasks with the session: the bridge never DELETEs one that
    holds tasks, and its id (the key to that session) appears in no answer."""
    from mcp_bridge.runtime import get_bridge

    everything = servers["everything"]
    await bridge_at(mcp_url(everything))
    closes = log_count(everything, "Received session termination request")
    assert (await functions.call_tool("echo", {"message": "hi"}, headers=ALICE)).status == 200
    await reset_bridge()
    assert log_count(everything, "Received session termination request") == closes + 1  # the usual close
    started = await functions.call_tool(
        RESEARCH, {"topic": "x"}, headers={**ALICE, "Prefer": "respond-async"}
    )
    operation_id = operation_of(started)
    session_id = (await get_bridge()).endpoints[0].session_id
    assert session_id
    polled = await get(functions, operation_id)
    canceled = await cancel(functions, operation_id)
    closes = log_count(everything, "Received session termination request")

    await reset_bridge()  # what an instance shutting down does: close every session

    assert log_count(everything, "Received session termination request") == closes
    for reply in (started, polled, canceled):
        assert session_id.encode() not in reply.body
        assert all(session_id not in value for value in reply.headers.values())
