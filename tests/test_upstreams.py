"""Named upstreams: one bridge, several MCP servers, each with its own settings, auth and bridge.

The second upstream ("rooms") is two more devstack Scheduler processes with an audience, client id
and API key of their own, so a credential meant for one upstream is refused by the other: a call
that succeeds proves it used its own upstream's auth.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.processes import SchedulerProcess, free_port, start_scheduler
from mcp_bridge.config.loader import SettingsError, parse_settings
from mcp_bridge.problems import UnknownServer
from mcp_bridge.runtime import get_bridge

from .conftest import SIGNING_KEY, control, schedule_arguments

ROOMS_AUDIENCE = "api://rooms-devstack"
ROOMS_CLIENT_ID = "rooms-client"
ROOMS_API_KEY = "rooms-api-key-must-never-be-logged"


@dataclass
class Rooms:
    east: RoomsProcess
    west: RoomsProcess

    def processes(self) -> list[SchedulerProcess]:
        return [self.east, self.west]


RoomsProcess = SchedulerProcess


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


# -- configuration ---------------------------------------------------------------------------

BASE = {"SCHEDULER_ENDPOINTS": "https://east.example/mcp", "SCHEDULER_AUTH": "none"}


def test_each_upstream_reads_its_own_prefixed_settings_and_shares_the_rest():
    settings = parse_settings(
        {
            **BASE,
            "MCP_UPSTREAMS": "scheduler, ROOMS",
            "ROOMS_ENDPOINTS": "https://rooms-1.example/mcp,https://rooms-2.example/mcp",
            "ROOMS_AUTH": "managed_identity",
            "ROOMS_TOKEN_SCOPE": "api://rooms/.default",
            "ROOMS_ALLOWED_TOOLS": "bookRoom",
            "ROOMS_TIMEOUT_SECONDS": "7",
            "MAX_REQUEST_BYTES": "2048",
        }
    )
    assert list(settings.upstreams) == ["scheduler", "rooms"]
    rooms = settings.upstreams["rooms"]
    assert rooms.upstream_name == "rooms" and settings.upstream_name == "scheduler"
    assert rooms.scheduler_endpoints == ["https://rooms-1.example/mcp", "https://rooms-2.example/mcp"]
    assert (rooms.scheduler_auth, rooms.scheduler_token_scope) == ("managed_identity", "api://rooms/.default")
    assert rooms.tool_is_allowed("bookRoom") and not rooms.tool_is_allowed("scheduleConversation")
    assert settings.tool_is_allowed("scheduleConversation")
    assert (rooms.scheduler_timeout_seconds, settings.scheduler_timeout_seconds) == (7, 30)
    assert rooms.max_request_bytes == settings.max_request_bytes == 2048  # shared
    # Its Key Vault secret names are its own unless set: never the Scheduler's.
    assert (rooms.keyvault_client_id_secret, rooms.keyvault_api_key_secret) == (
        "ROOMS-CLIENT-ID",
        "ROOMS-API-KEY",
    )
    assert rooms.setting_name("scheduler_auth") == "ROOMS_AUTH"


def test_the_scheduler_alone_is_the_default_and_unchanged():
    settings = parse_settings(BASE)
    assert list(settings.upstreams) == ["scheduler"]
    assert settings.upstreams["scheduler"] is settings


def test_every_upstreams_bad_settings_are_reported_at_once_under_their_own_names():
    with pytest.raises(SettingsError) as caught:
        parse_settings(
            {
                **BASE,
                "SCHEDULER_TIMEOUT_SECONDS": "0",
                "MCP_UPSTREAMS": "rooms,health,Rooms,desks",
                "ROOMS_ENDPOINTS": "ftp://rooms.example/mcp",
                "ROOMS_API_KEY": "k-rooms-secret",
                "DESKS_AUTH": "password",
                "DESKS_ENDPOINTS": "https://desks.example/mcp",
                "MAX_REQUEST_BYTES": "-1",
            }
        )
    names = [name for name, _ in caught.value.problems]
    assert sorted(names) == sorted(
        [
            "MCP_UPSTREAMS",
            "SCHEDULER_TIMEOUT_SECONDS",
            "MAX_REQUEST_BYTES",  # shared: reported once, not once per upstream
            "ROOMS_ENDPOINTS",
            "DESKS_AUTH",
        ]
    )
    messages = dict(caught.value.problems)
    assert "'health' is reserved" in messages["MCP_UPSTREAMS"]
    assert "listed twice" in messages["MCP_UPSTREAMS"]
    assert "k-rooms-secret" not in str(caught.value)
    # A rule across settings names the upstream's own settings too.
    with pytest.raises(SettingsError) as caught:
        parse_settings(
            {
                **BASE,
                "MCP_UPSTREAMS": "desks",
                "DESKS_AUTH": "api_key",
                "DESKS_ENDPOINTS": "https://d.example/mcp",
            }
        )
    assert caught.value.problems == [("DESKS_CLIENT_ID", "required when DESKS_AUTH=api_key")]


def test_the_config_file_gives_each_upstream_its_servers_and_skips_another_clients(tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcp": {
                    "mcp_servers": [
                        {
                            "name": "Scheduler",
                            "transport": {"type": "http", "url": "https://east.example/mcp"},
                        },
                        {
                            "name": "ROOMS",
                            "transport": {
                                "type": "http",
                                "url": "https://rooms-1.example/mcp",
                                "auth": {"client_id": "rooms-client", "api_key": "rooms-key"},
                            },
                        },
                        # Another MCP host's server: not an upstream, skipped without being validated.
                        {"name": "Calendar", "transport": {"type": "stdio", "command": 5}},
                        {
                            "name": "scheduler",
                            "transport": {"type": "http", "url": "https://west.example/mcp"},
                        },
                        {
                            "name": "rooms",
                            "transport": {
                                "type": "http",
                                "url": "https://rooms-2.example/mcp",
                                "auth": {"client_id": "rooms-client", "api_key": "rooms-key"},
                            },
                        },
                    ]
                }
            }
        )
    )
    settings = parse_settings(
        {"MCP_CONFIG_FILE": str(config), "SCHEDULER_AUTH": "none", "MCP_UPSTREAMS": "rooms"}
    )
    assert settings.scheduler_endpoints == ["https://east.example/mcp", "https://west.example/mcp"]
    rooms = settings.upstreams["rooms"]
    assert rooms.scheduler_endpoints == ["https://rooms-1.example/mcp", "https://rooms-2.example/mcp"]
    assert (rooms.scheduler_auth, rooms.scheduler_client_id) == ("api_key", "rooms-client")
    assert settings.scheduler_auth == "none"
    # Without MCP_UPSTREAMS the Rooms entries are another client's too.
    alone = parse_settings({"MCP_CONFIG_FILE": str(config), "SCHEDULER_AUTH": "none"})
    assert list(alone.upstreams) == ["scheduler"]


def test_a_bad_entry_of_a_second_upstream_in_the_config_file_is_named_by_its_path(tmp_path):
    config = tmp_path / "mcp.json"
    servers = [
        {"name": "Scheduler", "transport": {"type": "http", "url": "https://east.example/mcp"}},
        {"name": "Rooms", "transport": {"type": "sse", "url": "https://rooms.example/mcp"}},
    ]
    config.write_text(json.dumps({"mcp": {"mcp_servers": servers}}))
    with pytest.raises(SettingsError) as caught:
        parse_settings({"MCP_CONFIG_FILE": str(config), "SCHEDULER_AUTH": "none", "MCP_UPSTREAMS": "rooms"})
    assert [name for name, _ in caught.value.problems] == ["mcp.mcp_servers[1].transport.type"]


# -- one bridge per upstream -----------------------------------------------------------------


async def test_managed_identity_and_api_key_upstreams_are_called_side_by_side(
    configure, stack, rooms, vault, captured_logs
):
    """The Scheduler with a managed identity token; Rooms with a client id and API key read from Key
    Vault under secret names of its own. Each server accepts only its own credential."""
    vault.put("rooms-client-id-secret", ROOMS_CLIENT_ID)
    vault.put("rooms-api-key-secret", ROOMS_API_KEY)
    settings = rooms_settings(
        rooms,
        ROOMS_CLIENT_ID="",
        ROOMS_API_KEY="",
        ROOMS_KEYVAULT_CLIENT_ID_SECRET="rooms-client-id-secret",
        ROOMS_KEYVAULT_API_KEY_SECRET="rooms-api-key-secret",
    )
    await configure(**settings, **vault.settings(), SCHEDULER_API_KEY="")
    scheduler, rooms_bridge = await get_bridge(), await get_bridge("rooms")
    assert scheduler is not rooms_bridge and scheduler is await get_bridge("scheduler")
    assert scheduler.http_client is not rooms_bridge.http_client
    assert scheduler.budget is not rooms_bridge.budget and scheduler.health is not rooms_bridge.health
    assert scheduler.tokens is not None and rooms_bridge.tokens is None

    import asyncio

    results = await asyncio.gather(
        *(scheduler.call_tool("scheduleConversation", schedule_arguments(f"s{i}")) for i in range(3)),
        *(rooms_bridge.call_tool("scheduleConversation", schedule_arguments(f"r{i}")) for i in range(3)),
    )
    assert {r.endpoint for r in results[:3]} == {stack.east.mcp_url}
    assert {r.endpoint for r in results[3:]} == {rooms.east.mcp_url}
    assert control(rooms.east.url)["tool_calls"]["scheduleConversation"] == 3
    assert control(stack.east.url)["tool_calls"]["scheduleConversation"] == 3
    assert vault.counters()["reads"] >= 2  # the Rooms credentials came from the vault
    assert ROOMS_API_KEY not in captured_logs.text


async def test_an_unknown_upstream_names_the_known_ones(configure, rooms):
    await configure(**rooms_settings(rooms))
    with pytest.raises(UnknownServer) as caught:
        await get_bridge("desks")
    assert caught.value.extensions["servers"] == ["scheduler", "rooms"]


async def test_failover_inside_one_upstream_leaves_the_other_untouched(
    configure, stack, rooms, captured_logs
):
    captured_logs.set_level(logging.INFO)
    await configure(**rooms_settings(rooms))
    scheduler, rooms_bridge = await get_bridge(), await get_bridge("rooms")
    await rooms_bridge.call_tool("listConversations", {})
    await scheduler.call_tool("listConversations", {})
    rooms.east.kill()
    moved = [await rooms_bridge.call_tool("listConversations", {}) for _ in range(3)]
    assert {outcome.endpoint for outcome in moved} == {rooms.west.mcp_url}
    assert rooms_bridge.budget is not scheduler.budget
    stayed = [await scheduler.call_tool("listConversations", {}) for _ in range(3)]
    assert {outcome.endpoint for outcome in stayed} == {stack.east.mcp_url}
    assert all(outcome.attempts == 1 for outcome in stayed)
    scheduler_view = scheduler.health.describe()
    assert scheduler_view["active_endpoint"] == stack.east.mcp_url
    assert all(e["live_failures"] == 0 and e["times_ejected"] == 0 for e in scheduler_view["endpoints"])
    assert control(stack.west.url)["tool_calls"].get("listConversations", 0) == 0
