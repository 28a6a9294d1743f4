"""Tasks on the Scheduler, in both protocol eras, built on the SDK's low-level hooks.

mcp 2.3's `MCPServer` carries the task types but serves no task methods, so the Scheduler serves
them itself, following each era's spec text:

- **2025-11-25** (core tasks, handshake era): `initialize` advertises `capabilities.tasks`
  (`list`, `cancel`, `requests.tools.call`); `tools/list` marks findCommonSlot
  `execution.taskSupport: "optional"`; a `tools/call` carrying `task` answers a `CreateTaskResult`
  (`{"task": {...}}`) at once; then `tasks/get`, `tasks/result` (blocks until terminal, answers
  exactly what the call would have, with the related-task `_meta`), `tasks/list` and `tasks/cancel`
  (a terminal task: -32602). A tool result with `isError` makes the task `failed`. The request's
  `progressToken` stays valid for the task's lifetime: progress goes to the session's standalone
  stream as well as into `statusMessage`.
- **2026-07-28** (`io.modelcontextprotocol/tasks`, SEP-2663): advertised under
  `capabilities.extensions`; a `tools/call` whose `_meta` client capabilities declare the extension
  gets `resultType: "task"` (the server's choice; this one always chooses a task then); `tasks/get`
  inlines `result` or `error`, `tasks/update` acknowledges, `tasks/cancel` acknowledges (even a
  finished task, which stays finished); there is no `tasks/result` or `tasks/list`. A tool result
  with `isError` is `completed`; `failed` is for JSON-RPC errors only. Progress on tasks is not
  part of that spec, so it shows only as `statusMessage`.

A plain `tools/call` is untouched in both eras: it runs inline and its progress goes to the
request's `progressToken`. The 2026 half is an SDK `Extension` (capability, `tools/call`
interceptor, methods); the 2025 `CreateTaskResult` and capability need a `Server` middleware,
because the runner sieves a handshake-era `tools/call` result into a `CallToolResult`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp_types.methods import serialize_server_result
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from devstack.scheduler_slots import FIND_COMMON_SLOT
from devstack.scheduler_task_store import SchedulerTask, TaskStore

_LOGGER = logging.getLogger(__name__)

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK = "io.modelcontextprotocol/related-task"
TASKS_SINCE = "2025-11-25"
TASK_SUPPORT: dict[str, Literal["optional", "required"]] = {FIND_COMMON_SLOT: "optional"}
LEGACY_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
LIST_PAGE_SIZE = 50
_MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)
_LEGACY = frozenset(v for v in HANDSHAKE_PROTOCOL_VERSIONS if v >= TASKS_SINCE)


class UpdateTaskParams(types.RequestParams):
    """`tasks/update` params (2026-07-28 extension): responses to the task's outstanding input requests."""

    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def _not_found(task_id: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=f"Failed to retrieve task: Task not found ({task_id})")


class SchedulerTasks(Extension):
    """The task support of one Scheduler region: the 2026 extension plus the 2025 middleware."""

    identifier = TASKS_EXTENSION

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", types.GetTaskRequestParams, self._get),
            MethodBinding("tasks/cancel", types.CancelTaskRequestParams, self._cancel),
            MethodBinding(
                "tasks/result", types.GetTaskPayloadRequestParams, self._result, protocol_versions=_LEGACY
            ),
            MethodBinding("tasks/list", types.PaginatedRequestParams, self._list, protocol_versions=_LEGACY),
            MethodBinding("tasks/update", UpdateTaskParams, self._update, protocol_versions=_MODERN),
        )

    # --- tools/call -----------------------------------------------------------------------------

    async def intercept_tool_call(
        self, params: types.CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """2026-07-28: a task-capable tool called by a client declaring the extension becomes a task."""
        if ctx.protocol_version not in _MODERN or params.name not in TASK_SUPPORT or not _declares(ctx):
            return await call_next(ctx)
        task = self.store.create(params.name, modern=True)

        async def work() -> None:
            try:
                result = await call_next(ctx)
            except MCPError as failure:
                task.error = failure.error
                task.move("failed", f"Tool execution failed: {failure.error.message}")
                return
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)  # type: ignore[union-attr]
            task.result = serialize_server_result("tools/call", ctx.protocol_version, dumped)
            task.move("completed", "The search finished.")

        async def progress(done: float, total: float | None, message: str | None) -> None:
            task.note_progress(message or f"{done:g} of {total:g}")

        self.store.start(task, work, progress)
        _LOGGER.info("tools/call %s became task %s (2026-07-28)", params.name, task.task_id)
        return {"resultType": "task", **task.wire()}

    async def legacy_middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        """2025-11-25: the `tasks` capability, `execution.taskSupport`, and task-augmented `tools/call`."""
        if ctx.method == "initialize":
            result = await call_next(ctx)
            if isinstance(result, dict) and result.get("protocolVersion") in _LEGACY:
                result["capabilities"] = {**result.get("capabilities", {}), "tasks": LEGACY_CAPABILITY}
            return result
        if ctx.protocol_version not in _LEGACY:
            return await call_next(ctx)
        if ctx.method == "tools/list":
            result = await call_next(ctx)
            for tool in result.get("tools", []) if isinstance(result, dict) else []:
                if tool.get("name") in TASK_SUPPORT:
                    tool["execution"] = {"taskSupport": TASK_SUPPORT[tool["name"]]}
            return result
        params = ctx.params if isinstance(ctx.params, dict) else {}
        if ctx.method != "tools/call" or params.get("task") is None:
            return await call_next(ctx)
        name = params.get("name")
        if name not in TASK_SUPPORT:
            raise MCPError(
                code=types.METHOD_NOT_FOUND, message=f"Tool {name!r} does not support task augmentation"
            )
        requested_ttl = params["task"].get("ttl") if isinstance(params["task"], dict) else None
        task = self.store.create(str(name), modern=False, requested_ttl_ms=requested_ttl)
        token = (params.get("_meta") or {}).get("progressToken")

        async def work() -> None:
            try:
                result = await call_next(ctx)
            except MCPError as failure:
                task.error = failure.error
                task.move("failed", f"Tool execution failed: {failure.error.message}")
                return
            task.result = result
            failed = bool(result.get("isError"))
            task.move("failed" if failed else "completed", "The tool reported an error." if failed else None)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            task.note_progress(message or f"{done:g} of {total:g}")
            if token is not None:
                await _progress_on_standalone_stream(ctx, task, token, done, total, message)

        self.store.start(task, work, progress)
        _LOGGER.info("tools/call %s became task %s (2025-11-25)", name, task.task_id)
        return {"task": task.wire()}

    # --- tasks/* ----------------------------------------------------------------------------------

    def _find(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> SchedulerTask:
        modern = ctx.protocol_version in _MODERN
        if modern:
            require_client_extension(ctx, TASKS_EXTENSION)
        task = self.store.get(task_id)
        if task is None or task.modern != modern:
            raise _not_found(task_id)
        return task

    async def _get(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams
    ) -> dict[str, Any]:
        return self._find(ctx, params.task_id).wire()

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
    ) -> dict[str, Any]:
        task = self._find(ctx, params.task_id)
        if task.modern:  # an acknowledgement; a finished task stays as it finished
            self.store.cancel(task)
            return {}
        if task.terminal:
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"Cannot cancel task: it is already {task.status}"
            )
        self.store.cancel(task)
        return task.wire()

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskPayloadRequestParams
    ) -> dict[str, Any]:
        task = self._find(ctx, params.task_id)
        await task.finished.wait()
        if task.error is not None:
            raise MCPError.from_error_data(task.error)
        if task.result is None:
            raise MCPError(
                code=types.INVALID_REQUEST, message=f"Task {task.task_id} was {task.status}; it has no result"
            )
        meta = {**(task.result.get("_meta") or {}), RELATED_TASK: {"taskId": task.task_id}}
        return {**task.result, "_meta": meta}

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> dict[str, Any]:
        tasks = self.store.listing(modern=False)
        cursor = params.cursor
        if cursor is not None and not (cursor.isdigit() and int(cursor) < len(tasks)):
            raise MCPError(code=types.INVALID_PARAMS, message="Invalid cursor")
        start = int(cursor) if cursor is not None else 0
        page = tasks[start : start + LIST_PAGE_SIZE]
        body: dict[str, Any] = {"tasks": [task.wire() for task in page]}
        if start + LIST_PAGE_SIZE < len(tasks):
            body["nextCursor"] = str(start + LIST_PAGE_SIZE)
        return body

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        self._find(ctx, params.task_id)  # findCommonSlot never asks for input: nothing is outstanding
        return {}


def _declares(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and TASKS_EXTENSION in capabilities.extensions)


async def _progress_on_standalone_stream(
    ctx: ServerRequestContext[Any, Any],
    task: SchedulerTask,
    token: str | int,
    done: float,
    total: float | None,
    message: str | None,
) -> None:
    """The call's response has gone, so its progress goes to the session's standalone (GET) stream.

    Best effort, as a real server's would be: no client listening, or a session already gone,
    must never stall or fail the task.
    """
    notification = types.ProgressNotification(
        params=types.ProgressNotificationParams(
            progress_token=token,
            progress=done,
            total=total,
            message=message,
            _meta={RELATED_TASK: {"taskId": task.task_id}},
        )
    )
    try:
        with anyio.move_on_after(1):
            await ctx.session.send_notification(notification)
    except Exception as exc:  # the session may be gone; the task goes on
        _LOGGER.debug("task %s progress not delivered: %s", task.task_id, type(exc).__name__)
