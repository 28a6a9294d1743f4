"""Every instance agrees on the active region: the probe's snapshot travels through blob storage."""

from __future__ import annotations

import asyncio
import json

import pytest

from mcp_bridge.config.loader import parse_settings
from mcp_bridge.failover import retry
from mcp_bridge.failover.probe import probe_all
from mcp_bridge.failover.snapshot import BlobSnapshotStore
from mcp_bridge.runtime import build_bridge, get_bridge

from .conftest import AUDIENCE, IDENTITY_HEADER


@pytest.fixture(autouse=True)
def instant_waits():
    retry.set_testing(True)
    yield
    retry.set_testing(False)


def instance_settings(stack, azurite, **extra):
    return parse_settings(
        {
            "SCHEDULER_ENDPOINTS": f"{stack.east.mcp_url},{stack.west.mcp_url}",
            "SCHEDULER_AUTH": "managed_identity",
            "SCHEDULER_TOKEN_SCOPE": f"{AUDIENCE}/.default",
            "AzureWebJobsStorage": azurite.connection_string,
            "HEALTH_SNAPSHOT_TTL_SECONDS": "0.01",
            **extra,
        }
    )


async def test_two_instances_converge_on_the_same_active_endpoint(stack, azurite, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    settings = instance_settings(stack, azurite, HEALTH_SNAPSHOT_BLOB="converge.json")
    prober, server = build_bridge(settings), build_bridge(settings)  # two fully separate instances
    try:
        stack.east.kill()
        for _ in range(3):
            await probe_all(prober)  # the timer runs on one instance only
        assert prober.health.active_endpoint() == stack.west.mcp_url

        # The other instance has seen no failure of its own, yet follows the snapshot.
        assert server.health.active_endpoint() == stack.east.mcp_url
        await server.snapshot_follower.refresh(server.health)
        assert server.health.active_endpoint() == stack.west.mcp_url
        assert server.describe_health()["snapshot"]["source"].startswith("blob:")
        outcome = await server.call_tool("listConversations", {})
        assert outcome.endpoint == stack.west.mcp_url, "the call went straight to the healthy region"

        stack.east.restart()
        for _ in range(2):
            await probe_all(prober)
        await server.snapshot_follower.refresh(server.health)
        assert prober.health.active_endpoint() == server.health.active_endpoint() == stack.east.mcp_url
    finally:
        await prober.aclose()
        await server.aclose()


async def test_snapshot_content_and_staleness(stack, azurite, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    settings = instance_settings(stack, azurite, HEALTH_SNAPSHOT_BLOB="stale.json")
    bridge = build_bridge(settings)
    store = BlobSnapshotStore(settings)
    try:
        await probe_all(bridge)
        snapshot = await store.read()
        assert snapshot["active_endpoint"] == stack.east.mcp_url
        assert snapshot["probe_interval_seconds"] == 30
        east = snapshot["endpoints"][stack.east.mcp_url]
        assert east["consecutive_passes"] == 1 and east["last_latency_ms"] > 0
        assert "token" not in json.dumps(snapshot).lower()

        # A snapshot older than three probe intervals is ignored.
        snapshot["written_at"] -= 91
        snapshot["endpoints"][stack.east.mcp_url]["healthy"] = False
        await store.write(snapshot)
        await bridge.snapshot_follower.refresh(bridge.health)
        assert bridge.health.active_endpoint() == stack.east.mcp_url
        assert "stale" in bridge.describe_health()["snapshot"]["source"]
    finally:
        await store.aclose()
        await bridge.aclose()


async def test_health_route_says_when_health_is_in_process_only(configure, functions):
    await configure()
    bridge = await get_bridge()
    assert bridge.snapshot_store is None
    reply = await functions("health", path="/api/health")
    assert reply.json["snapshot"]["source"] == "in-process"
    assert reply.json["snapshot"]["shared"] is False


async def test_the_follower_reads_in_the_background_and_never_blocks_a_call(stack, azurite, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    bridge = build_bridge(instance_settings(stack, azurite, HEALTH_SNAPSHOT_BLOB="background.json"))
    try:
        await bridge.call_tool("listConversations", {})
        await asyncio.sleep(0.1)
        assert bridge.snapshot_follower.last_error is None
    finally:
        await bridge.aclose()
