"""The servers a soak runs against, and the app settings that point its bridge at them.

Two handshake-era Scheduler regions (sessions with `Mcp-Session-Id`, so every restart makes the
bridge's session stale) sharing one sqlite store, as real regions share one database, and the
managed identity endpoint issuing short-lived tokens. All on loopback, fresh secrets, logs in a
temporary directory.
"""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from devstack.processes import IdentityProcess, SchedulerProcess, free_port, start_identity, start_scheduler

AUDIENCE = "api://scheduler-devstack"
CLIENT_ID = "soak-client"


@dataclass
class SoakStack:
    identity: IdentityProcess
    regions: list[SchedulerProcess]
    log_dir: Path
    state_file: Path
    identity_header: str

    def stop(self) -> None:
        for process in (*self.regions, self.identity):
            process.stop()

    def bridge_env(self, *, probe_schedule: str, idempotency_ttl_seconds: float) -> dict[str, str]:
        return {
            "SCHEDULER_ENDPOINTS": ",".join(region.mcp_url for region in self.regions),
            "SCHEDULER_AUTH": "managed_identity",
            "SCHEDULER_TOKEN_SCOPE": f"{AUDIENCE}/.default",
            "IDENTITY_ENDPOINT": self.identity.token_url,
            "IDENTITY_HEADER": self.identity_header,
            "SCHEDULER_TIMEOUT_SECONDS": "10",
            "HEALTH_PROBE_SCHEDULE": probe_schedule,
            "IDEMPOTENCY_TTL_SECONDS": str(idempotency_ttl_seconds),
            "AzureWebJobsStorage": "",
        }

    def counters(self, region: SchedulerProcess) -> dict[str, Any]:
        response = httpx2.get(region.url + "/_devstack/counters", timeout=5)
        response.raise_for_status()
        return response.json()

    def topics_run_more_than_once(self, prefix: str) -> dict[str, int]:
        """Topics starting with `prefix` that more than one conversation carries: a keyed call that ran
        twice (each keyed call books one conversation under a topic of its own)."""
        with closing(sqlite3.connect(self.state_file, timeout=10)) as db:
            rows = db.execute(
                "SELECT topic, COUNT(*) FROM conversations WHERE topic LIKE ? "
                "GROUP BY topic HAVING COUNT(*) > 1",
                (prefix + "%",),
            ).fetchall()
        return {str(topic): int(count) for topic, count in rows}

    def conversations_booked(self, prefix: str) -> int:
        with closing(sqlite3.connect(self.state_file, timeout=10)) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM conversations WHERE topic LIKE ?", (prefix + "%",)
            ).fetchone()
        return int(count)


def start_soak_stack(
    *, token_lifetime_seconds: int, log_dir: Path | None = None, era: str = "legacy"
) -> SoakStack:
    """Identity and two regions (`era` \"legacy\": handshake-era sessions), started side by side."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="scheduler-bridge-soak-"))
    state = log_dir / "conversations.sqlite3"
    signing_key = secrets.token_hex(32)
    identity_header = secrets.token_hex(16)
    common: dict[str, Any] = {
        "log_dir": log_dir,
        "signing_key": signing_key,
        "client_id": CLIENT_ID,
        "api_key": secrets.token_hex(16),
        "audience": AUDIENCE,
        "state_file": state,
        "era": era,
        "wait": False,
    }
    started: list[Any] = []
    try:
        identity = start_identity(
            port=free_port(),
            log_dir=log_dir,
            header_secret=identity_header,
            signing_key=signing_key,
            lifetime_seconds=token_lifetime_seconds,
            wait=False,
        )
        started.append(identity)
        regions = []
        for name in ("eastus", "westus"):
            regions.append(start_scheduler(port=free_port(), region=name, **common))
            started.append(regions[-1])
        for process in started:
            process.wait_ready()
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    return SoakStack(identity, regions, log_dir, state, identity_header)
