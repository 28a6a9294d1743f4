"""A Scheduler over HTTPS, as in Azure: the bridge verifies its certificate (the devstack CA through
`SCHEDULER_CA_FILE`), and a certificate it cannot verify means nothing is sent."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx2
import pytest

from devstack.processes import SchedulerProcess, free_port, start_scheduler

from .conftest import API_KEY, CLIENT_ID, SIGNING_KEY
from .test_tool_calls import assert_problem


def tool_calls(process: SchedulerProcess, tool: str) -> int:
    """The Scheduler's count of `tool` calls, read over HTTPS with its CA."""
    verify = ssl.create_default_context(cafile=str(process.ca_file))
    response = httpx2.get(f"{process.url}/_devstack/counters", verify=verify, timeout=5)
    response.raise_for_status()
    return response.json()["tool_calls"].get(tool, 0)


@pytest.fixture(scope="module")
def tls_scheduler(tmp_path_factory) -> Iterator[SchedulerProcess]:
    log_dir = tmp_path_factory.mktemp("tls-scheduler")
    process = start_scheduler(
        port=free_port(),
        region="centralus",
        log_dir=log_dir,
        signing_key=SIGNING_KEY,
        client_id=CLIENT_ID,
        api_key=API_KEY,
        tls_dir=log_dir / "tls",
        keep_alive_seconds=120,
    )
    yield process
    process.stop()


async def test_calls_reach_a_scheduler_over_https_with_its_ca_trusted(configure, functions, tls_scheduler):
    assert tls_scheduler.mcp_url.startswith("https://")
    await configure(
        endpoints=[tls_scheduler.mcp_url], auth="api_key", scheduler_ca_file=str(tls_scheduler.ca_file)
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert tool_calls(tls_scheduler, "listConversations") == 1


async def test_an_untrusted_certificate_sends_nothing(configure, functions, tls_scheduler):
    await configure(endpoints=[tls_scheduler.mcp_url], auth="api_key")
    before = tool_calls(tls_scheduler, "listConversations")
    reply = await functions.call_tool("listConversations", {})
    problem = assert_problem(reply, 503, "unavailable")
    assert "TLS handshake" in problem["detail"] and "not trusted" in problem["detail"]
    assert tool_calls(tls_scheduler, "listConversations") == before
