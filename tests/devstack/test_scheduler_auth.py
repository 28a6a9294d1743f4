"""Authentication on the Scheduler's MCP path: bearer tokens or the client-id/API-key pair, else 401."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx2
import pytest

from tests.devstack.conftest import (
    API_KEY,
    CLIENT_ID,
    SchedulerServer,
    bearer_token,
    counters,
    mcp_client,
)

# A 2026-07-28 request is self-contained: its envelope rides in params._meta.
DISCOVER = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}
MODERN_HEADERS = {
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "server/discover",
    "Accept": "application/json, text/event-stream",
}


async def post_mcp(scheduler: SchedulerServer, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(scheduler.mcp_url, json=DISCOVER, headers={**MODERN_HEADERS, **headers})


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic-scheme"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, id="garbage-token"),
        pytest.param(
            {"Authorization": f"Bearer {bearer_token(audience='api://other')}"}, id="wrong-audience"
        ),
        pytest.param({"Authorization": f"Bearer {bearer_token(lifetime_seconds=-10)}"}, id="expired"),
        pytest.param(
            {"Authorization": f"Bearer {bearer_token(key='another-signing-key-0123456789abcdef')}"},
            id="bad-sig",
        ),
        pytest.param({"X-Client-Id": CLIENT_ID, "X-API-Key": "wrong"}, id="wrong-api-key"),
        pytest.param({"X-Client-Id": "someone-else", "X-API-Key": API_KEY}, id="wrong-client-id"),
        pytest.param({"X-API-Key": API_KEY}, id="api-key-without-client-id"),
    ],
)
async def test_refused_with_401_and_bearer_challenge(
    scheduler: SchedulerServer, headers: dict[str, str]
) -> None:
    response = await post_mcp(scheduler, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()
    snapshot = await counters(scheduler.url)
    assert snapshot["unauthorized"] == 1
    assert snapshot["mcp_requests"] == 1


@pytest.mark.parametrize(
    "make_headers",
    [
        # Minted when the test runs, not when it is collected: a slow suite outlives a 5-minute token.
        pytest.param(lambda: {"Authorization": f"Bearer {bearer_token()}"}, id="bearer"),
        pytest.param(lambda: {"authorization": f"bearer {bearer_token()}"}, id="bearer-lowercase"),
        pytest.param(lambda: {"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY}, id="api-key-pair"),
    ],
)
async def test_accepted_credentials(
    scheduler: SchedulerServer, make_headers: Callable[[], dict[str, str]]
) -> None:
    response = await post_mcp(scheduler, make_headers())

    assert response.status_code == 200
    assert (await counters(scheduler.url))["unauthorized"] == 0


async def test_api_key_pair_works_with_a_real_client(scheduler: SchedulerServer) -> None:
    async with mcp_client(
        scheduler.mcp_url, headers={"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY}
    ) as client:
        assert len((await client.list_tools()).tools) == 5


async def test_ping_and_control_api_need_no_auth(scheduler: SchedulerServer) -> None:
    async with httpx2.AsyncClient(base_url=scheduler.url) as http:
        ping = await http.get("/ping")
        assert ping.status_code == 200
        assert ping.json() == {"status": "ok", "region": "eastus"}
        assert (await http.get("/_devstack/counters")).status_code == 200


async def test_credentials_never_reach_the_log(
    scheduler: SchedulerServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = bearer_token()
    caplog.set_level(logging.DEBUG)
    await post_mcp(scheduler, {"Authorization": f"Bearer {token}"})
    await post_mcp(scheduler, {"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY})
    await post_mcp(scheduler, {"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY + "-wrong"})

    logged = caplog.text
    assert "auth=bearer" in logged and "auth=api-key" in logged
    assert token not in logged
    assert API_KEY not in logged
