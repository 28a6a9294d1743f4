"""The soak's short form: one bridge process, a steady mix, both regions restarted, short tokens.

`make soak` runs it for 15 minutes (docs/reliability.md); here it runs for about 20 seconds, long
enough for a restart of each region and a few token refreshes, too short for a memory figure worth
gating on (it is printed, not asserted). It runs as its own process, as the full soak does.
"""

from __future__ import annotations

import subprocess
import sys

from devstack.processes import REPO_ROOT


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:])


def test_a_short_soak_loses_no_read_only_call_and_runs_no_keyed_call_twice():
    run = subprocess.run(
        [sys.executable, "-m", "reliability.soak", "--seconds", "18", "--restart-every", "7",
         "--rate", "50", "--workers", "6", "--token-lifetime", "12"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("SOAK ")]
    assert lines, f"no SOAK line (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    print(lines[0])
    soak = fields(lines[0])
    assert int(soak["restarts"]) == 2, "each region restarted once"
    assert int(soak["calls"]) > 500
    assert int(soak["read_only_failed_outside_windows"]) == 0
    assert int(soak["keyed_ran_twice"]) == 0
    assert int(soak["keyed_booked"]) <= int(soak["keyed"])
    assert int(soak["sessions_opened_bridge"]) >= 3, "a restarted region's session was opened again"
    assert int(soak["token_refreshes"]) >= 2, "tokens of 12 s were refreshed during the run"
    assert int(soak["unauthorized_at_server"]) == 0, "no call went out with an expired token"
    for name in ("fds", "tasks"):
        low, high = (int(n) for n in soak[name].split(".."))
        assert high - low <= 3, f"{name} not flat: {soak[name]}"
