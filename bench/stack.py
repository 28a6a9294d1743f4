"""The devstack servers a bench run uses, and the app settings that point the bridge at them.

Two modern-era Scheduler regions (primary and secondary), one legacy-era region, one modern region
over TLS with a production keep-alive (the WAN section reaches it through a delay proxy), and the
managed identity endpoint, all on loopback with fresh secrets, logging to a temporary directory.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from devstack.processes import (
    IdentityProcess,
    SchedulerProcess,
    free_port,
    start_identity,
    start_scheduler,
)

AUDIENCE = "api://scheduler-devstack"
SCOPE = f"{AUDIENCE}/.default"
CLIENT_ID = "bench-client"
STATUS_TOOL = "getConversationStatus"
WAN_KEEP_ALIVE_SECONDS = 120  # what a production front end keeps an idle connection (IIS: 120 s)


@dataclass
class Stack:
    identity: IdentityProcess
    east: SchedulerProcess  # modern, primary
    west: SchedulerProcess  # modern, secondary
    legacy: SchedulerProcess  # handshake era
    log_dir: Path
    identity_header: str
    conversation_id: str = ""
    wan: SchedulerProcess | None = None  # over TLS, production keep-alive; reached through a delay proxy

    def schedulers(self) -> list[SchedulerProcess]:
        return [self.east, self.west, self.legacy, *([self.wan] if self.wan else [])]

    def stop(self) -> None:
        for process in (*self.schedulers(), self.identity):
            process.stop()

    def endpoints(self, era: str) -> list[str]:
        return [self.east.mcp_url, self.west.mcp_url] if era == "modern" else [self.legacy.mcp_url]

    def primary(self, era: str) -> SchedulerProcess:
        return self.east if era == "modern" else self.legacy

    def bridge_env(self, era: str) -> dict[str, str]:
        """App settings for the bridge against one era, managed identity from the devstack endpoint."""
        return {
            "SCHEDULER_ENDPOINTS": ",".join(self.endpoints(era)),
            "SCHEDULER_AUTH": "managed_identity",
            "SCHEDULER_TOKEN_SCOPE": SCOPE,
            "IDENTITY_ENDPOINT": self.identity.token_url,
            "IDENTITY_HEADER": self.identity_header,
            "SCHEDULER_TIMEOUT_SECONDS": "10",
            "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",  # the host's timer: effectively never
        }

    def fetch_token(self) -> str:
        """A bearer token straight from the identity endpoint, for the raw and naive clients."""
        response = httpx2.get(
            self.identity.token_url,
            params={"api-version": "2019-08-01", "resource": AUDIENCE},
            headers={"X-IDENTITY-HEADER": self.identity_header},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()["access_token"]


def start_stack() -> Stack:
    log_dir = Path(tempfile.mkdtemp(prefix="scheduler-bridge-bench-"))
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
        "wait": False,
    }
    started: list[Any] = []
    try:
        identity = start_identity(
            port=free_port(),
            log_dir=log_dir,
            header_secret=identity_header,
            signing_key=signing_key,
            wait=False,
        )
        started.append(identity)
        east = start_scheduler(port=free_port(), region="eastus", **common)
        started.append(east)
        west = start_scheduler(port=free_port(), region="westus", **common)
        started.append(west)
        legacy = start_scheduler(port=free_port(), region="legacy", era="legacy", **common)
        started.append(legacy)
        wan = start_scheduler(
            port=free_port(),
            region="centralus",
            tls_dir=log_dir / "scheduler-tls",
            keep_alive_seconds=WAN_KEEP_ALIVE_SECONDS,
            **common,
        )
        started.append(wan)
        for process in started:
            process.wait_ready()
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    return Stack(identity, east, west, legacy, log_dir, identity_header, wan=wan)


def control(url: str, method: str = "GET", path: str = "/_devstack/counters", body: Any = None) -> Any:
    response = httpx2.request(method, url + path, json=body, timeout=5)
    response.raise_for_status()
    return response.json() if response.content else None


def apply_env(values: dict[str, str]) -> None:
    """Replace the bridge's settings in this process's environment (the bench hosts inherit it).

    Case-insensitive, as app settings are: `AzureWebJobsStorage` left over from the idempotency
    section would otherwise point later hosts at a stopped Azurite."""
    for key in list(os.environ):
        if key.upper().startswith(("SCHEDULER_", "IDENTITY_", "MSI_", "AZUREWEBJOBS", "IDEMPOTENCY_")):
            del os.environ[key]
    os.environ.update(values)
