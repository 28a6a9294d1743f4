"""`findCommonSlot`: the Scheduler's long-running tool, a search for one free slot across many calendars.

Finding a time that suits many people means reading every participant's calendar, one remote
calendar service call each, before intersecting them. With dozens of calendars that takes seconds to
minutes, so the tool reports progress after each calendar (`notifications/progress` on a plain call,
the task's `statusMessage` when it runs as a task; see devstack.scheduler_tasks) and may run as a
task (`taskSupport: optional`).

The devstack's calendars are synthetic but deterministic: a calendar's busy blocks follow from its
id and the day, so a test can predict the slot. `scan_seconds` is how long reading all of them takes
(the real service's latency, spread evenly over the calendars), so a caller gets the duration it asks
for. Working hours are 09:00-17:00 UTC, Monday to Friday: a window without enough working time (a
weekend, or shorter than the meeting) has no common slot, and the tool answers a tool error once it
has read every calendar, which is how tests make it fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_task_store import report_progress

_LOGGER = logging.getLogger(__name__)

FIND_COMMON_SLOT = "findCommonSlot"
WORKDAY_START = time(9, 0, tzinfo=UTC)
WORKDAY_END = time(17, 0, tzinfo=UTC)
SLOT_STEP = timedelta(minutes=15)
DEFAULT_WINDOW = timedelta(days=5)
MAX_WINDOW = timedelta(days=31)
MAX_SCAN_SECONDS = 600.0

ISO_DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$"
CalendarId = Annotated[
    str, Field(min_length=1, max_length=320, description="Calendar owner's e-mail or user id.")
]
DateTime = Annotated[
    str,
    Field(
        pattern=ISO_DATE_TIME_PATTERN,
        description="ISO-8601 date-time with a UTC offset.",
        json_schema_extra={"format": "date-time"},
    ),
]


class CommonSlot(BaseModel):
    """Result of findCommonSlot: the earliest slot every calendar has free."""

    start_time: str
    end_time: str
    duration_minutes: int
    calendars_checked: int
    region: str


def busy_blocks(calendar: str, day: date) -> list[tuple[datetime, datetime]]:
    """The synthetic busy blocks of `calendar` on `day`: zero to three, on the half hour, 30-90 minutes."""
    digest = hashlib.sha256(f"{calendar.casefold()}|{day.isoformat()}".encode()).digest()
    blocks = []
    for index in range(digest[0] % 4):
        half_hours_after_nine = digest[1 + 2 * index] % 16  # 09:00 .. 16:30
        length = timedelta(minutes=30 * (1 + digest[2 + 2 * index] % 3))
        start = datetime.combine(day, WORKDAY_START) + timedelta(minutes=30 * half_hours_after_nine)
        blocks.append((start, start + length))
    return blocks


def earliest_common_slot(
    busy: list[tuple[datetime, datetime]], start: datetime, end: datetime, duration: timedelta
) -> datetime | None:
    """The earliest quarter-hour start in [start, end] where `duration` fits work hours, clear of `busy`.

    One sweep over the merged busy blocks: linear in the calendars read, however long the window.
    """
    merged: list[tuple[datetime, datetime]] = []
    for block_start, block_end in sorted(busy):
        if merged and block_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], block_end))
        else:
            merged.append((block_start, block_end))
    candidate, index = _next_quarter_hour(start), 0
    while candidate + duration <= end:
        day = candidate.date()
        opens, closes = datetime.combine(day, WORKDAY_START), datetime.combine(day, WORKDAY_END)
        if day.weekday() >= 5 or candidate + duration > closes:
            candidate = datetime.combine(day + timedelta(days=1), WORKDAY_START)
            continue
        if candidate < opens:
            candidate = opens
            continue
        while index < len(merged) and merged[index][1] <= candidate:
            index += 1
        if index < len(merged) and merged[index][0] < candidate + duration:
            candidate = _next_quarter_hour(merged[index][1])
            continue
        return candidate
    return None


def register_slot_tool(server: MCPServer, *, counters: SchedulerCounters, region: str) -> None:
    """Register findCommonSlot on `server` (its task support is declared by devstack.scheduler_tasks)."""

    @server.tool(
        name=FIND_COMMON_SLOT,
        title="Find a common free slot",
        annotations=ToolAnnotations(
            title="Find a common free slot",
            readOnlyHint=True,
            destructiveHint=False,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def find_common_slot(
        calendars: Annotated[list[CalendarId], Field(min_length=2, max_length=200)],
        ctx: Context,
        duration_minutes: Annotated[int, Field(ge=15, le=480)] = 30,
        window_start: Annotated[DateTime | None, Field(description="Earliest start; default: now.")] = None,
        window_end: Annotated[
            DateTime | None, Field(description="Latest end; default: 5 days after the start.")
        ] = None,
        scan_seconds: Annotated[
            float,
            Field(
                ge=0, le=MAX_SCAN_SECONDS, description="How long reading all the calendars takes, in seconds."
            ),
        ] = 5.0,
    ) -> CommonSlot:
        """Find the earliest slot free in every calendar, in working hours (09:00-17:00 UTC, Mon-Fri).

        Reads each calendar in turn and reports progress after each one. Long searches can run as a task.
        """
        counters.record_tool_call(FIND_COMMON_SLOT)
        start = _parse(window_start, "window_start") if window_start else datetime.now(UTC)
        end = _parse(window_end, "window_end") if window_end else start + DEFAULT_WINDOW
        if end - start > MAX_WINDOW:
            raise ToolError(f"the window may span at most {MAX_WINDOW.days} days")
        duration = timedelta(minutes=duration_minutes)
        pause = scan_seconds / len(calendars)
        busy: list[tuple[datetime, datetime]] = []
        for index, calendar in enumerate(calendars, start=1):
            await asyncio.sleep(pause)
            day = start.date()
            while day <= end.date():
                busy.extend(busy_blocks(calendar, day))
                day += timedelta(days=1)
            await report_progress(ctx, index, len(calendars), f"Read {index} of {len(calendars)} calendars")
        slot = earliest_common_slot(busy, start, end, duration)
        if slot is None:
            raise ToolError(
                f"no common free slot of {duration_minutes} minutes in {len(calendars)} calendars between "
                f"{start.isoformat()} and {end.isoformat()} (working hours: 09:00-17:00 UTC, Mon-Fri)"
            )
        _LOGGER.info("found a common slot for %d calendars in %s", len(calendars), region)
        return CommonSlot(
            start_time=slot.isoformat(),
            end_time=(slot + duration).isoformat(),
            duration_minutes=duration_minutes,
            calendars_checked=len(calendars),
            region=region,
        )


def _parse(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ToolError(f"{name} {value!r} is not an ISO-8601 date-time") from exc
    if parsed.tzinfo is None:
        raise ToolError(f"{name} must include a UTC offset (e.g. 'Z' or '+02:00')")
    return parsed.astimezone(UTC)


def _next_quarter_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floor if floor == moment else floor + SLOT_STEP
