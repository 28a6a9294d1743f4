"""`make run` end to end: devstack.run against a throwaway app; Ctrl-C then leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2

from devstack.processes import REPO_ROOT, free_port, port_is_free
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
