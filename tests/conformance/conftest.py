"""Fixtures for the conformance matrix: third-party MCP servers, pinned, as real processes.

Each test module is one scenario (its `SCENARIO`); each test takes the `peer` fixture, which is
parametrized over the peers of `peers.PEERS`. The tests are ordered peer by peer, so one peer's
processes run at a time. The bridge is the real one, driven through the registered functions
(`functions` from tests/conftest.py) with app settings pointing at the peers (`bridge`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import get_bridge, reset_bridge

from .install import installed
from .matrix import Cell, Run, render, save
from .peers import PEERS, RUN_ORDER, SCENARIOS, Peer
from .running import PeerRun

RUN = Run()
_SETTING_PREFIXES = ("SCHEDULER_", "MAX_REQUEST", "MAX_UPSTREAM", "TOOLS_CACHE", "HEALTH_", "KEYVAULT_")


def _scenario(item: pytest.Item) -> str | None:
    module = getattr(item, "module", None)
    return getattr(module, "SCENARIO", None)


def _peer_of(item: pytest.Item) -> Peer | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("peer")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Peer by peer, then scenario by scenario: each peer's processes start once and stop before
    # the next peer's start. Everything else keeps its place, ahead of the matrix.
    ours = [item for item in items if _scenario(item) is not None and _peer_of(item) is not None]
    if not ours:
        return
    position = {id(item): n for n, item in enumerate(items)}
    ours.sort(key=lambda i: (PEERS.index(_peer_of(i)), RUN_ORDER.index(_scenario(i)), position[id(i)]))
    chosen = {id(item) for item in ours}
    items[:] = [item for item in items if id(item) not in chosen] + ours


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    spec, scenario = _peer_of(item), _scenario(item)
    if spec is not None and scenario is not None and (report.when == "call" or report.failed):
        cell = RUN.cell(spec.name, scenario)  # also when the peer failed to start (setup)
        reason = None
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            reason = f"{item.name}: " + message.splitlines()[0][:240]
        cell.finish(passed=not report.failed, reason=reason)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if RUN.cells:
        save(RUN)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RUN.cells:
        terminalreporter.write_sep("=", "conformance matrix")
        terminalreporter.write_line(render(RUN.to_json()))


@pytest.fixture(scope="session")
def peer_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


@pytest.fixture(scope="session", params=PEERS, ids=lambda peer: peer.name)
def peer(request: pytest.FixtureRequest, peer_logs: Path) -> Iterator[PeerRun]:
    """The peer under test, its processes started on demand and stopped when its scenarios end."""
    spec: Peer = request.param
    assert installed(spec), (
        f"{spec.name} is not installed in {spec.folder}: `make test` or `make conformance` installs "
        "the peers (python -m tests.conformance.install)"
    )
    run = PeerRun(spec, peer_logs)
    try:
        run.start_all()
        yield run
    finally:
        run.stop()


@pytest.fixture
def cell(request: pytest.FixtureRequest, peer: PeerRun) -> Cell:
    """This test's cell of the matrix; `cell.note(...)` adds a measured fact to it."""
    scenario = _scenario(request.node)
    assert scenario in SCENARIOS, f"{request.node.module.__name__} must set SCENARIO"
    return RUN.cell(peer.peer.name, scenario)


@pytest.fixture
async def bridge(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """`await bridge(url, ...)`: a fresh shared bridge in front of these endpoints, auth `none`."""

    async def configure(*endpoints: str, **settings: str) -> Any:
        values = {
            "SCHEDULER_ENDPOINTS": ",".join(endpoints),
            "SCHEDULER_AUTH": "none",
            "SCHEDULER_PING_PATH": "",  # third-party servers have no /ping; the MCP leg probes
            "SCHEDULER_TIMEOUT_SECONDS": "10",
        }
        values.update({key.upper(): value for key, value in settings.items()})
        for key in list(os.environ):
            if key.startswith(_SETTING_PREFIXES):
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        await reset_bridge()
        return await get_bridge()

    yield configure
    await reset_bridge()
    reset_settings()
