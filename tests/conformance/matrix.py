"""The conformance matrix: peer × scenario, collected while the tests run, printed as a table.

The tests record each cell (pass, FAIL, or n/a with the reason from the peer catalog) through the
`cell` fixture; the conftest writes them to `.cache/conformance/results.json` at the end of the
session and prints the table. `python -m tests.conformance.matrix [--markdown]` prints the table
of the last run again (the Markdown form is what docs/conformance.md shows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.conformance.peers import CACHE, PEERS, SCENARIOS

RESULTS = CACHE / "results.json"
PASS, FAIL, NOT_APPLICABLE, NOT_RUN = "pass", "FAIL", "n/a", "not run"


@dataclass
class Cell:
    """One peer × scenario; a scenario may be several tests, and the cell passes only if all do."""

    peer: str
    scenario: str
    status: str = NOT_RUN
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """A measured fact worth showing under the table (counts, timings)."""
        self.details.append(text)

    def not_applicable(self, reason: str) -> None:
        """Found at run time (e.g. the protocol the bridge negotiated); the test still asserts what it can."""
        self.status = NOT_APPLICABLE
        self.details.append(reason)

    def finish(self, *, passed: bool, reason: str | None = None) -> None:
        if not passed:
            self.status = FAIL
            if reason:
                self.details.append(reason)
        elif self.status not in (FAIL, NOT_APPLICABLE):
            self.status = PASS


@dataclass
class Run:
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def cell(self, peer: str, scenario: str) -> Cell:
        return self.cells.setdefault((peer, scenario), Cell(peer, scenario))

    def to_json(self) -> dict[str, Any]:
        table: dict[str, dict[str, Any]] = {}
        for peer in PEERS:
            row = table[peer.name] = {}
            for scenario in SCENARIOS:
                reason = peer.not_applicable.get(scenario)
                cell = self.cells.get((peer.name, scenario))
                if cell is not None:
                    row[scenario] = asdict(cell)
                elif reason is not None:
                    row[scenario] = asdict(Cell(peer.name, scenario, NOT_APPLICABLE, [reason]))
        return {
            "bridge_commit": bridge_commit(),
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "peers": {peer.name: {"package": peer.package, "version": peer.version} for peer in PEERS},
            "cells": table,
        }


def bridge_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+uncommitted changes" if dirty else "")


def render(results: dict[str, Any], *, markdown: bool = False) -> str:
    """The table, then one line per cell that has something to say."""
    header = ["peer", *SCENARIOS]
    rows = []
    notes = []
    for name, info in results["peers"].items():
        row = [f"{name} ({info['package']} {info['version']})"]
        for scenario in SCENARIOS:
            cell = results["cells"].get(name, {}).get(scenario)
            status = cell["status"] if cell else NOT_RUN
            row.append(f"**{status}**" if markdown and status == FAIL else status)
            if cell and cell["details"]:
                notes.append(f"{name} / {scenario} ({status}): " + "; ".join(cell["details"]))
        rows.append(row)
    title = f"Conformance matrix, bridge {results['bridge_commit']}, {results['finished']}"
    if markdown:
        lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
        lines += [f"| {' | '.join(row)} |" for row in rows]
        return "\n".join([title, "", *lines, "", *(f"- {note}" for note in notes)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join([title, *lines, "", *notes])


def save(run: Run) -> dict[str, Any]:
    results = run.to_json()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    try:
        results = json.loads(RESULTS.read_text())
    except OSError:
        print(f"no results yet at {RESULTS}: run `make conformance`", file=sys.stderr)
        return 1
    print(render(results, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
