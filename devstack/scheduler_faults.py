"""Injected failures on the Scheduler's MCP path, armed through `POST /_devstack/faults`.

The bridge's retry, failover and timeout behaviour can only be tested
against a Scheduler that misbehaves on cue, the way real ones do behind a
gateway: a 503 with Retry-After, a slow answer, an answer that never comes,
and the nasty one - the tool *ran* but the caller never learns it
(`after_execute`), which is exactly when a non-idempotent call must not be
blindly retried.

A fault applies to the next `times` MCP POSTs (optionally only `tools/call`
for the named tools) and then disarms itself. GET streams and DELETEs pass
untouched.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_observer import is_mcp_path, jsonrpc_summary

_LOGGER = logging.getLogger(__name__)

_AFTER_EXECUTE_DEFAULT_STATUS = 502


class FaultPlan(BaseModel):
    """The JSON body of `POST /_devstack/faults`."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=100, le=599, description="Answer with this HTTP status.")
    retry_after: str | None = Field(default=None, description="Retry-After header value sent with `status`.")
    location: str | None = Field(default=None, description="Location header sent with `status` (a redirect).")
    times: int | None = Field(
        default=1, ge=1, description="How many matching requests; null = until cleared."
    )
    delay_seconds: float = Field(default=0.0, ge=0, le=600, description="Wait this long first.")
    hang: bool = Field(default=False, description="Accept the request and never answer.")
    tools: list[str] | None = Field(default=None, description="Only tools/call requests for these tools.")
    after_execute: bool = Field(default=False, description="Run the request, then fail (status or drop).")
    drop_connection: bool = Field(default=False, description="Abort the connection instead of answering.")

    @model_validator(mode="after")
    def _one_failure_mode(self) -> FaultPlan:
        if self.hang and (self.after_execute or self.drop_connection or self.status is not None):
            raise ValueError("hang cannot be combined with status, after_execute or drop_connection")
        return self


@dataclass
class FaultState:
    """The armed fault, if any; shared by the control API and the middleware."""

    plan: FaultPlan | None = None
    remaining: int | None = None

    def arm(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.remaining = plan.times

    def clear(self) -> None:
        self.plan = None
        self.remaining = None

    def take(self, method: str | None, tool_name: str | None) -> FaultPlan | None:
        """Return the plan if this request matches it, consuming one of its `times`."""
        plan = self.plan
        if plan is None:
            return None
        if plan.tools is not None and (method != "tools/call" or tool_name not in plan.tools):
            return None
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.clear()
        return plan

    def describe(self) -> dict[str, object]:
        return {"plan": None if self.plan is None else self.plan.model_dump(), "remaining": self.remaining}


class SchedulerFaultMiddleware:
    """Applies the armed `FaultPlan` to matching MCP POSTs."""

    def __init__(
        self, app: ASGIApp, *, faults: FaultState, counters: SchedulerCounters, mcp_path: str
    ) -> None:
        self._app = app
        self._faults = faults
        self._counters = counters
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_mcp_path(scope, self._mcp_path) or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        summary = jsonrpc_summary(scope)
        plan = self._faults.take(summary.method if summary else None, summary.tool_name if summary else None)
        if plan is None:
            await self._app(scope, receive, send)
            return
        self._counters.faults_injected += 1
        _LOGGER.warning(
            "injecting fault into %s (tool=%s): %s",
            summary.method if summary else None,
            summary.tool_name if summary else None,
            plan.model_dump(exclude_defaults=True),
        )
        if plan.delay_seconds:
            await asyncio.sleep(plan.delay_seconds)
        if plan.hang:
            await _wait_for_disconnect(receive)
            return
        if plan.after_execute:
            await self._app(scope, receive, _discard)
            await _fail(send, plan, default_status=_AFTER_EXECUTE_DEFAULT_STATUS)
            return
        if plan.status is None and not plan.drop_connection:
            await self._app(scope, receive, send)  # a pure delay: a slow but healthy Scheduler
            return
        await _fail(send, plan, default_status=plan.status or 503)


async def _discard(_message: Message) -> None:
    """`send` for a response the caller must never see."""


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _fail(send: Send, plan: FaultPlan, *, default_status: int) -> None:
    if plan.drop_connection:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"jsonrpc":', "more_body": True})
        # Returning with the body incomplete makes uvicorn close the socket: the client sees the
        # connection drop mid-response (uvicorn logs one "without completing response" line).
        return
    status = plan.status or default_status
    body = f"devstack injected fault: HTTP {status}\n".encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if plan.retry_after is not None:
        headers.append((b"retry-after", plan.retry_after.encode()))
    if plan.location is not None:
        headers.append((b"location", plan.location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
