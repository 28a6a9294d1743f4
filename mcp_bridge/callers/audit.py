"""One audit record per tool call: who, which tool, how it ended, where, after how many attempts.

The HTTP function opens the record around everything it does for a call, so refusals (401, 403,
bad input) are recorded as well as calls that reached the Scheduler:

    with audit.tool_call(name, idempotency_key=req.headers.get("idempotency-key")) as record:
        record.caller = caller_of(req.headers, settings)
        ...                                   # bridge.call_tool reports outcome, attempts, endpoint

The call path reports what it saw through `report()` (a context variable carries the open record,
as `wire.current_trace` carries the wire's), so the record agrees with the tool span and the
bridge's log line. A call that never reached the call path takes its outcome and status from the
problem it was answered with.

Each record is one log line under the `mcp_bridge.audit` logger: `audit {json}`, always one line
(JSON escapes every control character). Its fields ride along as the record's attributes, with
`microsoft.custom_event.name`, so when telemetry is on Azure Monitor stores it as a custom event
(`customEvents`, name `SchedulerBridgeToolCall`) and `enduser.id` as the user's authenticated id.
A record holds no argument, result, token or key: it is built from names and numbers the bridge
decided, never from a request body.

The line is handed to logging one event-loop turn after the call ends (`loop.call_soon`, in a copy
of the call's context, so its OpenTelemetry span stays attached), not inside the request. A log
handler like the Functions worker's passes each record to another thread; woken from inside the
request, that thread competed with the call for the interpreter and cost several times the line's
own work (docs/performance.md, section 10). One turn later the loop is about to wait on the network
anyway. Outside a running loop the line is written at once; `flush()` writes what is pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .. import redaction
from ..problems import Problem
from ..telemetry._names import safe_endpoint
from .principal import Caller

_LOGGER = logging.getLogger(__name__)  # "mcp_bridge.callers.audit": this module's own diagnostics
AUDIT_LOGGER = logging.getLogger("mcp_bridge.audit")
EVENT_NAME = "SchedulerBridgeToolCall"
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"  # what the Azure Monitor exporter looks for
ENDUSER_ID = "enduser.id"
MAX_IDEMPOTENCY_KEY = 255
MAX_TOOL = 128


@dataclass(slots=True)
class AuditRecord:
    """One tool call as the audit trail keeps it; `caller` stays None when it could not be read."""

    tool: str
    idempotency_key: str | None = None
    upstream: str | None = None  # which MCP server (MCP_UPSTREAMS); the default's name too
    caller: Caller | None = None
    outcome: str | None = None
    status: int | None = None
    attempts: int = 0
    endpoint: str | None = None

    def fields(self) -> dict[str, Any]:
        """The record as flat, present-only fields: the log line's JSON and the event's attributes."""
        caller = self.caller
        kind = "unknown" if caller is None else caller.kind
        fields: dict[str, Any] = {"caller.kind": kind}
        if caller is not None and caller.is_principal:
            fields["caller.id"] = caller.id
            fields["caller.name"] = caller.name
            fields["caller.idp"] = caller.identity_provider
        if caller is not None:
            fields["caller.roles"] = ",".join(sorted(caller.roles))
        fields.update(
            {
                "upstream": self.upstream,
                "tool": self.tool[:MAX_TOOL],
                "outcome": self.outcome or "error",
                "status": self.status if self.status is not None else 500,
                "endpoint": safe_endpoint(self.endpoint),
                "attempts": self.attempts,
                "idempotency_key": self.idempotency_key,
            }
        )
        return {key: value for key, value in fields.items() if value is not None and value != ""}


_current: ContextVar[AuditRecord | None] = ContextVar("scheduler_bridge_audit_record", default=None)
_level_set = False
_pending: deque[list[dict[str, Any]]] = deque()
"""Records waiting for their loop turn, oldest first, each as `[fields]` (emptied once written)."""


@contextmanager
def tool_call(
    tool: str, *, idempotency_key: str | None = None, upstream: str | None = None
) -> Iterator[AuditRecord]:
    """Open the audit record of one tool call; it is written when the block ends, however it ends."""
    # A client-chosen identifier, not a secret; redacted all the same in case a client put one there.
    key = redaction.redact(idempotency_key[:MAX_IDEMPOTENCY_KEY]) if idempotency_key else None
    record = AuditRecord(tool=tool, idempotency_key=key, upstream=upstream)
    token = _current.set(record)
    try:
        yield record
    except Problem as problem:
        _conclude(record, problem.slug, problem.status)
        raise
    except Exception:
        _conclude(record, "error", 500)
        raise
    except BaseException:  # cancelled: the caller went away or the host is stopping
        _conclude(record, "cancelled", 499)
        raise
    else:
        if record.outcome is None:
            record.outcome, record.status = "ok", 200
    finally:
        _current.reset(token)
        write(record)


def report(*, outcome: str, status: int, attempts: int, endpoint: str | None) -> None:
    """What the call path saw (the same values its span and log line get); no-op outside a record."""
    record = _current.get()
    if record is not None:
        record.outcome, record.status, record.attempts, record.endpoint = outcome, status, attempts, endpoint


def current_caller_id() -> str | None:
    """The principal id of the call in progress, for `enduser.id` on its span; None for key callers."""
    record = _current.get()
    caller = None if record is None else record.caller
    return caller.id if caller is not None and caller.is_principal else None


def write(record: AuditRecord) -> None:
    """Emit `record` as one INFO line on `mcp_bridge.audit`, its fields as attributes: on the next
    turn of the running event loop, or now when there is none."""
    global _level_set
    if not _level_set:
        # An audit trail must not depend on the root logger's level; handlers still decide where
        # it goes. Done on first use, not at import.
        if AUDIT_LOGGER.level == logging.NOTSET:
            AUDIT_LOGGER.setLevel(logging.INFO)
        _level_set = True
    if not AUDIT_LOGGER.isEnabledFor(logging.INFO):
        return
    fields = record.fields()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _emit(fields)
        return
    entry = [fields]
    _pending.append(entry)
    loop.call_soon(_emit_pending, entry)  # runs in a copy of this call's context (asyncio's default)


def flush() -> None:
    """Write every pending record now, oldest first (tests; a host that is about to stop)."""
    while _pending:
        if head := _pending.popleft():
            _emit(head.pop())


def _emit_pending(entry: list[dict[str, Any]]) -> None:
    """Write `entry` and any older record still waiting (one whose loop closed before its turn)."""
    while entry and _pending:
        if head := _pending.popleft():
            _emit(head.pop())


def _emit(fields: dict[str, Any]) -> None:
    """Hand the line to the audit logger's handlers. The record is made directly, as `Logger.info`
    would make it but without walking the stack for the caller's frame (always this function), and
    still through the log record factory, so redaction sees it like any other line."""
    attributes: dict[str, Any] = {**fields, CUSTOM_EVENT_ATTRIBUTE: EVENT_NAME}
    if "caller.id" in fields:
        attributes[ENDUSER_ID] = fields["caller.id"]
    try:
        line = "audit " + json.dumps(fields, separators=(",", ":"))
        AUDIT_LOGGER.handle(
            AUDIT_LOGGER.makeRecord(
                AUDIT_LOGGER.name, logging.INFO, __file__, _EMIT_LINE, line, (), None, "_emit", attributes
            )
        )
    except Exception:  # pragma: no cover - a handler's failure must not fail the call
        _LOGGER.debug("Writing an audit record failed", exc_info=True)


_EMIT_LINE = _emit.__code__.co_firstlineno


def _conclude(record: AuditRecord, outcome: str, status: int) -> None:
    # The call path's own report stands, unless the answer changed after it (an "ok" call whose
    # response then failed is not what the caller received).
    if record.outcome is None or record.outcome == "ok":
        record.outcome, record.status = outcome, status
