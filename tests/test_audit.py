"""The audit trail: one `mcp_bridge.audit` line per tool call, complete, and never an argument or secret.

Each record says who (principal id, name, provider and roles, or "key"), the tool, the outcome and
status the caller got, the endpoint, the attempts and the idempotency key; refusals are recorded
too. Its fields also ride on the log record as attributes, which is what Azure Monitor stores as a
custom event (tests/telemetry_process/check_self_configured.py checks the envelopes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import pytest

from mcp_bridge.callers import audit
from mcp_bridge.callers.audit import CUSTOM_EVENT_ATTRIBUTE, EVENT_NAME
from mcp_bridge.runtime import get_bridge

from .conftest import API_KEY, IDENTITY_HEADER, SIGNING_KEY, control, schedule_arguments
from .test_caller_roles import READER, ROLES, WRITER
from .test_secrets import exercise, leaked

FIELDS = ("caller.kind", "tool", "outcome", "status", "attempts")


@pytest.fixture
def audit_lines(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)

    def lines() -> list[tuple[dict[str, Any], logging.LogRecord]]:
        found = []
        for record in caplog.records:
            if record.name == "mcp_bridge.audit":
                message = record.getMessage()
                assert message.startswith("audit {") and "\n" not in message
                found.append((json.loads(message.removeprefix("audit ")), record))
        return found

    return lines


async def test_every_call_is_one_complete_record_who_what_how_where(configure, functions, stack, audit_lines):
    await configure(scheduler_tool_roles=ROLES, website_auth_enabled="True")
    booked = await functions.call_tool(
        "scheduleConversation", schedule_arguments(), headers={**WRITER, "Idempotency-Key": "order-4711"}
    )
    refused = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=READER)

    assert (booked.status, refused.status) == (200, 403)
    (ok, ok_record), (denied, _) = audit_lines()
    assert ok == {
        "caller.kind": "principal",
        "caller.id": "oid-booking-service",
        "caller.name": "booking-service",
        "caller.idp": "aad",
        "caller.roles": "Scheduler.Write",
        "upstream": "scheduler",
        "tool": "scheduleConversation",
        "outcome": "ok",
        "status": 200,
        "endpoint": stack.east.mcp_url,
        "attempts": 1,
        "idempotency_key": "order-4711",
    }
    assert denied == {
        "caller.kind": "principal",
        "caller.id": "oid-status-dashboard",
        "caller.name": "status-dashboard",
        "caller.idp": "aad",
        "caller.roles": "Scheduler.Read",
        "upstream": "scheduler",
        "tool": "scheduleConversation",
        "outcome": "caller-not-allowed",
        "status": 403,
        "attempts": 0,
    }
    attributes = vars(ok_record)
    assert {key: attributes[key] for key in ok} == ok, "the fields ride along as attributes"
    assert attributes[CUSTOM_EVENT_ATTRIBUTE] == EVENT_NAME
    assert attributes["enduser.id"] == "oid-booking-service"
    assert ok_record.levelno == logging.INFO


async def test_key_callers_failovers_tool_errors_and_bad_principals_are_recorded(
    configure, functions, stack, audit_lines
):
    await configure(website_auth_enabled="True")
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 503, "times": 1, "tools": ["listConversations"]},
    )
    moved = await functions.call_tool("listConversations", {})
    missing = await functions.status("conv-missing")
    unreadable = await functions.call_tool(
        "listConversations", {}, headers={"X-MS-CLIENT-PRINCIPAL": "%%%", "X-MS-CLIENT-PRINCIPAL-ID": "x"}
    )
    bad_body = await functions.call_tool("listConversations", b"[1]")

    assert [r.status for r in (moved, missing, unreadable, bad_body)] == [200, 422, 401, 400]
    records = [fields for fields, _ in audit_lines()]
    assert records == [
        {"caller.kind": "key", "upstream": "scheduler", "tool": "listConversations", "outcome": "ok", "status": 200,
         "endpoint": stack.west.mcp_url, "attempts": 2},
        {"caller.kind": "key", "upstream": "scheduler", "tool": "getConversationStatus", "outcome": "tool_error", "status": 422,
         "endpoint": stack.east.mcp_url, "attempts": 1},
        {"caller.kind": "unknown", "upstream": "scheduler", "tool": "listConversations", "outcome": "invalid-principal", "status": 401,
         "attempts": 0},
        {"caller.kind": "key", "upstream": "scheduler", "tool": "listConversations", "outcome": "bad-request", "status": 400,
         "attempts": 0},
    ]  # fmt: skip


async def test_audit_records_hold_no_argument_result_token_or_key(configure, functions, stack, audit_lines):
    arguments = schedule_arguments(topic="Merger talks with Contoso")
    await configure(website_auth_enabled="True")
    await functions.call_tool("scheduleConversation", arguments, headers=WRITER)
    replies = await exercise(functions, stack)
    token = (await get_bridge()).tokens._token.token
    await configure(auth="api_key")
    replies += await exercise(functions, stack)

    records = audit_lines()
    assert len(records) == 1 + len(replies), "one record per call"
    text = "\n".join(record.getMessage() + json.dumps(vars(record), default=str) for _, record in records)
    secrets = {
        "token": token,
        "api key": API_KEY,
        "identity header": IDENTITY_HEADER,
        "signing key": SIGNING_KEY,
    }
    arguments_seen = {
        "topic": "Merger talks",
        "participant": "alice@example.com",
        "start": arguments["start_time"],
    }
    found = leaked(text, secrets | arguments_seen | {"bearer": "Bearer "})
    assert found == []


async def test_the_trail_does_not_depend_on_the_root_loggers_level(configure, functions, stack):
    """Production roots often sit at WARNING; the audit logger is set to INFO on first use."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    handler, level = Keep(), root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("mcp_bridge.audit").setLevel(logging.NOTSET)
    try:
        audit._level_set = False
        await configure()
        assert (await functions.call_tool("listConversations", {})).status == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [r.name for r in seen if r.name == "mcp_bridge.audit"] == ["mcp_bridge.audit"]


class _Kept(logging.Handler):
    """Keeps the audit records it is handed, and the value of `_CALL` in force when each was."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.getMessage(), _CALL.get()))


_CALL: ContextVar[str | None] = ContextVar("test_audit_call", default=None)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    handler = _Kept()
    logger = logging.getLogger("mcp_bridge.audit")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        audit.flush()
        logger.removeHandler(handler)


async def test_the_line_is_written_one_loop_turn_after_the_call_in_the_calls_context(kept):
    """Off the request path: the worker's logging thread is not woken while the call still runs."""

    async def one_call(name: str) -> None:
        _CALL.set(name)
        with audit.tool_call("listConversations"):
            audit.report(outcome="ok", status=200, attempts=1, endpoint="https://scheduler.example/mcp")
        assert kept.records == [], "nothing is handed to logging inside the request"

    await asyncio.gather(asyncio.create_task(one_call("first")), asyncio.create_task(one_call("second")))
    await asyncio.sleep(0)
    assert [context for _, context in kept.records] == ["first", "second"]
    assert all(message.startswith('audit {"caller.kind":"unknown"') for message, _ in kept.records)


async def test_flush_writes_what_is_pending_at_once_and_only_once(kept):
    for tool in ("a", "b"):
        with audit.tool_call(tool):
            pass
    audit.flush()
    assert [json.loads(message.removeprefix("audit "))["tool"] for message, _ in kept.records] == ["a", "b"]
    await asyncio.sleep(0)  # the scheduled turns find nothing left to write
    assert len(kept.records) == 2


def test_outside_an_event_loop_the_line_is_written_at_once(kept):
    with audit.tool_call("listConversations"):
        pass
    assert len(kept.records) == 1


def test_a_record_left_behind_by_a_closed_loop_is_written_before_the_next(kept):
    audit._pending.append([{"tool": "left-behind"}])  # its loop closed before its turn came

    async def next_call() -> None:
        with audit.tool_call("next"):
            pass
        await asyncio.sleep(0)

    asyncio.run(next_call())
    assert [json.loads(message.removeprefix("audit "))["tool"] for message, _ in kept.records] == [
        "left-behind",
        "next",
    ]
