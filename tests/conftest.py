"""Shared fixtures: real devstack servers on 127.0.0.1 and in-process invocation of the functions.

The stand-ins run as real subprocesses (started once per session, reset between tests) so tests
can kill and restart them. The functions are invoked the way the Python worker does: through
`app.get_functions()` → `get_user_function()` with a real `func.HttpRequest`, on one event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx2
import pytest

from devstack.processes import (
    AZURITE_FLAGS,
    IdentityProcess,
    KeyVaultProcess,
    SchedulerProcess,
    free_port,
    start_identity,
    start_keyvault,
    start_scheduler,
)
from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import reset_bridge

SIGNING_KEY = "test-signing-key-0123456789abcdef0123456789"
IDENTITY_HEADER = "test-identity-header-secret"
CLIENT_ID = "test-client"
API_KEY = "test-api-key-must-never-be-logged"
AUDIENCE = "api://scheduler-devstack"
SCOPE = f"{AUDIENCE}/.default"

SECRETS = (API_KEY, IDENTITY_HEADER, SIGNING_KEY)


def pytest_configure(config: pytest.Config) -> None:
    # A developer's shell may carry a real connection string: the suite must never export to it.
    # (tests/test_telemetry.py turns telemetry on in separate processes, against the devstack.)
    for name in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"):
        os.environ.pop(name, None)


@dataclass
class Devstack:
    identity: IdentityProcess
    east: SchedulerProcess  # modern era, primary
    west: SchedulerProcess  # modern era, secondary
    legacy: SchedulerProcess  # handshake era
    log_dir: Path

    def schedulers(self) -> list[SchedulerProcess]:
        return [self.east, self.west, self.legacy]

    def ensure_running(self) -> None:
        for process in [*self.schedulers(), self.identity]:
            if not process.is_running():
                process.restart()


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    log_dir = tmp_path_factory.mktemp("devstack")
    state = log_dir / "conversations.sqlite3"
    common = {"log_dir": log_dir, "signing_key": SIGNING_KEY, "client_id": CLIENT_ID, "api_key": API_KEY}
    started: list[Any] = []
    try:
        identity = start_identity(
            port=free_port(),
            log_dir=log_dir,
            header_secret=IDENTITY_HEADER,
            signing_key=SIGNING_KEY,
            wait=False,
        )
        started.append(identity)
        east = start_scheduler(port=free_port(), region="eastus", state_file=state, wait=False, **common)
        started.append(east)
        west = start_scheduler(port=free_port(), region="westus", state_file=state, wait=False, **common)
        started.append(west)
        legacy = start_scheduler(
            port=free_port(), region="legacy", era="legacy", state_file=state, wait=False, **common
        )
        started.append(legacy)
        for process in started:
            process.wait_ready()
        yield Devstack(identity=identity, east=east, west=west, legacy=legacy, log_dir=log_dir)
    finally:
        for process in reversed(started):
            process.stop()


def control(url: str, method: str = "GET", path: str = "/_devstack/counters", body: Any = None) -> Any:
    response = httpx2.request(method, url + path, json=body, timeout=5)
    response.raise_for_status()
    return response.json() if response.content else None


def tool_calls(process: SchedulerProcess, tool: str) -> int:
    return control(process.url)["tool_calls"].get(tool, 0)


def identity_requests(devstack: Devstack) -> int:
    return control(devstack.identity.url)["token_requests"]


@pytest.fixture
def stack(devstack: Devstack) -> Iterator[Devstack]:
    """The devstack, with counters zeroed, faults cleared and every process running."""
    devstack.ensure_running()
    for process in devstack.schedulers():
        control(process.url, "DELETE", "/_devstack/faults")
        control(process.url, "POST", "/_devstack/reset")
    control(devstack.identity.url, "POST", "/_devstack/config", {"fail": False, "lifetime_seconds": 3600})
    control(devstack.identity.url, "POST", "/_devstack/reset")
    yield devstack


@pytest.fixture
async def configure(monkeypatch: pytest.MonkeyPatch, stack: Devstack) -> AsyncIterator[Any]:
    """`await configure(endpoints=[...], **settings)`: app settings for a fresh shared bridge."""

    async def apply(
        endpoints: list[str] | None = None, auth: str = "managed_identity", **settings: str
    ) -> None:
        values = {
            "SCHEDULER_ENDPOINTS": ",".join(endpoints or [stack.east.mcp_url, stack.west.mcp_url]),
            "SCHEDULER_AUTH": auth,
            "SCHEDULER_TOKEN_SCOPE": SCOPE,
            "SCHEDULER_CLIENT_ID": CLIENT_ID,
            "SCHEDULER_API_KEY": API_KEY,
            "IDENTITY_ENDPOINT": stack.identity.token_url,
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "SCHEDULER_TIMEOUT_SECONDS": "10",
        }
        values.update({key.upper(): value for key, value in settings.items()})
        for key in list(os.environ):
            if key.startswith(("SCHEDULER_", "MAX_REQUEST", "TOOLS_CACHE")):
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        await reset_bridge()

    yield apply
    await reset_bridge()
    reset_settings()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Functions:
    """Invoke the registered functions in-process, as the Python worker does."""

    def __init__(self) -> None:
        import function_app

        self._functions = {f.get_function_name(): f for f in function_app.app.get_functions()}

    def names(self) -> set[str]:
        return set(self._functions)

    async def __call__(
        self,
        name: str,
        *,
        method: str = "GET",
        path: str = "/api/x",
        body: bytes | dict[str, Any] | list[Any] | None = None,
        route_params: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        raw = json.dumps(body).encode() if isinstance(body, dict | list) else (body or b"")
        request = func.HttpRequest(
            method=method,
            url=f"http://127.0.0.1:7071{path}?code=function-key-in-url",
            headers=headers or {},
            params=params or {},
            route_params=route_params or {},
            body=raw,
        )
        response = await self._functions[name].get_user_function()(request)
        await asyncio.sleep(0)  # the worker's loop turns after an invocation (the audit line is written then)
        return Reply(response.status_code, dict(response.headers), response.get_body())

    async def call_tool(self, tool: str, arguments: Any = None, **kwargs: Any) -> Reply:
        return await self(
            "call_tool",
            method="POST",
            path=f"/api/tools/{tool}",
            body=arguments if arguments is not None else b"",
            route_params={"tool_name": tool},
            **kwargs,
        )

    async def status(self, conversation_id: str) -> Reply:
        return await self(
            "conversation_status",
            path=f"/api/conversations/{conversation_id}/status",
            route_params={"conversation_id": conversation_id},
        )


@pytest.fixture(scope="session")
def functions() -> Functions:
    return Functions()


def schedule_arguments(topic: str = "Quarterly review") -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    return {
        "participants": ["alice@example.com", "bob@example.com"],
        "start_time": (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat(),
        "topic": topic,
    }


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


AZURITE_BIN = (
    Path(__file__).resolve().parent.parent / ".devstack" / "node" / "node_modules" / ".bin" / "azurite-blob"
)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{self.port}/devstoreaccount1;"
        )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The real storage emulator from npm (installed by `make test`), blob service only."""
    import subprocess
    import time

    assert AZURITE_BIN.exists(), "Azurite is missing: run `make test` (it installs it with npm)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    log = (workdir / "azurite.log").open("wb")
    process = subprocess.Popen(
        [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         *AZURITE_FLAGS, "--inMemoryPersistence"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"http://127.0.0.1:{port}/devstoreaccount1?comp=list", timeout=1)
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not start; see {workdir / 'azurite.log'}") from None
                time.sleep(0.1)
        yield Azurite(port)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@dataclass
class Vault:
    """The devstack Key Vault (HTTPS on 127.0.0.1), emptied and with counters zeroed per test."""

    process: KeyVaultProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def ca_file(self) -> str:
        return str(self.process.ca_file)

    def _client(self) -> httpx2.Client:
        import ssl

        return httpx2.Client(verify=ssl.create_default_context(cafile=self.ca_file), timeout=5)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with self._client() as client:
            response = client.request(method, self.url + path, json=body)
        response.raise_for_status()
        return response.json()

    def put(self, name: str, value: str) -> str:
        """Store a new version of secret `name`; returns the version id."""
        return self.control("PUT", f"/_devstack/secrets/{name}", {"value": value})["version"]

    def counters(self) -> dict[str, Any]:
        return self.control("GET", "/_devstack/counters")

    def settings(self) -> dict[str, str]:
        """App settings that point the bridge at this vault and trust its certificate."""
        return {"KEYVAULT_URI": self.url, "KEYVAULT_CA_FILE": self.ca_file}


@pytest.fixture(scope="session")
def keyvault_process(devstack: Devstack) -> Iterator[KeyVaultProcess]:
    process = start_keyvault(
        port=free_port(),
        log_dir=devstack.log_dir,
        signing_key=SIGNING_KEY,
        tls_dir=devstack.log_dir / "keyvault-tls",
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def vault(keyvault_process: KeyVaultProcess, stack: Devstack) -> Vault:
    if not keyvault_process.is_running():
        keyvault_process.restart()
    vault = Vault(keyvault_process)
    vault.control("DELETE", "/_devstack/secrets")
    vault.control("POST", "/_devstack/reset")
    vault.control("POST", "/_devstack/config", {"fail_status": None})
    return vault
