"""`Idempotency-Key` across instances: two bridge processes (devstack Functions hosts) share one Azurite.

These are the promises that only shared storage can keep: a key runs once whichever instance each
repeat lands on, and an instance that dies mid-call never causes a second booking.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from devstack.processes import ManagedProcess, free_port, start_host

from .conftest import IDENTITY_HEADER, SCOPE, Devstack, control, schedule_arguments, tool_calls

FUNCTION_KEY = "idempotency-function-key-0123456789"
SCHEDULE = "scheduleConversation"
TIMEOUT_SECONDS = 2
CONCURRENT = 50


@dataclass
class Instances:
    a: ManagedProcess
    b: ManagedProcess
    env: dict[str, str]
    log_dir: Path


def start_instance(env: dict[str, str], log_dir: Path, name: str) -> ManagedProcess:
    folder = log_dir / name
    folder.mkdir(exist_ok=True)
    return start_host(
        port=free_port(),
        log_dir=folder,
        app_dir=Path(__file__).resolve().parent.parent,
        settings_file=folder / "no-local-settings.json",
        env=env,
        wait=False,
    )


@pytest.fixture(scope="module")
def instances(devstack: Devstack, azurite, tmp_path_factory) -> Iterator[Instances]:
    env = {
        "SCHEDULER_ENDPOINTS": f"{devstack.east.mcp_url},{devstack.west.mcp_url}",
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "SCHEDULER_CLIENT_ID": "",
        "SCHEDULER_API_KEY": "",
        "SCHEDULER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
        "AzureWebJobsStorage": azurite.connection_string,
        "IDEMPOTENCY_CONTAINER": f"idem-{uuid.uuid4().hex[:12]}",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": FUNCTION_KEY + "-master",
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    log_dir = tmp_path_factory.mktemp("idempotency-hosts")
    a, b = start_instance(env, log_dir, "a"), start_instance(env, log_dir, "b")
    try:
        a.wait_ready()
        b.wait_ready()
        yield Instances(a, b, env, log_dir)
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def clients(
    instances: Instances, stack
) -> AsyncIterator[tuple[httpx2.AsyncClient, httpx2.AsyncClient]]:
    if not instances.a.is_running():
        instances.a.restart()
    limits = httpx2.Limits(max_connections=CONCURRENT)
    headers = {"x-functions-key": FUNCTION_KEY}
    async with (
        httpx2.AsyncClient(base_url=instances.a.url, headers=headers, timeout=30, limits=limits) as a,
        httpx2.AsyncClient(base_url=instances.b.url, headers=headers, timeout=30, limits=limits) as b,
    ):
        for client in (a, b):  # warm: token, MCP session and tool list, so the race is about the key
            assert (await client.post("/api/tools/listConversations", json={})).status_code == 200
        yield a, b


def booked(stack: Devstack) -> int:
    return tool_calls(stack.east, SCHEDULE) + tool_calls(stack.west, SCHEDULE)


async def schedule(client: httpx2.AsyncClient, key: str, arguments: dict) -> httpx2.Response:
    return await client.post(f"/api/tools/{SCHEDULE}", json=arguments, headers={"Idempotency-Key": key})


async def test_concurrent_identical_requests_on_two_instances_book_once(clients, stack, capsys):
    key, arguments = str(uuid.uuid4()), schedule_arguments("fifty at once")
    # A slower Scheduler keeps the first call running while the others arrive on both instances.
    control(stack.east.url, "POST", "/_devstack/faults", {"delay_seconds": 0.5, "tools": [SCHEDULE]})
    replies = await asyncio.gather(*(schedule(clients[i % 2], key, arguments) for i in range(CONCURRENT)))
    counts = Counter((("a", "b")[i % 2], reply.status_code) for i, reply in enumerate(replies))
    with capsys.disabled():
        print(f"\n{CONCURRENT} concurrent requests, one key, two instances: {dict(sorted(counts.items()))}; "
              f"Scheduler bookings: {booked(stack)}")  # fmt: skip
    assert {status for _, status in counts} <= {200, 409}, [
        r.text for r in replies if r.status_code not in (200, 409)
    ]
    answered = [reply for reply in replies if reply.status_code == 200]
    assert answered, "someone got the answer"
    assert len({reply.json()["structuredContent"]["conversation_id"] for reply in answered}) == 1
    assert len({reply.content for reply in answered}) == 1, "byte for byte"
    for reply in replies:
        if reply.status_code == 409:
            assert reply.json()["type"].endswith(":request-in-progress") and reply.headers["Retry-After"]
    assert booked(stack) == 1
    for client in clients:  # afterwards, every instance replays the one answer
        again = await schedule(client, key, arguments)
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.content == answered[0].content
    assert booked(stack) == 1


async def test_a_reused_key_with_another_body_is_422_on_the_other_instance(clients, stack):
    key = str(uuid.uuid4())
    first = await schedule(clients[0], key, schedule_arguments("first body"))
    assert first.status_code == 200
    other = await schedule(clients[1], key, schedule_arguments("another body"))
    assert other.status_code == 422
    assert other.json()["type"] == "urn:problem:scheduler-bridge:idempotency-key-reused"
    assert booked(stack) == 1


async def test_the_expiry_travels_with_the_record(clients, instances, configure, functions, stack):
    # This test process is a third instance on the same storage, keeping its answers 2 s.
    await configure(
        endpoints=[stack.east.mcp_url],
        azurewebjobsstorage=instances.env["AzureWebJobsStorage"],
        idempotency_container=instances.env["IDEMPOTENCY_CONTAINER"],
        idempotency_ttl_seconds="2",
    )
    key, arguments = str(uuid.uuid4()), schedule_arguments("kept two seconds")
    first = await functions.call_tool(SCHEDULE, arguments, headers={"Idempotency-Key": key})
    assert first.status == 200, first.body
    replay = await schedule(clients[0], key, arguments)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == first.body
    await asyncio.sleep(2.2)
    later = await schedule(clients[0], key, arguments)
    assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
    ids = {
        first.json["structuredContent"]["conversation_id"],
        later.json()["structuredContent"]["conversation_id"],
    }
    assert len(ids) == 2
    assert booked(stack) == 2


async def test_a_retry_after_the_first_instance_is_killed_mid_call_does_not_book_twice(
    clients, instances, stack
):
    a, b = clients
    key, arguments = str(uuid.uuid4()), schedule_arguments("the instance dies")
    control(stack.east.url, "POST", "/_devstack/faults", {"delay_seconds": 1.5, "tools": [SCHEDULE]})
    first = asyncio.create_task(schedule(a, key, arguments))
    await asyncio.sleep(0.7)  # claimed, and the call is at the (slow) Scheduler
    instances.a.kill()
    with pytest.raises(httpx2.TransportError):
        await first
    await asyncio.sleep(1.5)  # the Scheduler finishes the call nobody is waiting for
    ran = booked(stack)
    assert ran == 1, "the call reached the Scheduler and ran"
    statuses = []
    while True:
        retry = await schedule(b, key, arguments)
        statuses.append(retry.status_code)
        if retry.status_code != 409:
            break
        assert len(statuses) < 40, statuses
        await asyncio.sleep(int(retry.headers["Retry-After"]))
    assert retry.status_code == 502, retry.text
    assert retry.json()["type"] == "urn:problem:scheduler-bridge:outcome-unknown"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert set(statuses[:-1]) == {409}
    again = await schedule(b, key, arguments)
    assert again.content == retry.content
    assert booked(stack) == ran == 1, "never a second booking"
