"""Starting a tool call as an MCP task: which tools become tasks, and the one `tools/call` that
creates the task, with the same endpoint choice, schema check and failover rules as any call.

A task is started once. Only a request that never reached the server (or that the server refused
unrun because it forgot our session) moves on or is resent; any other failure is the caller's
problem, answered as a synchronous call's would be (`outcome-unknown` when the answer was lost).
What follows the start (polling, cancel, where the task lives) is `mcp_bridge.operations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types

from ..problems import OutcomeUnknown, Problem, Unavailable, UpstreamFailed
from ..upstream import task_wire
from ..upstream.catalog import CatalogTool
from ..upstream.session import UpstreamSession
from ..upstream.task_wire import TaskRoute, TaskSnapshot, TaskWireError
from .attempt import Attempt
from .outcomes import RetryableFailure

if TYPE_CHECKING:
    from .bridge import SchedulerBridge


@dataclass(frozen=True)
class TaskStart:
    """What starting a call as a task gave: a task (with the route back to it), or a result the
    server chose to give at once."""

    tool: str
    endpoint: str
    route: TaskRoute
    task: TaskSnapshot | None
    result: types.CallToolResult | None = None


def task_support(bridge: SchedulerBridge, name: str) -> str | None:
    """The tool's `taskSupport` from a cached listing (no await), or None when nothing is listed yet.

    This is all an ordinary call pays for tasks: a dictionary lookup per endpoint.
    """
    for session in bridge.endpoints:
        catalog = session.cached_catalog()
        if catalog is not None:
            tool = catalog.tools.get(name)
            if tool is not None:
                return effective_support(session, tool)
    return None


def effective_support(session: UpstreamSession, tool: CatalogTool) -> str:
    """The tool's listed `taskSupport`; on a 2026-07-28 server that serves the tasks extension, which
    lists none, `optional`: that server decides per call whether to make a task."""
    support = tool.task_support
    if support == "forbidden" and session.serves_tasks_extension:
        return "optional"
    return support


def refused_for_want_of_tasks(problem: Problem) -> bool:
    """A 2026-07-28 server refused the call, unrun, because it runs only as a task (-32021 naming
    the tasks extension): safe to start as a task."""
    return problem.extensions.get("jsonrpc_code") == task_wire.MISSING_CAPABILITY


async def start_task(
    bridge: SchedulerBridge,
    name: str,
    arguments: dict[str, Any],
    *,
    ttl_ms: int,
    progress_token: str | None = None,
) -> TaskStart:
    """Create the task on the best endpoint (raises `Problem`s, as `call_tool` does)."""
    runner = bridge._attempt  # one room: the call path's own runner and failover loop

    async def op(attempt: Attempt) -> TaskStart:
        tool = await runner.checked_tool(attempt, name, arguments)
        session = attempt.session
        if effective_support(session, tool) == "forbidden":  # the listing changed: an ordinary call
            result = await runner.call(attempt, name, arguments)
            return TaskStart(
                name, session.url, TaskRoute(session.url, session.protocol_version or ""), None, result
            )
        await runner.client(attempt)
        for resend in (False, True):
            route = TaskRoute(session.url, session.protocol_version or "", session.session_id)
            limit = attempt.limit(splittable=False)
            timeout = limit if limit is not None else max(0.1, attempt.deadline - _now())
            try:
                started = await task_wire.start(
                    bridge.http_client,
                    route,
                    name,
                    arguments,
                    ttl_ms=ttl_ms,
                    within=timeout,
                    progress_token=progress_token,
                )
            except TaskWireError as error:
                if error.kind == "lost" and not resend:
                    # The server forgot our session and refused the call unrun: reopen, send again.
                    client = await session.client()
                    await session.reconnect(client)
                    continue
                raise _problem(error, name, session.url) from None
            if isinstance(started, TaskSnapshot):
                return TaskStart(name, session.url, route, started)
            return TaskStart(name, session.url, route, None, types.CallToolResult.model_validate(started))
        raise AssertionError("unreachable")  # pragma: no cover

    return await bridge._loop.run(op)


def _problem(error: TaskWireError, tool: str, endpoint: str) -> Exception:
    if error.kind == "unreachable":
        return RetryableFailure(
            Unavailable(f"{endpoint} could not be reached", tool=tool, endpoint=endpoint),
            cause=str(error),
            free=True,
        )
    if error.kind == "rpc":
        return UpstreamFailed(
            f"the Scheduler refused to start {tool!r} as a task: {error}",
            tool=tool,
            endpoint=endpoint,
            jsonrpc_code=error.code,
        )
    return OutcomeUnknown(
        f"starting {tool!r} as a task: {error}; the task may exist", tool=tool, endpoint=endpoint
    )


def _now() -> float:
    import asyncio

    return asyncio.get_running_loop().time()
