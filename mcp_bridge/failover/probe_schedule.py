"""How often the health probe runs, read from its NCRONTAB schedule (`HEALTH_PROBE_SCHEDULE`).

The interval travels in the shared health snapshot, so a reader can tell a fresh snapshot from one
whose prober is gone (older than three intervals: `snapshot.apply_snapshot`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def probe_interval_seconds(schedule: str) -> float:
    """Seconds between two runs of an NCRONTAB schedule (six fields, seconds first)."""
    from croniter import croniter

    fields = schedule.split()
    if len(fields) == 6:  # croniter wants the seconds field last
        fields = fields[1:] + fields[:1]
    try:
        iterator = croniter(" ".join(fields), datetime(2026, 1, 1, tzinfo=UTC))
        first = iterator.get_next(float)
        return float(iterator.get_next(float) - first)
    except (ValueError, KeyError):
        return 30.0
