"""Chaos's short form: 50 callers against two regions of a third-party MCP server (`mcp` 1.30.0 from
the conformance matrix) while a seeded driver kills, restarts, hangs and fronts them.

`make soak` runs it for 3 minutes (docs/reliability.md); here for 25 seconds with a fixed random state.
It runs as its own process, as the full run does. The server's own log counts every tool run.
"""

from __future__ import annotations

import subprocess
import sys

from devstack.processes import REPO_ROOT
from tests.conformance.install import installed
from tests.conformance.peers import PEERS

from .test_soak import fields

PEER = "mcp-1.30"


def test_chaos_loses_no_safe_call_and_runs_nothing_twice():
    assert installed(next(p for p in PEERS if p.name == PEER)), "`make test` installs the peers (make peers)"
    run = subprocess.run(
        [sys.executable, "-m", "reliability.chaos", "--peer", PEER, "--seconds", "25", "--random-state", "7"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("CHAOS ")]
    assert lines, f"no CHAOS line (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    print(lines[0])
    chaos = fields(lines[0])
    assert int(chaos["calls"]) > 300
    assert sum(int(n.split(":")[1]) for n in chaos["actions"].split(",")) >= 2, chaos["actions"]
    assert int(chaos["unkeyed_ran_twice"]) == 0
    assert int(chaos["keyed_ran_twice"]) == 0
    assert int(chaos["safe_failed_while_one_region_healthy"]) == 0, run.stderr[-3000:]
    for region in ("region_a", "region_b"):
        counts = dict(part.split(":") for part in chaos[region].split(","))
        assert int(counts["runs"]) <= int(counts["tools_call"]), "a server ran more calls than reached it"
