"""Timer triggers: NCRONTAB schedules and the loop that fires them on the host's event loop.

Functions schedules are NCRONTAB with six fields, *seconds first*
(`0 */5 * * * *` = every five minutes); croniter's six-field form puts
seconds last unless told `second_at_beginning=True`, which is what we use. A
schedule may also be a TimeSpan (`00:05:00`, App Service plans only, but
handy locally) or `%SETTING%`, resolved from the environment.

Like the real host, a timer never overlaps itself and never replays every
missed occurrence: when an invocation overruns the next occurrence (or the
loop was blocked past it) the timer fires once right away with
`past_due=True` and then continues from now. Exceptions are logged and the
schedule carries on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest
from croniter import croniter

_LOGGER = logging.getLogger(__name__)

_SETTING_REFERENCE = re.compile(r"^%(?P<name>[^%]+)%$")
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{2}):(?P<seconds>\d{2})$")
PAST_DUE_TOLERANCE = timedelta(seconds=1)


class TimerScheduleError(ValueError):
    """A schedule that is neither six-field NCRONTAB nor a TimeSpan, or names a missing setting."""


@dataclass(frozen=True)
class TimerSchedule:
    """A parsed schedule; `next_after(t)` is the first occurrence strictly after `t` (UTC)."""

    expression: str
    interval: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


def parse_schedule(schedule: str, environ: Mapping[str, str] | None = None) -> TimerSchedule:
    """Parse NCRONTAB (6 fields, seconds first), a TimeSpan, or a `%SETTING%` naming either."""
    values = os.environ if environ is None else environ
    text = schedule.strip()
    reference = _SETTING_REFERENCE.match(text)
    if reference is not None:
        name = reference.group("name")
        if name not in values:
            raise TimerScheduleError(f"schedule {schedule!r} names setting {name!r}, which is not set")
        text = values[name].strip()
    timespan = _TIMESPAN.match(text)
    if timespan is not None:
        interval = timedelta(
            days=int(timespan.group("days") or 0),
            hours=int(timespan.group("hours")),
            minutes=int(timespan.group("minutes")),
            seconds=int(timespan.group("seconds")),
        )
        if interval <= timedelta(0):
            raise TimerScheduleError(f"TimeSpan schedule {text!r} must be positive")
        return TimerSchedule(expression=text, interval=interval)
    if len(text.split()) != 6:
        raise TimerScheduleError(
            f"schedule {text!r} must have six fields (seconds first), like '0 */5 * * * *'"
        )
    if not croniter.is_valid(text, second_at_beginning=True):
        raise TimerScheduleError(f"schedule {text!r} is not a valid NCRONTAB expression")
    return TimerSchedule(expression=text)


TimerInvoker = Callable[[TimerRequest], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


async def run_timer(
    name: str, schedule: TimerSchedule, invoke: TimerInvoker, *, run_on_startup: bool = False
) -> None:
    """Fire `invoke` on `schedule` until cancelled. `invoke` must not raise; this logs if it does."""
    last: datetime | None = None
    if run_on_startup:
        started = _now()
        await _fire(
            name, invoke, scheduled=started, last=None, following=schedule.next_after(started), behind=False
        )
        last = started
    scheduled = schedule.next_after(_now())
    behind = False
    while True:
        delay = (scheduled - _now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        following = schedule.next_after(scheduled)
        await _fire(name, invoke, scheduled=scheduled, last=last, following=following, behind=behind)
        last = scheduled
        now = _now()
        # Overran the next occurrence: fire once right away, marked past due, then carry on from now.
        behind = following <= now
        scheduled = now if behind else following


async def _fire(
    name: str,
    invoke: TimerInvoker,
    *,
    scheduled: datetime,
    last: datetime | None,
    following: datetime,
    behind: bool,
) -> None:
    fired_at = _now()
    past_due = behind or fired_at - scheduled > PAST_DUE_TOLERANCE
    request = TimerRequest(
        past_due=past_due,
        schedule_status={
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": following.isoformat(),
            "LastUpdated": fired_at.isoformat(),
        },
        schedule={"AdjustForDST": True},
    )
    _LOGGER.info("timer %s firing (scheduled %s, past_due=%s)", name, scheduled.isoformat(), past_due)
    try:
        await invoke(request)
    except Exception:
        _LOGGER.exception("timer function %s failed; the schedule continues", name)
