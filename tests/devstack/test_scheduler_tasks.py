"""findCommonSlot, the Scheduler's long-running tool: progress, and tasks in both protocol eras.

A real mcp `Client` talks to the in-process regions. mcp 2.3's client has no task helper, so these
tests speak the task methods the way any 2.3 client must: typed `tasks/*` requests through
`session.send_request`, a `ResultClaim` for the 2026 `resultType: "task"`, and, for the 2025
`CreateTaskResult` (which the client would validate as a `CallToolResult`), the session's raw
request path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx2
import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from pydantic import ConfigDict

from tests.devstack.conftest import SchedulerServer, auth_headers, counters, mcp_client

CALENDARS = ["ana@contoso.example", "bo@contoso.example", "cy@contoso.example"]
WEEKEND = {"window_start": "2030-01-05T00:00:00Z", "window_end": "2030-01-06T23:00:00Z"}  # Sat-Sun


class TaskHandle(types.Result):
    """The 2026-07-28 `CreateTaskResult` (`resultType: "task"`)."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    poll_interval_ms: int | None = None


class TaskState(types.Result):
    """A `tasks/get` answer in either era, every wire field kept."""

    model_config = ConfigDict(extra="allow")


async def _unused_resolver(handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
    raise AssertionError("these tests poll the task themselves")


class TasksExtension(ClientExtension):
    """Declares `io.modelcontextprotocol/tasks` on every request and claims `resultType: "task"`."""

    identifier = "io.modelcontextprotocol/tasks"

    def claims(self) -> tuple[ResultClaim[Any], ...]:
        return (ResultClaim(result_type="task", model=TaskHandle, resolve=_unused_resolver),)


@contextlib.asynccontextmanager
async def _tasks_client(region: SchedulerServer) -> AsyncIterator[Client]:
    """A client declaring the tasks extension (2026-07-28), so the Scheduler may answer with a task."""
    async with httpx2.AsyncClient(headers=auth_headers(), timeout=10) as http:
        transport = streamable_http_client(region.mcp_url, http_client=http)
        async with Client(transport, extensions=[TasksExtension()]) as client:
            yield client


def search(**extra: Any) -> dict[str, Any]:
    return {"calendars": CALENDARS, "scan_seconds": 0.3, **extra}


async def task_call(client: Client, arguments: dict[str, Any]) -> dict[str, Any]:
    """A 2025-11-25 task-augmented tools/call; its `CreateTaskResult` taken off the session's raw path."""
    session = client.session
    data: dict[str, Any] = {
        "method": "tools/call",
        "params": {"name": "findCommonSlot", "arguments": arguments, "task": {"ttl": 60_000}},
    }
    options: dict[str, Any] = {}
    session._stamp(data, options)  # type: ignore[attr-defined]
    return await session._dispatcher.send_raw_request("tools/call", data["params"], options)  # type: ignore[attr-defined]


async def task_get(client: Client, task_id: str) -> dict[str, Any]:
    request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id))
    state = await client.session.send_request(request, TaskState)
    return state.model_dump(by_alias=True, exclude_none=True)


async def task_cancel(client: Client, task_id: str) -> dict[str, Any]:
    request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
    return (await client.session.send_request(request, TaskState)).model_dump(
        by_alias=True, exclude_none=True
    )


async def until_terminal(client: Client, task_id: str) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    for _ in range(200):
        state = await task_get(client, task_id)
        seen.append(state.get("statusMessage", ""))
        if state["status"] in ("completed", "failed", "cancelled"):
            return state, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never finished")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_plain_call_reports_progress_then_the_slot(
    scheduler: SchedulerServer, legacy_scheduler: SchedulerServer, mode: str
) -> None:
    region = scheduler if mode == "auto" else legacy_scheduler
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with mcp_client(region.mcp_url) as client:
        result = await client.call_tool("findCommonSlot", search(), progress_callback=on_progress)

    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["calendars_checked"] == 3
    assert result.structured_content["region"] == region.region
    assert progress == [(i, 3, f"Read {i} of 3 calendars") for i in (1, 2, 3)]


async def test_an_impossible_window_is_a_tool_error_after_the_scan(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as client:
        result = await client.call_tool("findCommonSlot", search(**WEEKEND))

    assert result.is_error
    assert "no common free slot" in result.content[0].text  # type: ignore[union-attr]
    assert (await counters(scheduler.url))["tool_calls"]["findCommonSlot"] == 1  # type: ignore[index]


async def test_legacy_era_advertises_tasks_and_an_optional_tool(legacy_scheduler: SchedulerServer) -> None:
    async with mcp_client(legacy_scheduler.mcp_url) as client:
        tasks = client.server_capabilities.tasks
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert tasks is not None and tasks.list is not None and tasks.cancel is not None
    assert (
        tasks.requests is not None
        and tasks.requests.tools is not None
        and tasks.requests.tools.call is not None
    )
    assert tools["findCommonSlot"].execution is not None
    assert tools["findCommonSlot"].execution.task_support == "optional"
    assert tools["scheduleConversation"].execution is None  # absent means forbidden


async def test_legacy_task_succeeds_with_progress_in_its_status(legacy_scheduler: SchedulerServer) -> None:
    async with mcp_client(legacy_scheduler.mcp_url) as client:
        created = (await task_call(client, search(scan_seconds=0.6)))["task"]
        assert (
            created["status"] == "working" and created["ttl"] == 60_000 and created["pollInterval"] == 1_000
        )
        final, messages = await until_terminal(client, created["taskId"])
        payload = await client.session.send_request(
            types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=created["taskId"])),
            TaskState,
        )
        listed = await client.session.send_request(types.ListTasksRequest(), TaskState)

    assert final["status"] == "completed"
    assert any(message.startswith("Read 1 of 3") for message in messages)
    body = payload.model_dump(by_alias=True)
    assert body["structuredContent"]["calendars_checked"] == 3 and body["isError"] is False
    assert body["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": created["taskId"]}
    assert created["taskId"] in [task["taskId"] for task in listed.model_dump(by_alias=True)["tasks"]]


async def test_legacy_task_fails_and_cancels(legacy_scheduler: SchedulerServer) -> None:
    async with mcp_client(legacy_scheduler.mcp_url) as client:
        failing = (await task_call(client, search(**WEEKEND)))["task"]
        slow = (await task_call(client, search(scan_seconds=30)))["task"]
        cancelled = await task_cancel(client, slow["taskId"])
        failed, _ = await until_terminal(client, failing["taskId"])
        with pytest.raises(MCPError) as again:
            await task_cancel(client, slow["taskId"])
        with pytest.raises(MCPError) as unknown:
            await task_get(client, "no-such-task")

    assert cancelled["status"] == "cancelled"
    assert (await task_get_fresh(legacy_scheduler, slow["taskId"]))["status"] == "cancelled"
    assert failed["status"] == "failed"  # 2025-11-25: a tool result with isError fails the task
    assert again.value.code == types.INVALID_PARAMS  # cancelling a terminal task
    assert unknown.value.code == types.INVALID_PARAMS


async def task_get_fresh(region: SchedulerServer, task_id: str) -> dict[str, Any]:
    """Tasks outlive the session that made them: a new session still finds one."""
    async with mcp_client(region.mcp_url, mode="legacy") as client:
        return await task_get(client, task_id)


async def test_modern_task_succeeds_fails_and_cancels(scheduler: SchedulerServer) -> None:
    async with mcp_client(scheduler.mcp_url) as plain:
        assert plain.server_capabilities.extensions == {"io.modelcontextprotocol/tasks": {}}
        ordinary = await plain.call_tool("findCommonSlot", search(scan_seconds=0))
    assert not ordinary.is_error  # a client that does not declare the extension never gets a task

    async with _tasks_client(scheduler) as client:
        ok = await client.session.call_tool("findCommonSlot", search(scan_seconds=0.6), allow_claimed=True)
        bad = await client.session.call_tool("findCommonSlot", search(**WEEKEND), allow_claimed=True)
        slow = await client.session.call_tool("findCommonSlot", search(scan_seconds=30), allow_claimed=True)
        assert isinstance(ok, TaskHandle) and isinstance(bad, TaskHandle) and isinstance(slow, TaskHandle)
        assert ok.poll_interval_ms == 1_000
        done, messages = await until_terminal(client, ok.task_id)
        tool_error, _ = await until_terminal(client, bad.task_id)
        assert await task_cancel(client, slow.task_id) == {"resultType": "complete", "_meta": done["_meta"]}
        cancelled = await task_get(client, slow.task_id)
        await task_cancel(client, ok.task_id)  # acknowledged; a finished task stays finished
        still_done = await task_get(client, ok.task_id)

    assert done["status"] == "completed" and done["result"]["structuredContent"]["calendars_checked"] == 3
    assert any(message.startswith("Read 1 of 3") for message in messages)
    assert (
        tool_error["status"] == "completed" and tool_error["result"]["isError"] is True
    )  # failed is JSON-RPC only
    assert cancelled["status"] == "cancelled"
    assert still_done["status"] == "completed"


async def test_modern_task_methods_need_the_extension(scheduler: SchedulerServer) -> None:
    async with _tasks_client(scheduler) as client:
        handle = await client.session.call_tool("findCommonSlot", search(scan_seconds=0), allow_claimed=True)
        assert isinstance(handle, TaskHandle)
        with pytest.raises(MCPError) as unknown:
            await task_get(client, "no-such-task")
    async with mcp_client(scheduler.mcp_url) as plain:
        with pytest.raises(MCPError) as undeclared:
            await task_get(plain, handle.task_id)

    assert unknown.value.code == types.INVALID_PARAMS
    assert undeclared.value.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
