"""The Scheduler's tasks: what one region remembers about long-running calls it accepted as tasks.

Tasks live in the memory of the process that created them, as in the SDKs' reference task stores
(TypeScript's `InMemoryTaskStore`): a task survives its client's session ending (it is keyed by task
id, not by session) but a killed or restarted region loses every task it held, and a `tasks/get` for
one then answers "task not found", which is what a bridge has to cope with after a region dies.

A task's wire shape depends on the era of the connection that created it (devstack.scheduler_tasks
owns the protocol): 2025-11-25 names its fields `ttl` and `pollInterval`, the 2026-07-28 extension
`ttlMs` and `pollIntervalMs` and inlines the result or error.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import ErrorData

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]
_task_progress: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar(
    "scheduler_task_progress", default=None
)


async def report_progress(ctx: Context, progress: float, total: float | None, message: str | None) -> None:
    """Report a tool's progress: to the task running it, or as `notifications/progress` to the caller.

    A plain call's progress goes to the request's `progressToken` (a no-op without one); a call
    running as a task reports into the task, which shows it as its `statusMessage`.
    """
    sink = _task_progress.get()
    if sink is not None:
        await sink(progress, total, message)
    else:
        await ctx.report_progress(progress, total, message)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class SchedulerTask:
    """One task: its status, and once terminal its result (a wire `CallToolResult`) or JSON-RPC error."""

    task_id: str
    tool: str
    modern: bool
    ttl_ms: int
    poll_interval_ms: int
    status: TaskStatus = "working"
    status_message: str | None = "Accepted; the search has started."
    created_at: datetime = field(default_factory=_now)
    last_updated_at: datetime = field(default_factory=_now)
    result: dict[str, Any] | None = None
    error: ErrorData | None = None
    runner: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(milliseconds=self.ttl_ms)

    def move(self, status: TaskStatus, message: str | None) -> None:
        """Change status; a terminal task never changes again (both eras' lifecycle rule)."""
        if self.terminal:
            return
        self.status = status
        self.status_message = message
        self.last_updated_at = _now()
        if self.terminal:
            self.finished.set()

    def note_progress(self, message: str) -> None:
        if not self.terminal:
            self.status_message = message
            self.last_updated_at = _now()

    def wire(self) -> dict[str, Any]:
        """The `Task` object in this task's era (2026-07-28: a `DetailedTask`, payload inlined)."""
        body: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": _iso(self.created_at),
            "lastUpdatedAt": _iso(self.last_updated_at),
        }
        if self.status_message is not None:
            body["statusMessage"] = self.status_message
        if not self.modern:
            body["ttl"] = self.ttl_ms
            body["pollInterval"] = self.poll_interval_ms
            return body
        body["ttlMs"] = self.ttl_ms
        body["pollIntervalMs"] = self.poll_interval_ms
        if self.status == "completed" and self.result is not None:
            body["result"] = self.result
        elif self.status == "failed" and self.error is not None:
            body["error"] = self.error.model_dump(by_alias=True, mode="json", exclude_none=True)
        return body


class TaskStore:
    """Every live task of one region process, keyed by id; expired tasks are dropped when next looked at."""

    def __init__(
        self, *, poll_interval_ms: int, default_ttl_ms: int = 3_600_000, max_ttl_ms: int = 86_400_000
    ):
        self.poll_interval_ms = poll_interval_ms
        self.default_ttl_ms = default_ttl_ms
        self.max_ttl_ms = max_ttl_ms
        self._tasks: dict[str, SchedulerTask] = {}

    def create(self, tool: str, *, modern: bool, requested_ttl_ms: int | None = None) -> SchedulerTask:
        ttl = (
            self.default_ttl_ms
            if requested_ttl_ms is None
            else max(1_000, min(requested_ttl_ms, self.max_ttl_ms))
        )
        task = SchedulerTask(
            task_id=str(uuid.uuid4()),
            tool=tool,
            modern=modern,
            ttl_ms=ttl,
            poll_interval_ms=self.poll_interval_ms,
        )
        self._tasks[task.task_id] = task
        return task

    def get(self, task_id: str) -> SchedulerTask | None:
        self._sweep()
        return self._tasks.get(task_id)

    def listing(self, *, modern: bool) -> list[SchedulerTask]:
        self._sweep()
        return [task for task in self._tasks.values() if task.modern == modern]

    def start(self, task: SchedulerTask, work: Callable[[], Awaitable[None]], sink: ProgressSink) -> None:
        """Run `work` in the background of this process, its progress going to `sink`."""

        async def run() -> None:
            _task_progress.set(sink)
            await work()

        task.runner = asyncio.create_task(run(), name=f"scheduler-task-{task.task_id}")

    def cancel(self, task: SchedulerTask) -> None:
        task.move("cancelled", "The task was cancelled by request.")
        if task.runner is not None and not task.runner.done():
            task.runner.cancel()

    def _sweep(self) -> None:
        now = _now()
        for task_id in [t.task_id for t in self._tasks.values() if t.expires_at <= now]:
            expired = self._tasks.pop(task_id)
            if expired.runner is not None and not expired.runner.done():
                expired.runner.cancel()
