"""Regional failover with real processes: kill, black-hole, flap and restore Scheduler regions."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
import threading
import time
from collections import Counter

import pytest

from mcp_bridge.failover import retry
from mcp_bridge.failover.health import EJECT_AFTER, HealthBoard
from mcp_bridge.failover.probe import probe_all
from mcp_bridge.runtime import get_bridge

from .conftest import control, schedule_arguments, tool_calls


@pytest.fixture(autouse=True)
def instant_waits():
    retry.set_testing(True)
    yield
    retry.set_testing(False)


def topics_in_state(stack) -> Counter:
    with sqlite3.connect(stack.log_dir / "conversations.sqlite3") as db:
        return Counter(row[0] for row in db.execute("SELECT topic FROM conversations"))


async def test_killing_the_primary_under_load_loses_no_safe_call_and_duplicates_nothing(
    configure, functions, stack
):
    await configure(scheduler_timeout_seconds="10")
    polled = await functions.call_tool("scheduleConversation", schedule_arguments("polled"))
    conversation_id = polled.json["structuredContent"]["conversation_id"]
    results: list[tuple[str, int, float]] = []
    killed_at: float | None = None

    async def one(i: int) -> None:
        if i % 3 == 0:
            reply = await functions.call_tool("scheduleConversation", schedule_arguments(f"load-{i}"))
            results.append(("schedule", reply.status, time.perf_counter()))
            if reply.status != 200:
                assert reply.status == 502 and reply.json["type"].endswith("outcome-unknown"), reply.body
        else:
            reply = await functions.status(conversation_id)
            results.append(("status", reply.status, time.perf_counter()))

    async def load() -> None:
        semaphore = asyncio.Semaphore(16)

        async def bounded(i: int) -> None:
            async with semaphore:
                await one(i)
                await asyncio.sleep(0.005)

        await asyncio.gather(*(bounded(i) for i in range(300)))

    async def kill_primary() -> None:
        nonlocal killed_at
        await asyncio.sleep(0.3)
        killed_at = time.perf_counter()
        await asyncio.to_thread(stack.east.kill)

    await asyncio.gather(load(), kill_primary())

    statuses = Counter((kind, status) for kind, status, _ in results)
    assert statuses[("status", 200)] == 200, statuses  # 0 client-visible failures for read-only calls
    duplicated = {
        topic: n for topic, n in topics_in_state(stack).items() if n > 1 and topic.startswith("load-")
    }
    assert duplicated == {}
    schedule_ok = statuses[("schedule", 200)]
    executed = sum(1 for topic in topics_in_state(stack) if topic.startswith("load-"))
    assert schedule_ok <= executed <= 100  # every 200 really ran; nothing ran twice
    assert killed_at is not None
    after_kill = sorted(t for kind, status, t in results if status == 200 and t > killed_at)
    assert after_kill, "calls kept succeeding after the kill"
    print(
        f"\nfailover: kill->first success {1000 * (after_kill[0] - killed_at):.1f} ms; "
        f"read-only failures {200 - statuses[('status', 200)]}; schedule ok {schedule_ok}, "
        f"outcome-unknown {statuses[('schedule', 502)]}, duplicates {len(duplicated)}"
    )
    bridge = await get_bridge()
    assert bridge.health.active_endpoint() == stack.west.mcp_url
    assert tool_calls(stack.west, "getConversationStatus") > 0


async def test_the_call_that_discovers_the_failure_succeeds_on_the_secondary(configure, functions, stack):
    await configure()
    assert (await functions.call_tool("listConversations", {})).status == 200
    stack.east.kill()
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200
    assert reply.json["endpoint"] == stack.west.mcp_url
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments("after kill"))
    assert scheduled.status == 200, "connection refused means never sent: safe even for a non-idempotent tool"
    assert scheduled.json["endpoint"] == stack.west.mcp_url


async def test_an_ambiguous_failure_of_a_non_idempotent_tool_is_not_repeated(configure, functions, stack):
    await configure()
    control(
        stack.east.url, "POST", "/_devstack/faults",
        {"status": 502, "after_execute": True, "times": 1, "tools": ["scheduleConversation"]},
    )  # fmt: skip
    reply = await functions.call_tool("scheduleConversation", schedule_arguments("ambiguous"))
    assert reply.status == 502
    assert "unknown" in reply.json["detail"]
    assert tool_calls(stack.east, "scheduleConversation") == 1
    assert tool_calls(stack.west, "scheduleConversation") == 0


async def test_an_ambiguous_failure_of_a_read_only_tool_moves_on(configure, functions, stack):
    await configure()
    control(
        stack.east.url, "POST", "/_devstack/faults",
        {"status": 502, "after_execute": True, "times": 1, "tools": ["listConversations"]},
    )  # fmt: skip
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200
    assert reply.json["endpoint"] == stack.west.mcp_url


async def test_failback_waits_for_two_passing_probes(configure, functions, stack):
    await configure()
    bridge = await get_bridge()
    stack.east.kill()
    for _ in range(3):
        await probe_all(bridge)
    assert bridge.health.active_endpoint() == stack.west.mcp_url
    stack.east.restart()
    await probe_all(bridge)
    assert bridge.health.active_endpoint() == stack.west.mcp_url, "one pass is not enough"
    reply = await functions.call_tool("listConversations", {})
    assert reply.json["endpoint"] == stack.west.mcp_url
    await probe_all(bridge)
    assert bridge.health.active_endpoint() == stack.east.mcp_url
    reply = await functions.call_tool("listConversations", {})
    assert reply.json["endpoint"] == stack.east.mcp_url


async def test_passive_ejection_after_five_live_failures(configure, functions, stack):
    await configure()
    bridge = await get_bridge()
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 503, "times": 100, "tools": ["listConversations"]},
    )
    statuses = [(await functions.call_tool("listConversations", {})).status for _ in range(EJECT_AFTER)]
    # Each failure moved to west, a healthy region not yet tried: a failover never spends the budget.
    assert statuses == [200] * EJECT_AFTER, statuses
    assert bridge.health.active_endpoint() == stack.west.mcp_url
    before = tool_calls(stack.east, "listConversations")
    for _ in range(5):
        reply = await functions.call_tool("listConversations", {})
        assert reply.json["endpoint"] == stack.west.mcp_url
    assert tool_calls(stack.east, "listConversations") == before, "an ejected endpoint gets no traffic"
    health = (await functions("health", path="/api/health")).json
    east = next(e for e in health["endpoints"] if e["url"] == stack.east.mcp_url)
    assert east["ejected_until"] is not None and east["times_ejected"] == 1


async def test_a_restored_primary_is_readmitted_by_passing_probes_before_its_ejection_ends(
    configure, functions, stack
):
    await configure()
    bridge = await get_bridge()
    await probe_all(bridge)  # a passing streak that began before the outage must not count
    stack.east.kill()
    for _ in range(EJECT_AFTER + 3):  # no probe runs: only live calls see the outage
        reply = await functions.call_tool("listConversations", {})
        assert reply.status == 200 and reply.json["endpoint"] == stack.west.mcp_url
    east = bridge.health.endpoints[stack.east.mcp_url]
    assert east.state(time.time()) == "ejected" and east.passive.times_ejected == 1
    stack.east.restart()
    await probe_all(bridge)
    assert east.state(time.time()) == "ejected", "one passing probe is not enough"
    assert bridge.health.active_endpoint() == stack.west.mcp_url
    await probe_all(bridge)
    health = (await functions("health", path="/api/health")).json
    shown = next(e for e in health["endpoints"] if e["url"] == stack.east.mcp_url)
    assert shown["state"] == "healthy" and shown["usable"] is True, shown
    assert shown["ejected_until"] is None and shown["times_ejected"] == 1
    assert health["active_endpoint"] == stack.east.mcp_url
    before = tool_calls(stack.east, "listConversations")
    for _ in range(5):
        reply = await functions.call_tool("listConversations", {})
        assert reply.json["endpoint"] == stack.east.mcp_url
    assert tool_calls(stack.east, "listConversations") == before + 5


def test_passing_probes_from_another_instance_lift_this_instances_ejection():
    now = [1000.0]
    probing = HealthBoard(["east", "west"], clock=lambda: now[0])
    serving = HealthBoard(["east", "west"], clock=lambda: now[0])
    for _ in range(EJECT_AFTER):
        serving.record_call("east", ok=False)
    assert serving.active_endpoint() == "west"
    for _ in range(2):
        now[0] += 10
        probing.record_probe("east", ok=True, latency_ms=1, error=None)
        probing.record_probe("west", ok=True, latency_ms=1, error=None)
        serving.adopt(probing.snapshot(), source="blob", age_seconds=0)
    assert now[0] < serving.endpoints["east"].passive.ejected_at + 27, "still inside the ejection window"
    assert serving.active_endpoint() == "east"
    assert serving.endpoints["east"].state(now[0]) == "healthy"


def test_a_failing_probe_between_passes_restarts_the_count():
    now = [1000.0]
    board = HealthBoard(["east", "west"], clock=lambda: now[0])
    for _ in range(EJECT_AFTER):
        board.record_call("east", ok=False)
    for ok in (True, False, True):
        now[0] += 5
        board.record_probe("east", ok=ok, latency_ms=1, error=None)
    assert board.endpoints["east"].state(now[0]) == "ejected"
    now[0] += 5
    board.record_probe("east", ok=True, latency_ms=1, error=None)
    assert board.active_endpoint() == "east"


def test_with_nothing_usable_a_region_coming_back_is_tried_first():
    now = [1000.0]
    board = HealthBoard(["east", "west"], clock=lambda: now[0])
    for _ in range(3):  # both regions down: probes fail, and so do the live calls
        now[0] += 5
        board.record_probe("east", ok=False, latency_ms=None, error="ConnectError")
        board.record_probe("west", ok=False, latency_ms=None, error="ConnectError")
    for _ in range(EJECT_AFTER):
        board.record_call("west", ok=False)
    assert board.order() == (["east", "west"], True), "panic, in priority order"
    now[0] += 5
    board.record_probe("east", ok=False, latency_ms=None, error="ConnectError")
    board.record_probe("west", ok=True, latency_ms=1, error=None)  # west is back: one pass so far
    assert board.order() == (["west", "east"], True), "still panic, but west answers first"
    now[0] += 5
    board.record_probe("west", ok=True, latency_ms=1, error=None)
    assert board.order() == (["west"], False), "two passes readmit west"


def test_a_region_coming_back_is_a_fallback_behind_the_usable_one():
    now = [1000.0]
    board = HealthBoard(["east", "west"], clock=lambda: now[0])
    for _ in range(3):
        now[0] += 5
        board.record_probe("east", ok=True, latency_ms=1, error=None)
        board.record_probe("west", ok=False, latency_ms=None, error="ConnectError")
    assert board.attempt_order() == (["east"], 1), "west is down: not even a fallback"
    now[0] += 5
    board.record_probe("west", ok=True, latency_ms=1, error=None)
    assert board.attempt_order() == (["east", "west"], 1), "west is coming back: a fallback"
    now[0] += 5
    board.record_probe("west", ok=True, latency_ms=1, error=None)
    assert board.attempt_order() == (["east", "west"], 2), "west is readmitted"


def test_with_nothing_usable_a_region_whose_calls_fail_is_tried_last():
    now = [1000.0]
    board = HealthBoard(["east", "west"], clock=lambda: now[0])
    for _ in range(3):
        now[0] += 5
        board.record_probe("east", ok=False, latency_ms=None, error="ConnectError")
        board.record_probe("west", ok=False, latency_ms=None, error="ConnectError")
    board.record_call("east", ok=False)
    assert board.order() == (["west", "east"], True)
    board.record_call("east", ok=True)
    assert board.order() == (["east", "west"], True)


def test_a_snapshot_with_fields_this_version_does_not_know_is_still_adopted():
    board = HealthBoard(["east"])
    snapshot = HealthBoard(["east"]).snapshot()
    snapshot["endpoints"]["east"]["from_a_newer_version"] = 1
    board.adopt(snapshot, source="blob", age_seconds=0)
    assert board.snapshot_source == "blob"


def test_flapping_changes_the_active_endpoint_at_most_once_per_ejection_window():
    now = [1000.0]
    board = HealthBoard(["east", "west"], clock=lambda: now[0])
    changes = []
    active = board.active_endpoint()
    for step in range(120):  # two minutes, east failing every other second
        now[0] += 1
        board.record_call("east", ok=step % 2 == 1)
        for _ in range(EJECT_AFTER if step % 10 == 0 else 0):
            board.record_call("east", ok=False)
        if step % 30 == 0:
            board.record_probe("east", ok=step % 60 == 0, latency_ms=1, error=None)
            board.record_probe("west", ok=True, latency_ms=1, error=None)
        current = board.active_endpoint()
        if current != active:
            changes.append(now[0])
            active = current
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    assert all(gap >= 27 for gap in gaps), changes  # 30 s ejection, minus jitter


@pytest.fixture
def black_hole():
    """A TCP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/mcp"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_black_hole_primary_honours_the_deadline_and_never_repeats_non_idempotent_calls(
    configure, functions, stack, black_hole
):
    await configure(endpoints=[black_hole, stack.west.mcp_url], scheduler_timeout_seconds="2")
    started = time.perf_counter()
    read_only = await functions.call_tool("listConversations", {})
    assert read_only.status == 200, read_only.body
    assert read_only.json["endpoint"] == stack.west.mcp_url
    assert time.perf_counter() - started < 2.5
    # The session with the black hole never opened, so nothing was sent there: moving on is safe.
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments("black hole"))
    assert scheduled.status == 200


async def test_a_hanging_non_idempotent_call_is_not_repeated(configure, functions, stack):
    await configure(scheduler_timeout_seconds="1.5")
    assert (await functions.call_tool("listConversations", {})).status == 200
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"hang": True, "times": 1, "tools": ["scheduleConversation"]},
    )
    started = time.perf_counter()
    reply = await functions.call_tool("scheduleConversation", schedule_arguments("hang"))
    assert reply.status == 504
    assert time.perf_counter() - started < 2.5
    assert tool_calls(stack.west, "scheduleConversation") == 0


async def test_retry_after_is_honoured(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url])
    control(
        stack.east.url, "POST", "/_devstack/faults",
        {"status": 503, "retry_after": "1", "times": 1, "tools": ["listConversations"]},
    )  # fmt: skip
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200
    assert retry.waits_requested and retry.waits_requested[0] >= 1.0


async def test_retry_after_beyond_the_deadline_is_not_waited_for(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url], scheduler_timeout_seconds="3")
    control(
        stack.east.url, "POST", "/_devstack/faults",
        {"status": 503, "retry_after": "120", "times": 1, "tools": ["listConversations"]},
    )  # fmt: skip
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "120"
    assert retry.waits_requested == []


async def test_all_endpoints_down_is_a_quick_503(configure, functions, stack):
    await configure()
    stack.east.kill()
    stack.west.kill()
    started = time.perf_counter()
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503
    assert int(reply.headers["Retry-After"]) >= 1
    assert time.perf_counter() - started < 2
    health = await functions("health", path="/api/health")
    assert health.status in (200, 503)


async def test_health_reports_endpoints_token_and_snapshot_source(configure, functions, stack):
    await configure()
    bridge = await get_bridge()
    await probe_all(bridge)
    reply = await functions("health", path="/api/health")
    assert reply.status == 200
    body = reply.json
    assert body["active_endpoint"] == stack.east.mcp_url
    east = body["endpoints"][0]
    assert east["consecutive_passes"] == 1 and east["last_latency_ms"] is not None and east["last_probe_at"]
    assert body["token"]["expires_in_seconds"] > 0
    assert "token" not in {k for k, v in body["token"].items() if isinstance(v, str) and v.startswith("ey")}
    assert body["snapshot"]["source"] == "in-process"
    stack.east.kill()
    stack.west.kill()
    for _ in range(3):
        await probe_all(bridge)
    down = await functions("health", path="/api/health")
    assert down.status == 503
    assert {e["last_error"] for e in down.json["endpoints"]} <= {"connect", "connect_failed", "timeout"}


def test_retry_budget_caps_retries_in_flight_at_a_fifth_of_requests_in_flight():
    budget = retry.RetryBudget()
    for _ in range(100):
        budget.begin_request()
    granted = sum(budget.try_begin_retry() for _ in range(50))
    assert granted == 20
    budget.end_retry()
    assert budget.try_begin_retry(), "a retry that ended gives its place back"
    small = retry.RetryBudget()
    small.begin_request()
    assert sum(small.try_begin_retry() for _ in range(10)) == 3, "a minimum of 3"
