"""Install the conformance peers, pinned, into `.cache/conformance/<peer>/`: `python -m tests.conformance.install`.

Run by `make test` and `make conformance` before pytest. Each peer gets its own npm folder or
venv, because they pin different `mcp` versions. A peer whose stamp matches its lock files (and
the Python or Node major version) is left alone, so a warm run costs a few file reads; a changed
lock reinstalls that peer from nothing. Peers install in parallel: the work is mostly downloads.

npm peers install with `npm ci` from a committed lockfile. Python peers install with uv from a
fully compiled requirements file (`uv pip sync`): about 4 s per venv, where pip took 50-80 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conformance.peers import CACHE, LOCKS, PEERS, Peer

STAMP = ".installed"
RECIPE = "3"
"""Part of every stamp: bump it when the install steps change, so every peer is reinstalled."""
_NPM_FILES = ("package.json", "package-lock.json")
_PY_FILES = ("requirements.txt",)


class InstallError(RuntimeError):
    pass


def _fingerprint(peer: Peer) -> str:
    digest = hashlib.sha256(RECIPE.encode())
    for name in _NPM_FILES if peer.kind == "npm" else _PY_FILES:
        digest.update((LOCKS / peer.name / name).read_bytes())
    digest.update(f"{sys.version_info[:2]}".encode() if peer.kind == "python" else _node_major().encode())
    return digest.hexdigest()


def _node_major() -> str:
    node = shutil.which("node")
    if node is None:
        raise InstallError("node is not on PATH (the npm peers need it)")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().split(".")[0]


def installed(peer: Peer) -> bool:
    stamp = peer.folder / STAMP
    try:
        return json.loads(stamp.read_text())["fingerprint"] == _fingerprint(peer)
    except (OSError, ValueError, KeyError):
        return False


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise InstallError(f"{' '.join(argv[:3])} failed ({result.returncode}):\n{tail}")


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise InstallError("uv is missing: `make install` installs it (requirements-dev.txt)")
    return found


def _install_python(peer: Peer) -> str:
    venv = peer.folder / "venv"
    uv = _uv()
    # The venv's own interpreter, not the bridge's venv: uv resolves it to the base Python.
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=peer.folder)
    lock = LOCKS / peer.name / "requirements.txt"
    # Not byte-compiled here (16 s for fastmcp's tree): a peer's first start writes the .pyc files
    # of the modules it imports (peers.Peer.process lifts PYTHONDONTWRITEBYTECODE for that).
    python = str(venv / "bin" / "python")
    _run([uv, "pip", "sync", "--quiet", "--python", python, str(lock)], cwd=peer.folder)
    probe = f"import importlib.metadata as m; print(m.version({peer.package!r}))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.strip()


def _install_npm(peer: Peer) -> str:
    for name in _NPM_FILES:
        shutil.copyfile(LOCKS / peer.name / name, peer.folder / name)
    _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=peer.folder)
    manifest = peer.folder / "node_modules" / peer.package / "package.json"
    return json.loads(manifest.read_text())["version"]


def install(peer: Peer) -> float:
    """Install `peer` from nothing unless its stamp is current; returns the seconds spent."""
    if installed(peer):
        return 0.0
    started = time.monotonic()
    if peer.folder.exists():
        shutil.rmtree(peer.folder)
    peer.folder.mkdir(parents=True)
    version = _install_python(peer) if peer.kind == "python" else _install_npm(peer)
    if version != peer.version:
        raise InstallError(f"{peer.name}: installed {peer.package} {version}, pinned {peer.version}")
    stamp = {"fingerprint": _fingerprint(peer), "package": peer.package, "version": version}
    (peer.folder / STAMP).write_text(json.dumps(stamp))
    return time.monotonic() - started


def main() -> int:
    CACHE.mkdir(parents=True, exist_ok=True)
    pending = [peer for peer in PEERS if not installed(peer)]
    if not pending:
        return 0
    print(f"conformance peers: installing {', '.join(p.name for p in pending)} into {CACHE}", flush=True)
    started = time.monotonic()
    failures = []
    with ThreadPoolExecutor(max_workers=len(pending)) as pool:
        futures = {peer: pool.submit(install, peer) for peer in pending}
        for peer, future in futures.items():
            try:
                print(f"  {peer.label}: {future.result():.1f} s", flush=True)
            except (InstallError, OSError, subprocess.CalledProcessError) as exc:
                failures.append(f"{peer.name}: {exc}")
    print(f"conformance peers: installed in {time.monotonic() - started:.1f} s", flush=True)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
