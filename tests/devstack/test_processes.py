"""devstack.processes: real subprocesses on loopback ports - share state, SIGKILL, restart, no orphans."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from devstack.processes import (
    DEFAULT_STOP_TIMEOUT_SECONDS,
    REPO_ROOT,
    ProcessStartError,
    SchedulerProcess,
    free_port,
    port_is_free,
    start_azurite,
    start_scheduler,
)
from tests.devstack.conftest import API_KEY, CLIENT_ID, SIGNING_KEY, mcp_client

API_KEY_HEADERS = {"X-Client-Id": CLIENT_ID, "X-API-Key": API_KEY}


@dataclass
class Regions:
    east: SchedulerProcess
    west: SchedulerProcess


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regions]:
    log_dir = tmp_path_factory.mktemp("regions")
    common = {
        "log_dir": log_dir,
        "signing_key": SIGNING_KEY,
        "client_id": CLIENT_ID,
        "api_key": API_KEY,
        "state_file": log_dir / "shared.sqlite3",
        "wait": False,
    }
    east = start_scheduler(port=free_port(), region="eastus", **common)  # type: ignore[arg-type]
    west = start_scheduler(port=free_port(), region="westus", **common)  # type: ignore[arg-type]
    try:
        east.wait_ready()
        west.wait_ready()
        yield Regions(east=east, west=west)
    finally:
        east.stop()
        west.stop()


async def schedule_in(region: SchedulerProcess) -> str:
    async with mcp_client(region.mcp_url, headers=API_KEY_HEADERS) as client:
        result = await client.call_tool(
            "scheduleConversation",
            {
                "participants": ["dana@example.com"],
                "start_time": "2999-01-01T09:00:00Z",
                "topic": "Shared state",
            },
        )
    assert result.structured_content is not None
    return str(result.structured_content["conversation_id"])


async def status_in(region: SchedulerProcess, conversation_id: str) -> dict[str, object]:
    async with mcp_client(region.mcp_url, headers=API_KEY_HEADERS) as client:
        result = await client.call_tool("getConversationStatus", {"conversation_id": conversation_id})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_regions_share_conversations_through_the_state_file(regions: Regions) -> None:
    conversation_id = await schedule_in(regions.east)

    status = await status_in(regions.west, conversation_id)

    assert (status["region"], status["created_in_region"]) == ("westus", "eastus")


async def test_kill_then_restart_on_the_same_port(regions: Regions) -> None:
    conversation_id = await schedule_in(regions.east)
    port = regions.east.port

    regions.east.kill()

    assert not regions.east.is_running()
    async with httpx2.AsyncClient() as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(f"{regions.east.url}/ping")

    regions.east.restart()

    assert regions.east.port == port and regions.east.is_running()
    status = await status_in(regions.east, conversation_id)  # state survived the crash
    assert status["status"] == "scheduled"
    async with httpx2.AsyncClient() as http:
        counters = (await http.get(f"{regions.east.url}/_devstack/counters")).json()
    assert counters["tool_calls"]["getConversationStatus"] == 1  # a fresh process, fresh counters


def test_stop_is_idempotent_and_frees_the_port(tmp_path: Path) -> None:
    process = start_scheduler(
        port=free_port(),
        region="stopper",
        log_dir=tmp_path,
        signing_key=SIGNING_KEY,
        client_id="c",
        api_key="k",
    )
    process.stop()
    process.stop()

    assert not process.is_running()
    assert port_is_free(process.port)
    assert "Shutting down" in process.log_path.read_text()


def test_azurite_stops_when_asked_without_a_warning_and_leaves_no_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.processes")
    azurite = start_azurite(port=free_port(), log_dir=tmp_path, location=tmp_path / "data")
    pid = azurite.pid
    try:
        assert pid is not None
        # An unsigned account request: Azurite is up and checking signatures (403).
        assert httpx2.get(f"{azurite.url}/devstoreaccount1?comp=list").status_code == 403

        started = time.monotonic()
        azurite.stop()
        stopped_in = time.monotonic() - started
    finally:
        azurite.kill()  # a no-op once stopped; a failing test leaves no node process behind

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    assert stopped_in < DEFAULT_STOP_TIMEOUT_SECONDS, stopped_in
    assert "successfully closed" in azurite.log_path.read_text()
    assert not pid_exists(pid)
    assert port_is_free(azurite.port)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(ProcessStartError, match="exited early") as failure:
        start_scheduler(
            port=free_port(),
            region="broken",
            era="ancient",
            log_dir=tmp_path,
            signing_key=SIGNING_KEY,
            client_id="c",
            api_key="k",
        )

    assert "invalid choice: 'ancient'" in str(failure.value)


def test_children_exit_when_their_parent_dies(tmp_path: Path) -> None:
    """A parent that dies without cleaning up (SIGKILL, crash) must not leave servers behind."""
    parent = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from devstack.processes import free_port, start_identity
        child = start_identity(port=free_port(), log_dir=Path({str(tmp_path)!r}), header_secret="h",
                               signing_key={SIGNING_KEY!r})
        print(child.pid, child.port, flush=True)
        os._exit(0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=30, check=True, cwd=REPO_ROOT
    )
    child_pid, child_port = (int(value) for value in result.stdout.split())

    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not _alive(child_pid)
    assert port_is_free(child_port)


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie is reaped by whoever adopted it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
