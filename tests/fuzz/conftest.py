"""Fuzzing fixtures: the bridge behind the devstack Functions host, and a tally of bad inputs tried.

Every bad input a property or fuzz test sends is counted by kind (`tally`), and the session ends
with one summary line, so a run shows what was tried, not just that it passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.processes import ManagedProcess, free_port, start_host

from ..conftest import API_KEY, IDENTITY_HEADER, SCOPE, SIGNING_KEY, Devstack

FUNCTION_KEY = "fuzz-function-key-0123456789"
MASTER_KEY = "fuzz-master-key-0123456789"
HOST_MAX_REQUEST_BYTES = 4096
SECRETS = (FUNCTION_KEY, MASTER_KEY, API_KEY, IDENTITY_HEADER, SIGNING_KEY)

tally: Counter[str] = Counter()
"""Bad inputs tried in this session, by kind."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not tally:
        return
    kinds = ", ".join(f"{kind}={count}" for kind, count in sorted(tally.items()))
    terminalreporter.write_line(f"bad inputs tried: {sum(tally.values())} ({kinds})")


@dataclass
class FuzzHost:
    process: ManagedProcess
    log_path: Path

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def fuzz_host(devstack: Devstack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHost]:
    """`function_app.py` served over real HTTP with function keys, pointing at the test devstack."""
    devstack.ensure_running()  # failover tests kill regions; they are restarted per test, not per module
    log_dir = tmp_path_factory.mktemp("fuzz-host")
    env = {
        "SCHEDULER_ENDPOINTS": f"{devstack.east.mcp_url},{devstack.west.mcp_url}",
        "SCHEDULER_AUTH": "managed_identity",
        "SCHEDULER_TOKEN_SCOPE": SCOPE,
        "SCHEDULER_CLIENT_ID": "",
        "SCHEDULER_API_KEY": "",
        "SCHEDULER_TIMEOUT_SECONDS": "10",
        "MAX_REQUEST_BYTES": str(HOST_MAX_REQUEST_BYTES),
        "IDENTITY_ENDPOINT": devstack.identity.token_url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",  # not during the run: the counters must be the fuzzer's
        "AzureWebJobsStorage": "",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": MASTER_KEY,
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    process = start_host(
        port=free_port(),
        log_dir=log_dir,
        app_dir=Path(__file__).resolve().parents[2],
        settings_file=log_dir / "no-local-settings.json",
        env=env,
    )
    try:
        yield FuzzHost(process, log_dir / "host.log")
    finally:
        process.stop()
