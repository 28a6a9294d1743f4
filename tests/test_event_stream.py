"""Progress you can watch: `Accept: text/event-stream` on `POST /api/tools/{name}`, over real HTTP.

The devstack host runs function_app.py with HTTP streams on (`HTTP_STREAMS`, and
`PYTHON_ENABLE_INIT_INDEXING` as Azure needs it), in front of the devstack Scheduler in each
protocol era and in front of server-everything (a third-party server that reports progress).
A classic host (streams off) answers the same requests, to show that without the header nothing
changed, byte for byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from devstack.processes import ManagedProcess, free_port, start_host
from tests.conformance.peers import PEERS, mcp_url

from .conftest import IDENTITY_HEADER, SCOPE

FUNCTION_KEY = "stream-test-function-key"
APP_DIR = Path(__file__).resolve().parent.parent
CALENDARS = ["ana@contoso.example", "bo@contoso.example", "cy@contoso.example", "di@contoso.example"]
SEARCH = {
    "calendars": CALENDARS,
    "window_start": "2030-01-07T08:00:00Z",
    "window_end": "2030-01-09T18:00:00Z",
}
WEEKEND = {
    "calendars": CALENDARS,
    "window_start": "2030-01-05T00:00:00Z",
    "window_end": "2030-01-06T23:00:00Z",
}
SSE = {"Accept": "text/event-stream"}
VOLATILE_HEADERS = {"date", "server"}


def _host(endpoints: str, log_dir: Path, *, streams: bool, auth: dict[str, str]) -> ManagedProcess:
    env = {
        "SCHEDULER_ENDPOINTS": endpoints,
        "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS": "true",
        "AzureWebJobsStorage": "",
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": "stream-test-master-key",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        **auth,
    }
    if streams:
        env |= {"HTTP_STREAMS": "true", "PYTHON_ENABLE_INIT_INDEXING": "1"}
    return start_host(port=free_port(), log_dir=log_dir, app_dir=APP_DIR, env=env)


def _scheduler_auth(devstack: Any) -> dict[str, str]:
    return {
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
    }


@pytest.fixture(scope="module")
def hosts(devstack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ManagedProcess]]:
    """Streaming hosts for each era, and a classic one, all in front of the devstack Scheduler."""
    auth = _scheduler_auth(devstack)
    started: dict[str, ManagedProcess] = {}
    try:
        for name, endpoints, streams in (
            ("modern", devstack.east.mcp_url, True),
            ("legacy", devstack.legacy.mcp_url, True),
            ("classic", devstack.east.mcp_url, False),
        ):
            started[name] = _host(endpoints, tmp_path_factory.mktemp(name), streams=streams, auth=auth)
        yield started
    finally:
        for process in started.values():
            process.stop()


def read_events(response: httpx2.Response) -> list[tuple[str, Any, float]]:
    """The response's events as (name, parsed data, seconds since the request), as they arrived."""
    started = time.monotonic()
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and name is not None:
            events.append((name, json.loads("\n".join(data)), time.monotonic() - started))
            name, data = None, []
    return events


def stream(host: ManagedProcess, tool: str, body: dict[str, Any]) -> tuple[httpx2.Response, list[Any]]:
    with httpx2.Client(base_url=host.url, timeout=30) as http:
        with http.stream(
            "POST", f"/api/tools/{tool}", params={"code": FUNCTION_KEY}, json=body, headers=SSE
        ) as r:
            return r, read_events(r) if r.status_code == 200 else [r.read()]


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_progress_events_arrive_as_the_tool_runs_then_the_result(hosts, era):
    response, events = stream(hosts[era], "findCommonSlot", {**SEARCH, "scan_seconds": 2.0})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    names = [name for name, _, _ in events]
    assert names == ["progress"] * 4 + ["result"], names
    progress = [data for name, data, _ in events if name == "progress"]
    assert [p["progress"] for p in progress] == [1, 2, 3, 4]
    assert progress[0] == {
        "progress": 1,
        "total": 4,
        "percentComplete": 25.0,
        "message": "Read 1 of 4 calendars",
    }
    result = events[-1][1]
    assert result["structuredContent"]["calendars_checked"] == 4 and result["tool"] == "findCommonSlot"
    arrivals = [at for _, _, at in events]
    assert arrivals[-1] - arrivals[0] > 1.0, "the events came as the tool ran, not all at the end"


def test_a_tool_error_after_progress_is_the_last_event(hosts):
    response, events = stream(hosts["modern"], "findCommonSlot", {**WEEKEND, "scan_seconds": 1.5})

    assert response.status_code == 200
    assert [name for name, _, _ in events][-1] == "problem"
    assert sum(name == "progress" for name, _, _ in events) == 4
    problem = events[-1][1]
    assert problem["status"] == 422 and problem["type"].endswith("tool-error")


def test_bad_input_is_an_ordinary_problem_even_when_events_are_asked_for(hosts):
    response, body = stream(hosts["modern"], "findCommonSlot", {"calendars": "not a list"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(body[0])["status"] == 400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/tools", None),
        ("POST", "/api/tools/findCommonSlot", {**SEARCH, "scan_seconds": 0}),
        ("POST", "/api/tools/findCommonSlot", {"calendars": 7}),
        ("POST", "/api/tools/noSuchTool", {}),
    ],
)
def test_without_the_header_streams_change_nothing_byte_for_byte(hosts, method, path, body):
    answers = []
    for name in ("classic", "modern"):
        with httpx2.Client(base_url=hosts[name].url, timeout=30) as http:
            answers.append(http.request(method, path, params={"code": FUNCTION_KEY}, json=body))
    classic, streamed = answers

    assert (streamed.status_code, streamed.content) == (classic.status_code, classic.content)
    kept = [(k, v) for k, v in classic.headers.multi_items() if k not in VOLATILE_HEADERS]
    assert [(k, v) for k, v in streamed.headers.multi_items() if k not in VOLATILE_HEADERS] == kept


def test_server_everything_progress_streams_through_the_bridge(tmp_path):
    peer = next(p for p in PEERS if p.name == "server-everything")
    if not peer.folder.exists():
        pytest.fail(f"{peer.label} is not installed: `make peers` installs it")
    process = peer.process(tmp_path)
    process.start()
    host = None
    try:
        host = _host(mcp_url(process), tmp_path / "host", streams=True, auth={"SCHEDULER_AUTH": "none"})
        response, events = stream(host, "trigger-long-running-operation", {"duration": 1, "steps": 4})
    finally:
        if host is not None:
            host.stop()
        process.stop()

    names = [name for name, _, _ in events]
    assert response.status_code == 200
    assert names.count("progress") >= 2 and names[-1] == "result", names
    assert [data["progress"] for name, data, _ in events if name == "progress"] == sorted(
        data["progress"] for name, data, _ in events if name == "progress"
    )


def _audited_slot_searches(host: ManagedProcess) -> int:
    lines = host.log_path.read_text().splitlines()
    records = [
        json.loads(line.split("audit ", 1)[1]) for line in lines if "mcp_bridge.audit: audit {" in line
    ]
    return sum(r.get("tool") == "findCommonSlot" and r.get("status") == 200 for r in records)


def test_a_caller_that_goes_away_does_not_cancel_the_call(hosts):
    host = hosts["modern"]
    before = _audited_slot_searches(host)
    with httpx2.Client(base_url=host.url, timeout=30) as http:
        with http.stream(
            "POST",
            "/api/tools/findCommonSlot",
            params={"code": FUNCTION_KEY},
            json={**SEARCH, "scan_seconds": 1.5},
            headers=SSE,
        ) as r:
            first = next(line for line in r.iter_lines() if line.startswith("event: "))
    assert first == "event: progress"  # then the caller hung up

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _audited_slot_searches(host) == before:
        time.sleep(0.2)
    assert _audited_slot_searches(host) == before + 1, "the call ran to its end and was audited"


def _watch_operation(host: ManagedProcess, body: dict[str, Any]) -> tuple[httpx2.Response, list[Any]]:
    with httpx2.Client(base_url=host.url, timeout=30) as http:
        started = http.post(
            "/api/tools/findCommonSlot",
            params={"code": FUNCTION_KEY},
            json=body,
            headers={"Prefer": "respond-async"},
        )
        assert started.status_code == 202, started.text
        location = started.headers["Operation-Location"]
        with http.stream("GET", location, params={"code": FUNCTION_KEY}, headers=SSE) as r:
            return r, read_events(r) if r.status_code == 200 else [r.read()]


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_an_operations_status_monitor_streams_its_changes_then_the_result(hosts, era):
    response, events = _watch_operation(hosts[era], {**SEARCH, "scan_seconds": 4.0})

    assert response.status_code == 200
    names = [name for name, _, _ in events]
    assert names.count("progress") >= 2 and names[-1] == "result", names
    messages = [
        data.get("progress", {}).get("statusMessage") for name, data, _ in events if name == "progress"
    ]
    assert any(message and message.startswith("Read ") for message in messages), messages
    result = events[-1][1]
    assert result["tool"] == "findCommonSlot" and result["structuredContent"]["calendars_checked"] == 4


def test_an_unknown_operation_is_an_ordinary_404_even_when_events_are_asked_for(hosts):
    with httpx2.Client(base_url=hosts["modern"].url, timeout=30) as http:
        response = http.get("/api/operations/not-an-operation", params={"code": FUNCTION_KEY}, headers=SSE)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_named_upstreams_routes_stream_too(hosts):
    with httpx2.Client(base_url=hosts["modern"].url, timeout=30) as http:
        with http.stream(
            "POST",
            "/api/servers/scheduler/tools/findCommonSlot",
            params={"code": FUNCTION_KEY},
            json={**SEARCH, "scan_seconds": 1.0},
            headers=SSE,
        ) as r:
            events = read_events(r)

    names = [name for name, _, _ in events]
    assert names == ["progress"] * 4 + ["result"], names
