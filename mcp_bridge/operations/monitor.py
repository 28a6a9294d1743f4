"""The status monitor: an MCP task's state in the shape of the Azure REST API guidelines.

| MCP task           | monitor `status` | and                                                     |
|--------------------|------------------|---------------------------------------------------------|
| `working`          | `Running`        | `progress.statusMessage`                                |
| `input_required`   | `Running`        | `inputRequired`: what the server asked, in its words    |
| `completed`        | `Succeeded`      | `result`: the body a synchronous 200 would have carried |
| `completed`+isError| `Failed`         | `error`: the `tool-error` problem                       |
| `failed`           | `Failed`         | `error`: `upstream-error` with the JSON-RPC error       |
| `cancelled`        | `Canceled`       |                                                         |
| lost by the server | `Failed`         | `error`: `task-lost`                                    |
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mcp_types as types

from .. import models
from ..calls.outcomes import dump_content
from ..problems import Problem, ToolFailed, UpstreamFailed
from ..upstream.task_wire import TaskSnapshot
from .records import OperationRecord


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_body(tool: str, endpoint: str, result: types.CallToolResult) -> dict[str, Any]:
    """What a synchronous 200 carries for `result` (models.ToolCallResult), as a dict."""
    body = models.ToolCallResult(
        tool=tool,
        endpoint=endpoint,
        content=dump_content(result),
        structured_content=result.structured_content,
    )
    return body.model_dump(mode="json", by_alias=True)


def tool_error(tool: str, endpoint: str, result: types.CallToolResult) -> Problem:
    return ToolFailed(
        f"the Scheduler's tool {tool!r} reported an error",
        tool=tool,
        endpoint=endpoint,
        content=dump_content(result),
    )


def conclude(record: OperationRecord, snapshot: TaskSnapshot, instance: str) -> OperationRecord:
    """The record with the task's terminal outcome written into it (result, or problem)."""
    end: dict[str, Any] = {"updated_at": now_iso(), "status_message": snapshot.status_message}
    if snapshot.status == "cancelled":
        end["status"] = "Canceled"
    elif snapshot.status == "completed" and snapshot.result is not None:
        try:
            result = types.CallToolResult.model_validate(snapshot.result)
        except ValueError:
            end.update(
                status="Failed",
                error=_problem(
                    UpstreamFailed(
                        "the task completed, but its result is not a tool result", tool=record.tool
                    ),
                    instance,
                ),
            )
        else:
            if result.is_error:
                end.update(
                    status="Failed",
                    error=_problem(tool_error(record.tool, record.endpoint, result), instance),
                )
            else:
                end.update(status="Succeeded", result=result_body(record.tool, record.endpoint, result))
    else:  # failed: a JSON-RPC error (2026), or a failed tool result (2025 tasks/result)
        if snapshot.result is not None:
            try:
                result = types.CallToolResult.model_validate(snapshot.result)
                problem: Problem = tool_error(record.tool, record.endpoint, result)
            except ValueError:
                problem = UpstreamFailed("the task failed", tool=record.tool, endpoint=record.endpoint)
        else:
            error = snapshot.error or {}
            reason = str(error.get("message") or snapshot.status_message or "no reason given")[:300]
            problem = UpstreamFailed(
                f"the task failed: {reason}",
                tool=record.tool,
                endpoint=record.endpoint,
                **({"jsonrpc_code": error["code"]} if isinstance(error.get("code"), int) else {}),
            )
        end.update(status="Failed", error=_problem(problem, instance))
    return record.model_copy(update=end)


def fail(record: OperationRecord, problem: Problem, instance: str) -> OperationRecord:
    return record.model_copy(
        update={"status": "Failed", "updated_at": now_iso(), "error": _problem(problem, instance)}
    )


def _problem(problem: Problem, instance: str) -> dict[str, Any]:
    return problem.to_dict(instance)


def view(
    operation_id: str, record: OperationRecord, snapshot: TaskSnapshot | None
) -> models.OperationMonitor:
    """The monitor for `record`, with the latest reading of a task still running."""
    progress = None
    inputs = None
    updated = record.updated_at
    message = record.status_message
    percent = None
    if snapshot is not None and not record.terminal:
        message = snapshot.status_message or message
        updated = snapshot.last_updated_at or updated
        percent = _percent(snapshot.progress)
        if snapshot.status == "input_required":
            inputs = _inputs(snapshot, record.input_message)
    if message is not None or percent is not None:
        progress = models.OperationProgress(percent_complete=percent, status_message=message)
    return models.OperationMonitor(
        id=operation_id,
        status=record.status,
        tool=record.tool,
        created_date_time=record.created_at,
        last_updated_date_time=updated,
        progress=progress,
        input_required=inputs,
        result=models.ToolCallResult.model_validate(record.result) if record.result else None,
        error=models.ProblemDetails.model_validate(record.error) if record.error else None,
    )


def _percent(progress: dict[str, Any] | None) -> float | None:
    if not progress:
        return None
    done, total = progress.get("progress"), progress.get("total")
    if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
        return round(min(100.0, max(0.0, 100.0 * done / total)), 1)
    return None


def _inputs(snapshot: TaskSnapshot, remembered: str | None) -> list[models.InputRequest]:
    """What the task waits for. 2026-07-28 lists the requests (`inputRequests`); a 2025-11-25 server
    hands them out only on `tasks/result`: what the bridge saw there while it waited for the task
    (`remembered`), else the task's status message."""
    found = []
    for request in (snapshot.input_requests or {}).values():
        if not isinstance(request, dict):
            continue
        method = str(request.get("method", ""))
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        kind = {
            "elicitation/create": "elicitation",
            "sampling/createMessage": "sampling",
            "roots/list": "roots",
        }
        message = params.get("message")
        found.append(
            models.InputRequest(
                kind=kind.get(method, "unknown"),
                message=str(message)[:1000] if message is not None else None,
            )
        )
    if not found and remembered is not None:
        found.append(models.InputRequest(kind="elicitation", message=remembered))
    if not found:
        found.append(models.InputRequest(kind="unknown", message=snapshot.status_message))
    return found
