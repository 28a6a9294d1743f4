"""Start, stop, kill and restart devstack stand-ins as real subprocesses.

Used by `make run` (devstack.run) and by pytest fixtures, so both exercise
the same processes the same way. Each stand-in runs as
`sys.executable -m devstack.<module> ...` on 127.0.0.1, writes its output to
a log file (never a pipe: a child blocked on a full pipe hangs the test run),
and is considered up once its readiness URL answers 200.

Children get their own session (Ctrl-C in a terminal reaches only the
parent, which then stops them in order) and the parent's pid in
`DEVSTACK_PARENT_PID`, so they exit by themselves if the parent dies
without cleaning up.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx2

from devstack.ingestion import connection_string as ingestion_connection_string
from devstack.serving import LOOPBACK_HOST, PARENT_PID_ENV

_LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_READY_TIMEOUT_SECONDS = 20.0
DEFAULT_STOP_TIMEOUT_SECONDS = 5.0
_POLL_SECONDS = 0.05


class ProcessStartError(RuntimeError):
    """A stand-in exited early or never answered its readiness URL in time; the message has its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class ManagedProcess:
    """One stand-in subprocess on a fixed port; `restart()` brings it back on the same port."""

    name: str
    module: str
    args: list[str]
    port: int
    log_path: Path
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT
    command: list[str] | None = None
    """A non-Python program (Azurite) runs this instead of `python -m module`."""
    ready_statuses: tuple[int, ...] = (200,)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:5146 (no trailing slash)."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Launch the subprocess without waiting for it; call `wait_ready()` next."""
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"\n--- starting {self.name}: -m {self.module} on port {self.port}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            [*(self.command or [sys.executable, "-m", self.module]), *self.args],
            cwd=self.cwd,
            env=self._child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LOGGER.info(
            "started %s (pid %d) on port %d, log %s", self.name, self.process.pid, self.port, self.log_path
        )

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_SECONDS) -> None:
        """Block until `GET url+ready_path` answers 200; raise `ProcessStartError` on exit or timeout."""
        deadline = time.monotonic() + timeout
        ready_url = self.url + self.ready_path
        with self._ready_client() as client:
            while True:
                if not self.is_running():
                    raise ProcessStartError(
                        f"{self.name} exited early (code {self._returncode()}):\n{self.log_tail()}"
                    )
                try:
                    if client.get(ready_url).status_code in self.ready_statuses:
                        return
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ProcessStartError(
                        f"{self.name} not ready at {ready_url} after {timeout}s:\n{self.log_tail()}"
                    )
                time.sleep(_POLL_SECONDS)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS) -> None:
        """Ask politely (SIGTERM), then SIGKILL after `timeout`; safe to call when already stopped."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("%s ignored SIGTERM for %.1fs; killing it", self.name, timeout)
                process.kill()
                process.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL now, no shutdown at all: a region crashing mid-flight, for failover tests."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
            _LOGGER.info("killed %s (pid %d)", self.name, process.pid)
        self._close_log()

    def restart(self, timeout: float = DEFAULT_READY_TIMEOUT_SECONDS) -> None:
        """Stop if needed, start again on the same port, and wait until ready."""
        self.stop()
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port):
            if time.monotonic() > deadline:
                raise ProcessStartError(f"port {self.port} of {self.name} did not free up in {timeout}s")
            time.sleep(_POLL_SECONDS)
        self.start()
        self.wait_ready(max(deadline - time.monotonic(), 1.0))

    def _ready_client(self) -> httpx2.Client:
        return httpx2.Client(timeout=1.0, trust_env=False)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        env[PARENT_PID_ENV] = str(os.getpid())
        env["PYTHONUNBUFFERED"] = "1"
        python_path = [str(REPO_ROOT)]
        if env.get("PYTHONPATH"):
            python_path.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(python_path)
        return env

    def _returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@dataclass
class SchedulerProcess(ManagedProcess):
    """A Scheduler region; `mcp_url` is what a client connects to. With `tls_dir` it serves HTTPS
    with a certificate of the devstack CA (`ca_file`), as a real Scheduler does."""

    region: str = "eastus"
    tls_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_dir else 'http'}://{LOOPBACK_HOST}:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    @property
    def ca_file(self) -> Path | None:
        return None if self.tls_dir is None else self.tls_dir / "ca.pem"

    def set_session_answer(self, style: str) -> None:
        """Start with this unknown-session answer style from the next (re)start on."""
        if "--session-answer" in self.args:
            self.args[self.args.index("--session-answer") + 1] = style
        else:
            self.args += ["--session-answer", style]

    def _ready_client(self) -> httpx2.Client:
        if self.ca_file is None:
            return super()._ready_client()
        return httpx2.Client(
            timeout=1.0, trust_env=False, verify=ssl.create_default_context(cafile=str(self.ca_file))
        )

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while self.ca_file is not None and not self.ca_file.exists():
            if not self.is_running() or time.monotonic() > deadline:
                raise ProcessStartError(f"{self.name} wrote no {self.ca_file}:\n{self.log_tail()}")
            time.sleep(_POLL_SECONDS)
        super().wait_ready(max(deadline - time.monotonic(), 1.0))


@dataclass
class IngestionProcess(ManagedProcess):
    """The Azure Monitor ingestion stand-in; `connection_string` points the real exporter at it."""

    @property
    def connection_string(self) -> str:
        return ingestion_connection_string(self.url)


@dataclass
class IdentityProcess(ManagedProcess):
    """The managed-identity endpoint; `token_url` is the value for IDENTITY_ENDPOINT."""

    @property
    def token_url(self) -> str:
        return f"{self.url}/msi/token"


@dataclass
class KeyVaultProcess(ManagedProcess):
    """The Key Vault stand-in, over HTTPS; clients trust `ca_file` (created when it starts)."""

    tls_dir: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        """The vault URL, e.g. https://127.0.0.1:5149 (a `SecretClient`'s `vault_url`)."""
        return f"https://{LOOPBACK_HOST}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    def _ready_client(self) -> httpx2.Client:
        return httpx2.Client(
            timeout=1.0, trust_env=False, verify=ssl.create_default_context(cafile=str(self.ca_file))
        )

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_SECONDS) -> None:
        """Wait for the child to write its CA (first start), then for the HTTPS readiness URL."""
        deadline = time.monotonic() + timeout
        while not self.ca_file.exists():
            if not self.is_running():
                raise ProcessStartError(
                    f"{self.name} exited early (code {self._returncode()}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ProcessStartError(
                    f"{self.name} wrote no {self.ca_file} in {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)
        super().wait_ready(max(deadline - time.monotonic(), 1.0))


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port` now (SO_REUSEADDR like uvicorn, so TIME_WAIT doesn't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK_HOST, port))
        except OSError:
            return False
        return True


def _launch(process: ManagedProcess, *, wait: bool, ready_timeout: float) -> None:
    process.start()
    if wait:
        try:
            process.wait_ready(ready_timeout)
        except BaseException:
            process.stop()
            raise


def start_scheduler(
    *,
    port: int,
    region: str,
    log_dir: Path,
    signing_key: str,
    client_id: str,
    api_key: str,
    audience: str = "api://scheduler-devstack",
    era: str = "modern",
    state_file: Path | None = None,
    tools_ttl_ms: int | None = None,
    tls_dir: Path | None = None,
    keep_alive_seconds: float | None = None,
    session_answer: str | None = None,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> SchedulerProcess:
    """Start `python -m devstack.scheduler` for one region; ready when `GET /ping` answers.

    `tls_dir`: serve HTTPS (the CA lands there); `keep_alive_seconds`: uvicorn's idle keep-alive
    (5 s unless given); `session_answer`: how an unknown session id is answered from the start
    (devstack.scheduler_session_answers; `set_session_answer` changes it for the next restart)."""
    args = [
        "--port", str(port),
        "--region", region,
        "--era", era,
        "--audience", audience,
        "--signing-key", signing_key,
        "--client-id", client_id,
        "--api-key", api_key,
    ]  # fmt: skip
    if state_file is not None:
        args += ["--state-file", str(state_file)]
    if tools_ttl_ms is not None:
        args += ["--tools-ttl-ms", str(tools_ttl_ms)]
    if tls_dir is not None:
        args += ["--tls-dir", str(tls_dir)]
    if keep_alive_seconds is not None:
        args += ["--keep-alive", str(keep_alive_seconds)]
    if session_answer is not None:
        args += ["--session-answer", session_answer]
    process = SchedulerProcess(
        name=f"scheduler-{region}",
        module="devstack.scheduler",
        args=args,
        port=port,
        log_path=log_dir / f"scheduler-{region}.log",
        ready_path="/ping",
        region=region,
        tls_dir=tls_dir,
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


def start_identity(
    *,
    port: int,
    log_dir: Path,
    header_secret: str,
    signing_key: str,
    lifetime_seconds: int = 3600,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> IdentityProcess:
    """Start `python -m devstack.identity`; ready when `GET /_devstack/counters` answers."""
    process = IdentityProcess(
        name="identity",
        module="devstack.identity",
        args=[
            "--port",
            str(port),
            "--header-secret",
            header_secret,
            "--signing-key",
            signing_key,
            "--lifetime-seconds",
            str(lifetime_seconds),
        ],
        port=port,
        log_path=log_dir / "identity.log",
        ready_path="/_devstack/counters",
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


def start_ingestion(
    *,
    port: int,
    log_dir: Path,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> IngestionProcess:
    """Start `python -m devstack.ingestion`; ready when `GET /_devstack/envelopes` answers."""
    process = IngestionProcess(
        name="ingestion",
        module="devstack.ingestion",
        args=["--port", str(port)],
        port=port,
        log_path=log_dir / "ingestion.log",
        ready_path="/_devstack/envelopes",
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


def start_host(
    *,
    port: int,
    log_dir: Path,
    app_dir: Path,
    settings_file: Path | None = None,
    env: dict[str, str] | None = None,
    warm_up: bool = False,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> ManagedProcess:
    """Start `python -m devstack.host` for `app_dir`'s function_app; ready when `/admin/host/ping` answers
    (with `warm_up`, after the app's warm-up functions ran).

    `env` is added to the child's environment; like real app settings it wins
    over `local.settings.json` values.
    """
    args = ["--port", str(port), "--app-dir", str(app_dir)]
    if settings_file is not None:
        args += ["--settings", str(settings_file)]
    if warm_up:
        args.append("--warm-up")
    process = ManagedProcess(
        name="host",
        module="devstack.host",
        args=args,
        port=port,
        log_path=log_dir / "host.log",
        ready_path="/admin/host/ping",
        env=dict(env or {}),
        cwd=app_dir,
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


AZURITE_BLOB = REPO_ROOT / ".devstack" / "node" / "node_modules" / ".bin" / "azurite-blob"
"""Installed by `make install` from npm."""

AZURITE_FLAGS = ("--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
"""How every devstack Azurite runs. `--disableTelemetry` matters beyond privacy: Azurite's telemetry
client sends a stop event to Microsoft's ingestion endpoint on SIGTERM and keeps node alive until
that send ends (20 s on our build machine), long after Azurite logs "successfully closed"."""


def start_azurite(
    *,
    port: int,
    log_dir: Path,
    location: Path,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> ManagedProcess:
    """Start Azurite's blob service (the real storage emulator); ready when the account answers.

    An unauthenticated account request answers 403: that is Azurite up and checking signatures.
    """
    if not AZURITE_BLOB.exists():
        raise ProcessStartError(f"Azurite is not installed at {AZURITE_BLOB}; run `make install`")
    location.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        name="azurite",
        module="azurite-blob",
        command=[str(AZURITE_BLOB)],
        args=["--blobHost", LOOPBACK_HOST, "--blobPort", str(port), "--location", str(location),
              *AZURITE_FLAGS],
        port=port,
        log_path=log_dir / "azurite.log",
        ready_path="/devstoreaccount1?comp=list",
        ready_statuses=(200, 403),
    )  # fmt: skip
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


EVERYTHING_FOLDER = REPO_ROOT / ".cache" / "conformance" / "server-everything"
EVERYTHING_SCRIPT = EVERYTHING_FOLDER / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
LOOPBACK_PRELOAD = REPO_ROOT / "tests" / "conformance" / "peers" / "loopback.cjs"


def start_everything(
    *,
    port: int,
    name: str,
    log_dir: Path,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> ManagedProcess:
    """Start `@modelcontextprotocol/server-everything` (the MCP project's own reference server, from
    the conformance matrix, installed by `make peers`) as a second upstream: a server another team
    wrote, with other tools, no auth and its own session habits. Ready once `/mcp` answers at all."""
    import shutil

    if not EVERYTHING_SCRIPT.exists():
        raise ProcessStartError(
            f"server-everything is not installed at {EVERYTHING_FOLDER}; run `make peers`"
        )
    process = ManagedProcess(
        name=name,
        module="server-everything",
        command=[shutil.which("node") or "node", "-r", str(LOOPBACK_PRELOAD), str(EVERYTHING_SCRIPT)],
        args=["streamableHttp"],
        port=port,
        log_path=log_dir / f"{name}.log",
        ready_path="/mcp",
        ready_statuses=tuple(range(200, 500)),
        env={"PORT": str(port), "NODE_ENV": "production"},
        cwd=EVERYTHING_FOLDER,
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process


def start_keyvault(
    *,
    port: int,
    log_dir: Path,
    signing_key: str,
    tls_dir: Path,
    wait: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
) -> KeyVaultProcess:
    """Start `python -m devstack.keyvault` (HTTPS); ready when `GET /_devstack/counters` answers.

    The CA and server certificate are generated into `tls_dir` on first start and reused after, so
    a restart keeps the certificate clients already trust.
    """
    process = KeyVaultProcess(
        name="keyvault",
        module="devstack.keyvault",
        args=["--port", str(port), "--signing-key", signing_key, "--tls-dir", str(tls_dir)],
        port=port,
        log_path=log_dir / "keyvault.log",
        ready_path="/_devstack/counters",
        tls_dir=tls_dir,
    )
    _launch(process, wait=wait, ready_timeout=ready_timeout)
    return process
