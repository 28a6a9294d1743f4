"""An operation started on one Function instance is followed on another: two devstack Functions
hosts share one Azurite, in front of server-everything, whose tasks live in the MCP session that
created them (the hardest case: the other instance must poll inside that session).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from devstack.processes import ManagedProcess
from tests.conformance.peers import mcp_url

from .test_idempotency_instances import FUNCTION_KEY, start_instance
from .test_operations import EVERYTHING, RESEARCH, SESSION_OPENED, installed, log_count

pytestmark = pytest.mark.skipif(not installed(EVERYTHING), reason="`make peers` installs server-everything")


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    process = EVERYTHING.process(tmp_path_factory.mktemp("everything"))
    process.start()
    try:
        process.wait_ready(45)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def hosts(everything, devstack, azurite, tmp_path_factory) -> Iterator[tuple[ManagedProcess, ManagedProcess]]:
    from .conftest import IDENTITY_HEADER, SCOPE

    env = {
        "SCHEDULER_ENDPOINTS": mcp_url(everything),
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "SCHEDULER_PING_PATH": "",
        "SCHEDULER_TIMEOUT_SECONDS": "10",
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
        "AzureWebJobsStorage": azurite.connection_string,
        "IDEMPOTENCY_CONTAINER": f"ops-{uuid.uuid4().hex[:12]}",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": FUNCTION_KEY + "-master",
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    log_dir: Path = tmp_path_factory.mktemp("operation-hosts")
    a, b = start_instance(env, log_dir, "a"), start_instance(env, log_dir, "b")
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def clients(hosts) -> AsyncIterator[tuple[httpx2.AsyncClient, httpx2.AsyncClient]]:
    headers = {"x-functions-key": FUNCTION_KEY}
    async with (
        httpx2.AsyncClient(base_url=hosts[0].url, headers=headers, timeout=30) as a,
        httpx2.AsyncClient(base_url=hosts[1].url, headers=headers, timeout=30) as b,
    ):
        yield a, b


async def poll(client: httpx2.AsyncClient, location: str, limit: float = 25.0) -> httpx2.Response:
    path = location.split("/api/", 1)[1]
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        reply = await client.get("/api/" + path)
        assert reply.status_code == 200, reply.text
        if reply.json()["status"] not in ("NotStarted", "Running") or loop.time() > end:
            return reply
        await asyncio.sleep(0.5)


async def test_an_operation_started_on_one_instance_is_polled_to_its_result_on_the_other(
    clients, hosts, everything
):
    a, b = clients
    started = await a.post(
        f"/api/tools/{RESEARCH}", json={"topic": "tides"}, headers={"Prefer": "respond-async"}
    )
    assert started.status_code == 202, started.text
    location = started.headers["Operation-Location"]
    assert location.startswith(hosts[0].url)  # the instance that answered; any instance serves it
    sessions = log_count(everything, SESSION_OPENED)

    done = await poll(b, location)

    assert done.json()["status"] == "Succeeded", done.text
    assert "Research Report: tides" in done.json()["result"]["content"][0]["text"]
    # B polled inside A's MCP session: server-everything knows the task in no other session.
    assert log_count(everything, SESSION_OPENED) == sessions
    assert (await poll(a, location)).json() == done.json()  # the same end on both instances


async def test_an_operation_is_canceled_from_the_other_instance_and_ends_there_for_both(clients):
    a, b = clients
    started = await a.post(f"/api/tools/{RESEARCH}", json={"topic": "x"}, headers={"Prefer": "respond-async"})
    assert started.status_code == 202, started.text
    path = "/api/" + started.headers["Operation-Location"].split("/api/", 1)[1]

    canceled = await b.post(path + "/cancel")

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "Canceled"
    again = await a.post(path + "/cancel")
    assert again.status_code == 409  # the end is recorded once, for every instance
    assert again.json()["type"].endswith(":operation-finished")
    assert (await a.get(path)).json()["status"] == "Canceled"
