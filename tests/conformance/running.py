"""One peer's processes during its scenarios: two regions and, for some peers, a progress server.

Started on first use and kept across the peer's scenarios (the conftest runs one peer's tests
together, then stops it), so each peer pays its start-up once, plus the restarts its scenarios ask for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from devstack.processes import ManagedProcess

from .peers import Peer, log_count, mcp_url

_LOGGER = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 45.0
"""Node loads the SDK's example in 1-3 s; on a busy 2-core machine it has taken 10."""


class PeerRun:
    def __init__(self, peer: Peer, log_dir: Path) -> None:
        self.peer = peer
        self.log_dir = log_dir
        self._processes: dict[str, ManagedProcess] = {}

    def regions(self, *names: str) -> list[ManagedProcess]:
        """The named regions of this peer, running (started together, then waited for)."""
        fresh = []
        for name in names:
            process = self._processes.get(name)
            if process is None:
                process = self._processes[name] = self.peer.process(self.log_dir, region=name)
            if not process.is_running():
                if process.process is not None:
                    process.stop()
                process.start()
                fresh.append(process)
        for process in fresh:
            process.wait_ready(READY_TIMEOUT_SECONDS)
        return [self._processes[name] for name in names]

    def region(self, name: str = "a") -> ManagedProcess:
        return self.regions(name)[0]

    def special(
        self, role: Literal["progress", "idle"], *, idle_timeout: float | None = None
    ) -> ManagedProcess:
        """The progress server (a second process of the same SDK), or a region that expires idle sessions."""
        process = self._processes.get(role)
        if process is None:
            process = self.peer.process(
                self.log_dir,
                role="progress" if role == "progress" else "server",
                region=role,
                idle_timeout=idle_timeout,
            )
            self._processes[role] = process
        if not process.is_running():
            process.start()
            process.wait_ready(READY_TIMEOUT_SECONDS)
        return process

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
