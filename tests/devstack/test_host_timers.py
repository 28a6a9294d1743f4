"""NCRONTAB schedules (seconds first) and the timer loop's past-due and survive-errors behaviour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.timer import TimerRequest

from devstack.host_timers import TimerSchedule, TimerScheduleError, parse_schedule, run_timer

MIDNIGHT = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected_next"),
    [
        ("0 */5 * * * *", MIDNIGHT + timedelta(minutes=5)),  # seconds first: every five minutes
        ("*/10 * * * * *", MIDNIGHT + timedelta(seconds=10)),
        ("30 15 9 * * *", MIDNIGHT + timedelta(hours=9, minutes=15, seconds=30)),
        ("0 0 9 * * Mon-Fri", datetime(2026, 1, 1, 9, tzinfo=UTC)),  # 2026-01-01 is a Thursday
        ("00:01:30", MIDNIGHT + timedelta(seconds=90)),  # TimeSpan
    ],
)
def test_next_occurrence(expression: str, expected_next: datetime) -> None:
    assert parse_schedule(expression).next_after(MIDNIGHT) == expected_next


def test_schedule_from_a_setting() -> None:
    schedule = parse_schedule("%CLEANUP_SCHEDULE%", {"CLEANUP_SCHEDULE": "0 0 * * * *"})

    assert schedule.next_after(MIDNIGHT) == MIDNIGHT + timedelta(hours=1)


@pytest.mark.parametrize("expression", ["*/5 * * * *", "not a schedule", "99 * * * * *", "%MISSING_SETTING%"])
def test_invalid_schedules(expression: str) -> None:
    with pytest.raises(TimerScheduleError):
        parse_schedule(expression, {})


async def test_overrun_fires_once_past_due_and_errors_do_not_stop_the_timer() -> None:
    calls: list[TimerRequest] = []

    async def invoke(request: TimerRequest) -> None:
        calls.append(request)
        if len(calls) == 1:
            await asyncio.sleep(0.35)  # overruns the next 0.2 s occurrence
        if len(calls) == 2:
            raise RuntimeError("logged, and the schedule carries on")

    schedule = TimerSchedule(expression="every 0.2s", interval=timedelta(seconds=0.2))
    task = asyncio.create_task(run_timer("drill", schedule, invoke))
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert [call.past_due for call in calls[:3]] == [False, True, False]
