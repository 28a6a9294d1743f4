"""Run an ASGI app with uvicorn on loopback, the one way every devstack CLI serves.

Every stand-in binds 127.0.0.1 only: these are development doubles holding
test credentials, never something another machine should reach. A stand-in
started by `devstack.processes` also watches the process that started it and
shuts down when that parent is gone, so a crashed test run or a killed
`make run` leaves no orphan servers holding ports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

_LOGGER = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
PARENT_PID_ENV = "DEVSTACK_PARENT_PID"
"""Set by `devstack.processes`: the pid whose death should stop this server."""

_PARENT_POLL_SECONDS = 1.0
_GRACEFUL_SHUTDOWN_SECONDS = 3


def configure_logging(level: int = logging.INFO) -> None:
    """Send log records to stdout with timestamps; called by CLIs only, never on import."""
    logging.basicConfig(
        level=level,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def build_server(
    app: ASGIApp,
    *,
    port: int,
    access_log: bool = False,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    keep_alive_seconds: float = 5,
) -> uvicorn.Server:
    """A uvicorn server for `app` on 127.0.0.1:`port`, over TLS when given a certificate and key.

    `keep_alive_seconds` is how long an idle client connection is kept (uvicorn's default, 5 s,
    unless a stand-in plays a production server).

    The graceful-shutdown bound matters: a stand-in told to hang a request
    forever must still stop when asked.
    """
    config = uvicorn.Config(
        app,
        host=LOOPBACK_HOST,
        port=port,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=keep_alive_seconds,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    return uvicorn.Server(config)


def serve(
    app: ASGIApp,
    *,
    port: int,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    keep_alive_seconds: float = 5,
) -> None:
    """Serve `app` until SIGINT/SIGTERM, or until the parent named in the environment dies."""
    server = build_server(
        app,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        keep_alive_seconds=keep_alive_seconds,
    )
    asyncio.run(_serve_watching_parent(server))


async def _serve_watching_parent(server: uvicorn.Server) -> None:
    parent_pid = _parent_pid_from_env()
    watcher = asyncio.create_task(_stop_when_parent_dies(server, parent_pid)) if parent_pid else None
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()


def _parent_pid_from_env() -> int | None:
    raw = os.environ.get(PARENT_PID_ENV, "")
    return int(raw) if raw.isdigit() else None


async def _stop_when_parent_dies(server: uvicorn.Server, parent_pid: int) -> None:
    while True:
        await asyncio.sleep(_PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            _LOGGER.warning("parent process %d is gone; shutting down", parent_pid)
            server.should_exit = True
            return
