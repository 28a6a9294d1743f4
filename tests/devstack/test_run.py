"""`make run` end to end: devstack.run against a throwaway app; Ctrl-C then leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2

from devstack.processes import REPO_ROOT, free_port, port_is_free
from devstack.run import LONG_RUNNING_HEADING, WATCH_HEADING
from tests.devstack.conftest import SIGNING_KEY

FUNCTION_APP = textwrap.dedent(
    """
    import os
    import azure.functions as func

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="setting/{name}", methods=["GET"])
    def setting(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(os.environ.get(req.route_params["name"], "<unset>"))
    """
)


def write_app(app_dir: Path, ports: dict[str, int]) -> None:
    (app_dir / "function_app.py").write_text(FUNCTION_APP)
    shutil.copyfile(REPO_ROOT / "host.json", app_dir / "host.json")
    values = {
        "SCHEDULER_ENDPOINTS": f"http://127.0.0.1:{ports['east']}/mcp,http://127.0.0.1:{ports['west']}/mcp",
        "SCHEDULER_TOKEN_SCOPE": "api://scheduler-devstack/.default",
        "IDENTITY_ENDPOINT": f"http://127.0.0.1:{ports['identity']}/msi/token",
        "IDENTITY_HEADER": "run-test-identity-header",
        "DEVSTACK_SIGNING_KEY": SIGNING_KEY,
        "SCHEDULER_CLIENT_ID": "run-test-client",
        "SCHEDULER_API_KEY": "run-test-api-key",
        "DEVSTACK_FUNCTION_KEY": "run-test-function-key",
        "DEVSTACK_MASTER_KEY": "run-test-master-key",
        "FROM_SETTINGS_FILE": "yes",
    }
    (app_dir / "local.settings.json.example").write_text(json.dumps({"IsEncrypted": False, "Values": values}))


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_make_run_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    ports = {"east": free_port(), "west": free_port(), "identity": free_port(), "host": free_port()}
    write_app(tmp_path, ports)
    output = tmp_path / "run.out"
    with output.open("wb") as sink:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.run",
                "--app-dir",
                str(tmp_path),
                "--host-port",
                str(ports["host"]),
            ],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for(f"http://127.0.0.1:{ports['host']}/admin/host/ping")
            host = f"http://127.0.0.1:{ports['host']}/api"
            from_file = httpx2.get(f"{host}/setting/FROM_SETTINGS_FILE?code=run-test-function-key")
            unauthorized = httpx2.get(f"{host}/setting/FROM_SETTINGS_FILE")
            east = httpx2.get(f"http://127.0.0.1:{ports['east']}/ping").json()
            west = httpx2.get(f"http://127.0.0.1:{ports['west']}/ping").json()
            wait_for_text(output, "Press Ctrl-C to stop.")
        finally:
            run.send_signal(signal.SIGINT)
            exit_code = run.wait(timeout=20)

    printed = output.read_text()
    assert exit_code == 0, printed
    assert (tmp_path / "local.settings.json").exists()
    assert from_file.text == "yes"
    assert unauthorized.status_code == 401
    assert (east["region"], west["region"]) == ("eastus", "westus")
    assert "/api/tools/scheduleConversation?code=run-test-function-key" in printed
    assert "devstack stopped." in printed
    assert all(port_is_free(port) for port in ports.values())
    logs = sorted(path.name for path in (tmp_path / ".devstack" / "logs").iterdir())
    assert logs == ["host.log", "identity.log", "scheduler-eastus.log", "scheduler-westus.log"]


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- a newcomer's first run -----------------------------------------------------------------------


def run_devstack(app_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.run", "--app-dir", str(app_dir), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_bad_settings_are_reported_one_line_each_without_a_traceback(tmp_path: Path) -> None:
    values = {
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_ENDPOINTS": "https://east.example/mcp,http://127.0.0.1:5146/mcp",
        "IDENTITY_ENDPOINT": "http://127.0.0.1:5148/token",
        "IDENTITY_HEADER": "h",
    }
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": values}))

    result = run_devstack(tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert [line.split(":")[0] for line in problems] == [
        "SCHEDULER_TOKEN_SCOPE",
        "SCHEDULER_ENDPOINTS",
        "IDENTITY_ENDPOINT",
        "DEVSTACK_SIGNING_KEY",
    ]
    endpoints = problems[1]
    assert "cannot serve https://east.example/mcp;" in endpoints
    assert "http://127.0.0.1:<port>/mcp" in endpoints  # what it can serve instead
    assert "http://127.0.0.1:5148/msi/token" in problems[2]
    assert not (tmp_path / ".devstack").exists(), "nothing was started"


def test_a_broken_settings_file_is_one_line_too(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {')

    result = run_devstack(tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not valid JSON" in result.stderr


def write_bridge_app(app_dir: Path, ports: dict[str, int]) -> None:
    """The real function app in api_key mode, with no token scope and no storage (no fixed ports)."""
    shutil.copyfile(REPO_ROOT / "function_app.py", app_dir / "function_app.py")
    shutil.copyfile(REPO_ROOT / "host.json", app_dir / "host.json")
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "SCHEDULER_ENDPOINTS": f"http://127.0.0.1:{ports['east']}/mcp,http://127.0.0.1:{ports['west']}/mcp",
        "SCHEDULER_AUTH": "api_key",
        "SCHEDULER_CLIENT_ID": "first-run-client",
        "SCHEDULER_API_KEY": "first-run-api-key-0123456789",
        "IDENTITY_ENDPOINT": f"http://127.0.0.1:{ports['identity']}/msi/token",
        "IDENTITY_HEADER": "first-run-identity-header",
        "DEVSTACK_SIGNING_KEY": SIGNING_KEY,
        "DEVSTACK_FUNCTION_KEY": "first-run-function-key",
        "DEVSTACK_MASTER_KEY": "first-run-master-key",
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
        "HTTP_STREAMS": "true",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        # A second MCP server behind the same bridge: server-everything (docs/several-servers.md).
        "MCP_UPSTREAMS": "scheduler,everything",
        "EVERYTHING_ENDPOINTS": f"http://127.0.0.1:{ports['everything']}/mcp",
        "EVERYTHING_AUTH": "none",
        "EVERYTHING_PING_PATH": "",
    }
    (app_dir / "local.settings.json.example").write_text(json.dumps({"Values": values}))


def printed_commands(banner: str) -> str:
    """The shell lines between "Function key:" and "Press Ctrl-C", exactly as printed."""
    lines = banner.split("Press Ctrl-C to stop.")[0].split("Function key:")[1].splitlines()[1:]
    return "\n".join(line for line in lines if line.strip())


def test_the_printed_curls_work_as_pasted_in_api_key_mode_without_a_scope(tmp_path: Path) -> None:
    ports = {
        "east": free_port(),
        "west": free_port(),
        "identity": free_port(),
        "host": free_port(),
        "everything": free_port(),
    }
    write_bridge_app(tmp_path, ports)
    output = tmp_path / "run.out"
    with output.open("wb") as sink:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.run",
                "--app-dir",
                str(tmp_path),
                "--host-port",
                str(ports["host"]),
            ],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_text(output, "Press Ctrl-C to stop.", timeout=60)
            assert "Press Ctrl-C to stop." in output.read_text(), output.read_text()
            commands, watch = printed_commands(output.read_text()).split(WATCH_HEADING)
            # Everything but the watch, which follows the 20-second search to its end.
            shell = run_pasted(commands, tmp_path)
        finally:
            run.send_signal(signal.SIGINT)
            exit_code = run.wait(timeout=20)

    assert "<" not in commands + watch, "no placeholder left to fill in"
    long_running = commands.split(LONG_RUNNING_HEADING)[1]
    start, poll = [line for line in long_running.splitlines() if line.startswith(("op=", "curl"))]
    assert "-H 'Prefer: respond-async'" in start and "/api/operations/$op?code=" in poll
    assert "/api/operations/$op?code=" in watch and "-H 'Accept: text/event-stream'" in watch
    assert shell.returncode == 0, shell.stderr
    # Each curl's status goes to a file of its own: the schedule answer reaches stderr through `tee`.
    statuses = (tmp_path / "curl-statuses").read_text()
    # the five calls, the second server's two, then the operation: 202 Accepted, then its monitor
    assert re.findall(r"HTTP (\d{3})\n", statuses) == ["200"] * 7 + ["202", "200"], (statuses, shell.stderr)
    lines = shell.stdout.splitlines()
    tools, status, health = [json.loads(line) for line in lines[:3]]
    events = [line for line in lines[3:-1] if line.startswith("event: ")]
    assert events.count("event: progress") == 3 and events[-1] == "event: result", lines[3:]
    monitor = json.loads(lines[-1])
    assert monitor["tool"] == "findCommonSlot" and monitor["status"] in ("NotStarted", "Running"), monitor
    assert "scheduleConversation" in [tool["name"] for tool in tools["tools"]]
    assert status["status"]["status"] == "scheduled"
    assert status["conversation_id"].startswith("conv-")
    # ok once the first probe round (started by the first call) is in; unknown until then.
    assert health["status"] in ("ok", "unknown"), health
    assert set(health["upstreams"]) == {"scheduler", "everything"}
    # The second server, another team's: its own tools, called through /api/servers/everything/.
    everything_tools, echoed = [json.loads(line) for line in lines[-3:-1]]
    assert everything_tools["endpoint"] == f"http://127.0.0.1:{ports['everything']}/mcp"
    assert "echo" in [tool["name"] for tool in everything_tools["tools"]]
    assert "scheduleConversation" not in [tool["name"] for tool in everything_tools["tools"]]
    assert "hello from the bridge" in echoed["content"][0]["text"]
    assert exit_code == 0, output.read_text()
    assert (tmp_path / ".devstack" / "logs" / "everything-1.log").exists()


def run_pasted(commands: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the commands through sh as a reader would, each curl also reporting its status on stderr.

    Where curl is missing, a stand-in that makes the same request with httpx2 takes its place.
    """
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    real_curl = shutil.which("curl")
    if real_curl is None:
        (bin_dir / "curl").write_text(f"#!{sys.executable}\n{CURL_STAND_IN}")
    else:
        # The last -w wins: this one keeps the printed command's newline and adds the status.
        (bin_dir / "curl").write_text(
            f'#!/bin/sh\nexec {real_curl} "$@" -w \'\\n%{{stderr}}HTTP %{{http_code}}\\n\' 2>>"$CURL_STATUSES"\n'
        )
    (bin_dir / "curl").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CURL_STATUSES": str(workdir / "curl-statuses"),
    }
    script = "set -e\n" + commands + "\n"
    return subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=workdir
    )


CURL_STAND_IN = textwrap.dedent(
    """
    import os, sys, httpx2
    args, method, headers, data, url = sys.argv[1:], "GET", {}, None, None
    while args:
        arg = args.pop(0)
        if arg == "-X": method = args.pop(0)
        elif arg == "-H": name, _, value = args.pop(0).partition(":"); headers[name] = value.strip()
        elif arg == "-d": data = args.pop(0)
        elif arg == "-w": args.pop(0)
        elif arg in ("-s", "-N", "-sN"): pass
        else: url = arg
    response = httpx2.request(method, url, headers=headers, content=data, timeout=60)
    sys.stdout.write(response.text + "\\n")
    with open(os.environ["CURL_STATUSES"], "a") as statuses:
        statuses.write(f"HTTP {response.status_code}\\n")
    """
)
