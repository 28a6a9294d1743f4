"""`/api/health` tells the truth: unknown until probed, degraded while calls fail, never "ok" while
every call fails, and the shared snapshot's source and age as they are at the moment of the read.
"""

from __future__ import annotations

import asyncio
import json

from mcp_bridge.runtime import build_bridge, get_bridge

from .conftest import IDENTITY_HEADER
from .test_shared_health import instance_settings


async def wait_for_probe_results(functions) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while True:
        view = (await functions("health", path="/api/health")).json
        if all(e["last_probe_at"] for e in view["endpoints"]):
            return view
        assert loop.time() < deadline, view
        await asyncio.sleep(0.05)


async def test_https_on_a_plain_http_port_never_reads_ok(configure, functions, stack):
    tls = [
        stack.east.mcp_url.replace("http://", "https://"),
        stack.west.mcp_url.replace("http://", "https://"),
    ]
    await configure(endpoints=tls, scheduler_ping_path="")
    before = await functions("health", path="/api/health")
    print("\n/api/health before the first probe:", json.dumps(before.json["endpoints"][0]))
    assert before.status == 200 and before.json["status"] == "unknown", before.json
    assert {e["state"] for e in before.json["endpoints"]} == {"unknown"}

    failed = await functions.call_tool("listConversations", {})
    assert failed.status == 503
    after_call = (await functions("health", path="/api/health")).json
    assert after_call["status"] != "ok" and after_call["endpoints"][0]["state"] == "degraded", after_call

    probed = await wait_for_probe_results(functions)  # the health read started a probe round itself
    print("/api/health after the first probe:", json.dumps(probed["endpoints"][0]))
    assert probed["status"] == "degraded"
    assert {e["last_error"] for e in probed["endpoints"]} == {"tls"}

    for _ in range(5):
        await functions.call_tool("listConversations", {})
    down = await functions("health", path="/api/health")
    assert down.status == 503 and down.json["status"] == "unavailable"
    assert {e["state"] for e in down.json["endpoints"]} == {"ejected"}


async def test_the_first_request_starts_one_probe_round(configure, functions, stack):
    await configure(scheduler_ping_path="/ping")
    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(10)))
    assert {reply.status for reply in replies} == {200}
    view = await wait_for_probe_results(functions)
    assert view["status"] == "ok" and {e["state"] for e in view["endpoints"]} == {"healthy"}
    bridge = await get_bridge()
    assert bridge.health.endpoints[stack.east.mcp_url].active.consecutive_passes == 1, "one round, not ten"


async def test_a_health_read_shows_the_shared_snapshot_with_its_true_age(stack, azurite, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    settings = instance_settings(
        stack, azurite, HEALTH_SNAPSHOT_BLOB="truth.json", HEALTH_SNAPSHOT_TTL_SECONDS="30"
    )
    prober, reader = build_bridge(settings), build_bridge(settings)
    try:
        from mcp_bridge.failover.probe import probe_all

        await probe_all(prober)  # the timer's instance writes the snapshot
        first = await reader.read_health()  # no call has happened on this instance
        assert first["snapshot"]["source"].startswith("blob:"), first["snapshot"]
        assert first["status"] == "ok"
        await asyncio.sleep(1.2)
        second = await reader.read_health()
        assert second["snapshot"]["age_seconds"] >= first["snapshot"]["age_seconds"] + 1.0, (first, second)
    finally:
        await prober.aclose()
        await reader.aclose()
