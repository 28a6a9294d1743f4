"""Named upstreams: one bridge, several MCP servers, each with its own settings, auth and bridge.

The second upstream ("rooms") is two more devstack Scheduler processes with an audience, client id
and API key of their own, so a credential meant for one upstream is refused by the other: a call
that succeeds proves it used its own upstream's auth.
"""

from __future__ import annotations

import json
import logging

import pytest

from mcp_bridge.config.loader import SettingsError, parse_settings
from mcp_bridge.problems import UnknownServer
from mcp_bridge.runtime import get_bridge

from .conftest import control, schedule_arguments
from .rooms import ROOMS_API_KEY, ROOMS_CLIENT_ID, rooms, rooms_servers, rooms_settings

__all__ = ["rooms", "rooms_servers"]  # fixtures

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


# -- isolation -------------------------------------------------------------------------------


def p99(samples: list[float]) -> float:
    import statistics

    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def test_a_hung_upstream_under_load_leaves_the_others_p99_unchanged(configure, stack, rooms):
    """Rooms carries a steady load (16 callers, 4 calls/s each) throughout; in alternate rounds both
    its regions stop answering, so its calls pile up and time out (1 s). The Scheduler's p99 in the
    hung rounds stays within 10 % of the healthy rounds. Anything the two shared (pool, budget, a
    lock, a blocked loop) would show as seconds, not percent; the rounds alternate so that the
    machine's own drift falls on both sides, and a noisy measurement is repeated (at most three
    times) before failing."""
    import asyncio
    import time

    await configure(**rooms_settings(rooms, ROOMS_TIMEOUT_SECONDS="1"))
    scheduler, rooms_bridge = await get_bridge(), await get_bridge("rooms")
    for _ in range(20):  # warm both: sessions, token, catalog
        await scheduler.call_tool("listConversations", {})
    await rooms_bridge.call_tool("listConversations", {})

    async def measure(count: int) -> list[float]:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await scheduler.call_tool("listConversations", {})
            samples.append(time.perf_counter() - started)
        return samples

    rooms_outcomes: list[str] = []

    async def rooms_caller() -> None:
        while True:
            started = time.monotonic()
            try:
                await rooms_bridge.call_tool("listConversations", {})
                rooms_outcomes.append("ok")
            except Exception as exc:  # the hung upstream's calls fail: that is the point
                rooms_outcomes.append(type(exc).__name__)
            await asyncio.sleep(max(0.0, started + 0.25 - time.monotonic()))

    def hang_rooms(hang: bool) -> None:
        for process in rooms.processes():
            control(process.url, "DELETE", "/_devstack/faults")
            if hang:
                control(process.url, "POST", "/_devstack/faults", {"hang": True, "times": None})

    callers = [asyncio.create_task(rooms_caller()) for _ in range(16)]
    verdicts = []
    try:
        for _attempt in range(3):
            healthy: list[float] = []
            hung: list[float] = []
            for _round in range(4):
                for hang, samples in ((False, healthy), (True, hung)):
                    hang_rooms(hang)
                    await asyncio.sleep(1.0)  # calls pile up (and time out) before and while measuring
                    samples += await measure(40)
            verdicts.append((round(p99(healthy), 4), round(p99(hung), 4)))
            if p99(hung) <= 1.10 * p99(healthy):
                break
    finally:
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        hang_rooms(False)
    base, during = verdicts[-1]
    assert during <= 1.10 * base, f"p99 healthy/hung per attempt (s): {verdicts}"
    # The Rooms calls really were stuck: its servers held them, and they ran out of time.
    assert sum(control(p.url)["faults_injected"] for p in rooms.processes()) >= 16
    assert "DeadlineExceeded" in rooms_outcomes or "UpstreamFailed" in rooms_outcomes, set(rooms_outcomes)
    assert "ok" in rooms_outcomes


# -- routes ----------------------------------------------------------------------------------


async def server_call(functions, server: str, tool: str, arguments, **kwargs):
    return await functions(
        "server_call_tool",
        method="POST",
        path=f"/api/servers/{server}/tools/{tool}",
        body=arguments,
        route_params={"server": server, "tool_name": tool},
        **kwargs,
    )


async def server_tools(functions, server: str, **kwargs):
    return await functions(
        "server_list_tools", path=f"/api/servers/{server}/tools", route_params={"server": server}, **kwargs
    )


async def test_server_routes_reach_their_upstream_and_the_old_routes_stay_the_schedulers(
    configure, functions, stack, rooms, captured_logs
):
    await configure(**rooms_settings(rooms, ROOMS_ALLOWED_TOOLS="listConversations,scheduleConversation"))
    booked = await server_call(functions, "rooms", "scheduleConversation", schedule_arguments("Room 4"))
    assert booked.status == 200, booked.json
    assert booked.json["endpoint"] == rooms.east.mcp_url
    plain = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert plain.status == 200 and plain.json["endpoint"] == stack.east.mcp_url
    same = await server_call(functions, "scheduler", "listConversations", {})
    assert same.status == 200 and same.json["endpoint"] == stack.east.mcp_url

    listed = await server_tools(functions, "Rooms")  # names are case-insensitive
    assert listed.status == 200 and listed.json["endpoint"] == rooms.east.mcp_url
    assert sorted(t["name"] for t in listed.json["tools"]) == ["listConversations", "scheduleConversation"]
    refused = await server_call(functions, "rooms", "cancelConversation", {"conversation_id": "c-1"})
    assert refused.status == 403  # Rooms' allowlist, not the Scheduler's
    assert control(rooms.east.url)["tool_calls"].get("cancelConversation", 0) == 0
    # The audit trail names the upstream of every call.
    audited = [line for line in captured_logs.messages if line.startswith("audit ")]
    assert any('"upstream":"rooms"' in line and "scheduleConversation" in line for line in audited)
    assert any('"upstream":"scheduler"' in line for line in audited)


async def test_an_unknown_server_is_a_404_listing_the_known_ones_before_anything_is_read(
    configure, functions, stack, rooms
):
    await configure(**rooms_settings(rooms))
    for reply in (
        await server_call(functions, "desks", "bookDesk", b"{not json"),
        await server_tools(functions, "desks"),
    ):
        assert reply.status == 404
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert reply.json["type"] == "urn:problem:scheduler-bridge:unknown-server"
        assert reply.json["servers"] == ["scheduler", "rooms"]
    assert control(stack.east.url)["mcp_requests"] == 0 and control(rooms.east.url)["mcp_requests"] == 0


async def test_each_upstream_has_its_own_roles(configure, functions, stack, rooms):
    from devstack.easyauth import principal_headers

    reader = principal_headers({"oid": "oid-reader", "name": "dashboard", "roles": ["Scheduler.Read"]})
    booker = principal_headers({"oid": "oid-booker", "name": "front-desk", "roles": ["Rooms.Book"]})
    await configure(
        **rooms_settings(rooms, ROOMS_TOOL_ROLES="listConversations:Rooms.Read,*:Rooms.Book"),
        SCHEDULER_TOOL_ROLES="listConversations:Scheduler.Read,*:Scheduler.Write",
        WEBSITE_AUTH_ENABLED="True",
    )
    assert (await functions.call_tool("listConversations", {}, headers=reader)).status == 200
    assert (await server_call(functions, "rooms", "listConversations", {}, headers=reader)).status == 403
    booked = await server_call(
        functions, "rooms", "scheduleConversation", schedule_arguments(), headers=booker
    )
    assert booked.status == 200
    refused = await functions.call_tool("scheduleConversation", schedule_arguments(), headers=booker)
    assert refused.status == 403 and refused.json["required_roles"] == ["Scheduler.Write"]
    # Listings show each caller what it may call on that server.
    listed = await server_tools(functions, "rooms", headers=booker)
    assert {t["name"] for t in listed.json["tools"]} >= {"listConversations", "scheduleConversation"}
    assert (await server_tools(functions, "rooms", headers=reader)).json["tools"] == []
    assert control(stack.east.url)["tool_calls"].get("scheduleConversation", 0) == 0
    assert control(rooms.east.url)["tool_calls"]["scheduleConversation"] == 1


async def test_an_upstreams_operations_live_under_its_own_routes(configure, functions, stack, rooms):
    await configure(**rooms_settings(rooms))
    calendars = ["ana@contoso.example", "bo@contoso.example"]
    slot = {"calendars": calendars, "scan_seconds": 30, "window_start": "2030-01-07T00:00:00Z",
            "window_end": "2030-01-08T23:00:00Z"}  # fmt: skip
    started = await server_call(
        functions, "rooms", "findCommonSlot", slot, headers={"Prefer": "respond-async"}
    )
    assert started.status == 202, started.body
    location = started.headers["Operation-Location"]
    assert location.startswith("http://127.0.0.1:7071/api/servers/rooms/operations/op_"), location
    operation_id = location.rsplit("/", 1)[1]

    def route(name: str, server: str | None, suffix: str = "") -> dict:
        params = {"operation_id": operation_id, **({"server": server} if server else {})}
        prefix = f"/api/servers/{server}" if server else "/api"
        return {"name": name, "path": f"{prefix}/operations/{operation_id}{suffix}", "route_params": params}

    async def call(name: str, path: str, route_params: dict, method: str = "GET"):
        return await functions(name, method=method, path=path, route_params=route_params)

    running = await call(**route("server_get_operation", "rooms"))
    assert running.status == 200 and running.json["status"] == "Running", running.body
    # The Scheduler's routes (and any other server's) do not know it: the one 404.
    assert (await call(**route("get_operation", None))).status == 404
    assert (await call(**route("server_get_operation", "scheduler"))).status == 404
    canceled = await call(**route("server_cancel_operation", "rooms", "/cancel"), method="POST")
    assert canceled.status == 200 and canceled.json["status"] == "Canceled", canceled.body
    assert control(stack.east.url)["mcp_requests"] == 0  # the Scheduler never heard of it


async def test_the_openapi_document_groups_each_upstreams_routes_and_tools_under_its_tag(
    configure, functions, rooms
):
    from openapi_spec_validator import validate

    await configure(**rooms_settings(rooms, ROOMS_ALLOWED_TOOLS="scheduleConversation,findCommonSlot"))
    reply = await functions("openapi", path="/api/openapi.json")
    assert reply.status == 200, reply.body
    doc = reply.json
    validate(doc)
    # The default's tag stays `tools`, as before there were upstreams: generated clients name modules by it.
    assert [tag["name"] for tag in doc["tags"]] == ["tools", "rooms"]
    by_tag: dict[str, set[str]] = {}
    for path, item in doc["paths"].items():
        for operation in item.values():
            for tag in operation.get("tags", []):
                by_tag.setdefault(tag, set()).add(path)
    assert "/tools/scheduleConversation" in by_tag["tools"]
    assert by_tag["rooms"] >= {
        "/servers/rooms/tools",
        "/servers/rooms/tools/{tool_name}",
        "/servers/rooms/tools/scheduleConversation",
        "/servers/rooms/tools/findCommonSlot",
        "/servers/rooms/operations/{operation_id}",
        "/servers/rooms/operations/{operation_id}/cancel",
    }
    assert "/servers/rooms/tools/cancelConversation" not in doc["paths"]  # Rooms' allowlist
    # The same tool on two servers: two operations, each with its own schemas.
    scheduler_op = doc["paths"]["/tools/scheduleConversation"]["post"]
    rooms_op = doc["paths"]["/servers/rooms/tools/scheduleConversation"]["post"]
    assert (scheduler_op["operationId"], rooms_op["operationId"]) == (
        "scheduleConversation",
        "rooms_scheduleConversation",
    )
    body = rooms_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body == "#/components/schemas/rooms_scheduleConversationArguments"
    assert body != scheduler_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "participants" in doc["components"]["schemas"]["rooms_scheduleConversationArguments"]["properties"]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
