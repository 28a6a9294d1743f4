"""A chaos region: one third-party MCP server process behind a counting front end, and what a
driver can do to it.

- `kill`: SIGKILL the server and stop the front end listening: connections refused, open ones reset.
- `restart`: a graceful restart (SIGTERM, start again); the server forgets its sessions.
- `hang`: the front end reads each request and never answers (nothing is forwarded).
- `front`: the server is killed, its front end stays up and answers 502 or 503 to everything.
- `restore`: whatever was done, undone; the region answers again.

Every stretch of time a region spends not `up` is kept, so a run can tell a call made while one
region was healthy from one made while none was. The server's own log counts the tool runs
(`RAN <tool> <arguments>`, printed by tests/conformance/peers/python_peer.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from devstack.processes import ManagedProcess
from tests.conformance.frontend import FrontEnd

State = Literal["up", "killed", "hung", "fronted"]
READY_TIMEOUT_SECONDS = 45.0


@dataclass
class Region:
    name: str
    process: ManagedProcess
    front: FrontEnd
    state: State = "up"
    outages: list[tuple[float, float]] = field(default_factory=list)
    """(from, to) in time.monotonic(): while the region was not up."""
    _down_since: float | None = None

    @property
    def url(self) -> str:
        return self.front.url + "/mcp"

    async def kill(self) -> None:
        self._going_down()
        await asyncio.to_thread(self.process.kill)
        await self.front.stop_listening()
        self.state = "killed"

    async def restart(self) -> None:
        """SIGTERM and start again at once: a short outage, every session forgotten."""
        self._going_down()
        await asyncio.to_thread(self.process.restart, READY_TIMEOUT_SECONDS)
        self._back_up()

    def hang(self) -> None:
        self._going_down()
        self.front.hang()
        self.state = "hung"

    async def front_with(self, status: Literal[502, 503]) -> None:
        self._going_down()
        self.front.dead_answer = status
        await asyncio.to_thread(self.process.kill)
        self.state = "fronted"

    async def restore(self) -> None:
        if self.state == "hung":
            self.front.unhang()
        elif self.state in ("killed", "fronted"):
            await asyncio.to_thread(self.process.restart, READY_TIMEOUT_SECONDS)
            if self.state == "killed":
                await self.front.listen_again()
        self._back_up()

    def down_during(self, start: float, end: float, *, vouch_seconds: float = 0.0) -> bool:
        """Whether the region was down at any moment of [start, end], or back up for less than
        `vouch_seconds` (the time its probes need to vouch for it again)."""
        if self._down_since is not None and self._down_since <= end:
            return True
        return any(begin <= end and start <= until + vouch_seconds for begin, until in self.outages)

    def runs(self) -> Counter[str]:
        """`tool arguments` → how many times this region's server ran it (across restarts)."""
        try:
            text = self.process.log_path.read_text(errors="replace")
        except OSError:
            return Counter()
        return Counter(line[4:].strip() for line in text.splitlines() if line.startswith("RAN "))

    def _going_down(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _back_up(self) -> None:
        if self._down_since is not None:
            self.outages.append((self._down_since, time.monotonic()))
            self._down_since = None
        self.state = "up"
