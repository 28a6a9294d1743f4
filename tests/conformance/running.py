"""One peer's processes during its scenarios: two regions and, for some peers, a region that
expires idle sessions and a progress server.

All are started together when the peer's first scenario begins and kept across its scenarios (the
conftest runs one peer's tests together, then stops them), so each peer pays its start-up once,
plus the restarts its scenarios ask for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from devstack.processes import ManagedProcess

from .peers import IDLE_TIMEOUT_SECONDS, Peer, log_count, mcp_url

_LOGGER = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 45.0
"""Node loads the SDK's example in 1-3 s; on a busy 2-core machine it has taken 10."""


class PeerRun:
    def __init__(self, peer: Peer, log_dir: Path) -> None:
        self.peer = peer
        self.log_dir = log_dir
        self._processes: dict[str, ManagedProcess] = {}

    def start_all(self) -> None:
        """Every process this peer's scenarios use, started together: one wait instead of four."""
        keys = ["a", "b", "c"]  # "c" stands in front of a second dead front end (test_front_end)
        if self.peer.idle_timeout:
            keys.append("idle")
        if self.peer.progress_server:
            keys.append("progress")
        self._running(*keys)

    def regions(self, *names: str) -> list[ManagedProcess]:
        """The named regions ("a", "b", "c") of this peer, running; a killed one is started again."""
        return self._running(*names)

    def region(self, name: str = "a") -> ManagedProcess:
        return self._running(name)[0]

    def special(self, role: Literal["progress", "idle"]) -> ManagedProcess:
        """The progress server (a second process of the same SDK), or a region that expires idle
        sessions after `IDLE_TIMEOUT_SECONDS`."""
        return self._running(role)[0]

    def _running(self, *keys: str) -> list[ManagedProcess]:
        fresh = []
        for key in keys:
            process = self._processes.get(key)
            if process is None:
                process = self._processes[key] = self.peer.process(
                    self.log_dir,
                    role="progress" if key == "progress" else "server",
                    region=key,
                    idle_timeout=IDLE_TIMEOUT_SECONDS if key == "idle" else None,
                )
            if not process.is_running():
                if process.process is not None:
                    process.stop()
                process.start()
                fresh.append(process)
        for process in fresh:
            process.wait_ready(READY_TIMEOUT_SECONDS)
        return [self._processes[key] for key in keys]

    def restart(self, process: ManagedProcess) -> None:
        process.restart(READY_TIMEOUT_SECONDS)

    def posts(self, process: ManagedProcess) -> int:
        """POSTs the peer itself logged (its own log, across restarts)."""
        return log_count(process, self.peer.posts)

    def tool_runs(self, process: ManagedProcess, tool: str) -> int:
        """Runs of `tool` that our peer scripts printed; 0 for peers that print none."""
        return log_count(process, f"TOOL {tool}\n")

    def expirations(self, process: ManagedProcess) -> int:
        """Idle sessions the peer logged as expired (mcp's session manager: "Session <id> idle timeout")."""
        return log_count(process, "idle timeout")

    def stop(self) -> None:
        for process in self._processes.values():
            try:
                process.stop(timeout=3)
            except Exception:
                _LOGGER.exception("stopping %s", process.name)

    @staticmethod
    def url(process: ManagedProcess) -> str:
        return mcp_url(process)
