"""Fixtures for the devstack's own tests: stand-ins served in-process on 127.0.0.1, on the test event loop.

In-process servers start in milliseconds, so most tests use them; the
subprocess paths (devstack.processes, the CLIs, `make run`) have their own
tests. Every server is real uvicorn on a real loopback socket, and clients
are the real mcp `Client` and httpx2.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import ASGIApp

from devstack.identity import IdentityConfig
from devstack.identity import build_app as build_identity_app
from devstack.scheduler import SchedulerConfig
from devstack.scheduler import build_app as build_scheduler_app
from devstack.scheduler_auth import SchedulerCredentials
from devstack.serving import build_server
from devstack.tokens import mint_access_token

SIGNING_KEY = "devstack-tests-signing-key-0123456789abcdef"
AUDIENCE = "api://scheduler-devstack"
CLIENT_ID = "devstack-tests-client"
API_KEY = "devstack-tests-api-key-never-logged"
IDENTITY_HEADER = "devstack-tests-identity-header"

CREDENTIALS = SchedulerCredentials(
    audience=AUDIENCE, signing_key=SIGNING_KEY, client_id=CLIENT_ID, api_key=API_KEY
)


class _InProcessServer(uvicorn.Server):
    """uvicorn without its SIGINT/SIGTERM handlers: Ctrl-C must still reach pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on an ephemeral 127.0.0.1 port on this loop; yields the base URL."""
    server = _InProcessServer(build_server(app, port=0).config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during startup")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class SchedulerServer:
    """An in-process Scheduler region: `url` for control calls, `mcp_url` for clients."""

    url: str
    region: str

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"


def bearer_token(*, audience: str = AUDIENCE, lifetime_seconds: int = 300, key: str = SIGNING_KEY) -> str:
    token, _ = mint_access_token(
        key, audience=audience, client_id="tests", object_id="tests-oid", lifetime_seconds=lifetime_seconds
    )
    return token


def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token()}"}


@contextlib.asynccontextmanager
async def mcp_client(
    mcp_url: str, *, headers: dict[str, str] | None = None, mode: str = "auto", http_timeout: float = 10.0
) -> AsyncIterator[Client]:
    """A real mcp Client over Streamable HTTP with our own httpx2 client (for auth headers)."""
    async with httpx2.AsyncClient(
        headers=headers if headers is not None else auth_headers(), timeout=http_timeout
    ) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http), mode=mode) as client:
            yield client


async def _scheduler(region: str, era: str) -> AsyncIterator[SchedulerServer]:
    app = build_scheduler_app(SchedulerConfig(region=region, credentials=CREDENTIALS, era=era))  # type: ignore[arg-type]
    async with serving(app) as url:
        yield SchedulerServer(url=url, region=region)


@pytest.fixture(scope="session")
async def modern_scheduler() -> AsyncIterator[SchedulerServer]:
    async for server in _scheduler("eastus", "modern"):
        yield server


@pytest.fixture(scope="session")
async def legacy_scheduler() -> AsyncIterator[SchedulerServer]:
    async for server in _scheduler("legacyus", "legacy"):
        yield server


@pytest.fixture
async def scheduler(modern_scheduler: SchedulerServer) -> AsyncIterator[SchedulerServer]:
    """The modern region with counters zeroed and no fault armed, before and after the test."""
    async with httpx2.AsyncClient(base_url=modern_scheduler.url) as control:
        await control.post("/_devstack/reset")
        await control.delete("/_devstack/faults")
        yield modern_scheduler
        await control.delete("/_devstack/faults")


@pytest.fixture(scope="session")
async def identity_url() -> AsyncIterator[str]:
    app = build_identity_app(IdentityConfig(header_secret=IDENTITY_HEADER, signing_key=SIGNING_KEY))
    async with serving(app) as url:
        yield url


async def counters(url: str) -> dict[str, object]:
    async with httpx2.AsyncClient(base_url=url) as control:
        response = await control.get("/_devstack/counters")
        response.raise_for_status()
        return response.json()
