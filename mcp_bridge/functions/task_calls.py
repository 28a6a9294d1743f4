"""Tool calls that become MCP tasks (docs/long-running.md): which calls, how long the bridge
waits for one, and the answer: the usual 200 or problem when it ends in time, else `202 Accepted`
with `Operation-Location`, `Retry-After` and the status monitor.

A tool with `taskSupport: required` always runs as a task; an `optional` one when the caller sends
`Prefer: respond-async` (RFC 7240), answered 202 at once, or with `wait=N` beside it, as soon as the
task ends within N seconds (RFC 7240 4.3). `Prefer: wait=N` shortens the synchronous wait. A preference
the bridge applied is named in `Preference-Applied`; one it did not apply is not. The routes that
follow an operation are in `operations_api`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func

from ..calls.tasks import refused_for_want_of_tasks, task_support

if TYPE_CHECKING:
    from ..callers.principal import Caller
    from ..calls.bridge import SchedulerBridge
    from ..config.settings import BridgeSettings
    from ..operations.records import OperationRecord
    from ..problems import Problem


def preferences(headers: Any) -> dict[str, str]:
    """`Prefer` (RFC 7240) as {token: value}; tokens lower-cased, parameters ignored."""
    found: dict[str, str] = {}
    for header in (headers.get("prefer") or "").split(","):
        token = header.split(";", 1)[0].strip()
        if not token:
            continue
        name, _, value = token.partition("=")
        found.setdefault(name.strip().lower(), value.strip().strip('"'))
    return found


def wants_task(bridge: SchedulerBridge, name: str, headers: Any) -> bool | None:
    """Whether this call runs as a task: True, False, or None when no listing is cached yet."""
    support = task_support(bridge, name)
    if support is None:
        return None
    if support == "required":
        return True
    return support == "optional" and "respond-async" in preferences(headers)


async def wants_task_listed(bridge: SchedulerBridge, name: str, headers: Any) -> bool | None:
    """`wants_task` once the tools are listed (the first call of a process that sent `Prefer`)."""
    await bridge.list_tools()
    return wants_task(bridge, name, headers)


def requires_task(bridge: SchedulerBridge, name: str, problem: Problem) -> bool:
    """After an ordinary call failed: whether it failed only because the tool runs as a task alone
    (listed `required`, or a 2026-07-28 refusal for want of the tasks extension), unrun."""
    return task_support(bridge, name) == "required" or refused_for_want_of_tasks(problem)


async def start_operation(
    req: func.HttpRequest,
    bridge: SchedulerBridge,
    settings: BridgeSettings,
    name: str,
    arguments: dict[str, Any],
    caller: Caller,
) -> func.HttpResponse:
    """Run `name` as a task: the usual 200 or problem when it ends within the wait, else 202."""
    from .. import models
    from ..callers import audit
    from ..operations.service import operations_for

    prefer = preferences(req.headers)
    respond_async = "respond-async" in prefer
    timeout = settings.scheduler_timeout_seconds
    applied: list[str] = []
    wait: float | None = None if respond_async else timeout
    if respond_async:
        applied.append("respond-async")
    asked = _seconds(prefer.get("wait"))
    if asked is not None and (asked < timeout or respond_async):
        # RFC 7240 4.3: with respond-async, wait=N asks for the answer itself if it is ready within N s.
        wait = min(asked, timeout)
        applied.append(f"wait={prefer['wait']}")
    operations = await operations_for(bridge, settings)
    instance = urlsplit(req.url).path
    started = await operations.start(name, arguments, caller=caller, wait=wait, instance=instance)
    headers = {"Cache-Control": "no-store"}
    if started.record is None:  # the server answered at once
        body = models.ToolCallResult.model_validate(started.result).to_json()
        return func.HttpResponse(body=body, status_code=200, mimetype="application/json", headers=headers)
    record, operation_id = started.record, started.operation_id
    assert operation_id is not None
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    if record.terminal and wait and record.status != "Canceled":  # ended in time: the synchronous answer
        problem = record.error or {}
        slug = str(problem.get("type", "ok")).rsplit(":", 1)[-1]
        audit.report(
            outcome=slug, status=int(problem.get("status", 200)), attempts=1, endpoint=record.endpoint
        )
        return _finished(record, headers)
    audit.report(outcome="accepted", status=202, attempts=1, endpoint=record.endpoint)
    view = _monitor(operation_id, record, started)
    headers["Operation-Location"] = _location(req, operation_id, settings.upstream_name)
    headers["Retry-After"] = str(max(1, math.ceil(record.poll_interval_ms / 1000)))
    return func.HttpResponse(
        body=view.to_json(), status_code=202, mimetype="application/json", headers=headers
    )


def _monitor(operation_id: str, record: OperationRecord, started: Any) -> Any:
    from ..operations import monitor

    return monitor.view(operation_id, record, started.snapshot)


def _finished(record: OperationRecord, headers: dict[str, str]) -> func.HttpResponse:
    """What a synchronous call would have answered for a task that ended within the wait."""
    from .. import models
    from ..problems import PROBLEM_CONTENT_TYPE

    if record.status == "Succeeded":
        body = models.ToolCallResult.model_validate(record.result).to_json()
        return func.HttpResponse(body=body, status_code=200, mimetype="application/json", headers=headers)
    problem = record.error or {}
    return func.HttpResponse(
        body=models.ProblemDetails.render(problem),
        status_code=int(problem.get("status", 500)),
        headers={**headers, "Content-Type": PROBLEM_CONTENT_TYPE},
    )


def _location(req: func.HttpRequest, operation_id: str, upstream: str) -> str:
    """The monitor's absolute URL, never with the caller's query string (it may hold a key); under
    `/api/servers/{server}/` when another upstream than the default runs the task."""
    from ..config.upstreams import DEFAULT_UPSTREAM

    parts = urlsplit(req.url)
    prefix = "/api" if upstream == DEFAULT_UPSTREAM else f"/api/servers/{upstream}"
    return f"{parts.scheme}://{parts.netloc}{prefix}/operations/{operation_id}"


def _seconds(value: str | None) -> float | None:
    if value is None or not value.isdigit():
        return None
    return float(value)
