"""Start `tests.peers.interactive` as a real process on a free loopback port."""

from __future__ import annotations

from pathlib import Path

from devstack.processes import ManagedProcess, free_port


def start_interactive_peer(log_dir: Path, *, era: str, extra: list[str] | None = None) -> ManagedProcess:
    port = free_port()
    process = ManagedProcess(
        name=f"interactive-{era}-{port}",
        module="tests.peers.interactive",
        args=["--port", str(port), "--era", era, *(extra or [])],
        port=port,
        log_path=log_dir / f"interactive-{era}-{port}.log",
        ready_path="/healthz",
    )
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process
