"""A second upstream for the tests: "rooms", two more devstack Scheduler processes (two regions)
with an audience, client id and API key of their own, so a credential meant for one upstream is
refused by the other: a call that succeeds proves it used its own upstream's auth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.processes import SchedulerProcess, free_port, start_scheduler

from .conftest import SIGNING_KEY, control

ROOMS_AUDIENCE = "api://rooms-devstack"
ROOMS_CLIENT_ID = "rooms-client"
ROOMS_API_KEY = "rooms-api-key-must-never-be-logged"


@dataclass
class Rooms:
    east: SchedulerProcess
    west: SchedulerProcess

    def processes(self) -> list[SchedulerProcess]:
        return [self.east, self.west]


@pytest.fixture(scope="module")
def rooms_servers(devstack) -> Iterator[Rooms]:
    common = {
        "log_dir": devstack.log_dir,
        "signing_key": SIGNING_KEY,
        "client_id": ROOMS_CLIENT_ID,
        "api_key": ROOMS_API_KEY,
        "audience": ROOMS_AUDIENCE,
        "state_file": devstack.log_dir / "rooms.sqlite3",
        "wait": False,
    }
    east = start_scheduler(port=free_port(), region="rooms-east", **common)
    west = start_scheduler(port=free_port(), region="rooms-west", **common)
    try:
        east.wait_ready()
        west.wait_ready()
        yield Rooms(east, west)
    finally:
        east.stop()
        west.stop()


@pytest.fixture
def rooms(rooms_servers: Rooms) -> Rooms:
    for process in rooms_servers.processes():
        if not process.is_running():
            process.restart()
        control(process.url, "DELETE", "/_devstack/faults")
        control(process.url, "POST", "/_devstack/reset")
    return rooms_servers


def rooms_settings(rooms: Rooms, **extra: str) -> dict[str, str]:
    return {
        "MCP_UPSTREAMS": "Rooms",
        "ROOMS_ENDPOINTS": f"{rooms.east.mcp_url},{rooms.west.mcp_url}",
        "ROOMS_AUTH": "api_key",
        "ROOMS_CLIENT_ID": ROOMS_CLIENT_ID,
        "ROOMS_API_KEY": ROOMS_API_KEY,
        "ROOMS_TIMEOUT_SECONDS": "10",
        **extra,
    }
