"""Build the deployment zip: the app as `.funcignore` leaves it, with its dependencies for Linux.

    python -m tools.package            # make package: build/package/ and build/scheduler-bridge.zip

The zip is what `az functionapp deployment source config-zip --src build/scheduler-bridge.zip`
uploads, and `build/package/` is what `azd deploy` zips (azure.yaml `dist`, `remoteBuild: false`):

    function_app.py, host.json, requirements.txt, mcp_bridge/...   the project, .funcignore applied
    .python_packages/lib/site-packages/...                          requirements.txt, CPython 3.11,
                                                                    manylinux x86_64 wheels only

The Functions Python worker puts `.python_packages/lib/site-packages` on `sys.path`, so nothing is
built on the server. Dependencies are installed with uv (`install_dependencies` says why).

`.funcignore` is read with gitignore semantics (pathspec), as Core Tools read it, and applies to the
project only: the installed dependencies are never filtered by it (a `tests` pattern must not strip
a library's `tests` package). A directory holding `pyvenv.cfg` (a virtualenv, whatever its name, such
as the one `azd` creates beside the project) is never packaged either.

Every module gets a checked-hash `.pyc` (PEP 552): the deployed package is read-only, so without
one each cold start compiles every module it imports, and a timestamp-checked `.pyc` would be
rejected because the zip does not keep modification times. Checked, not unchecked: the import
hashes the source and uses the `.pyc` only when it matches, so a source edited in place (Kudu, a
hotfix) is never shadowed by stale bytecode; the hash costs little (docs/performance.md). The zip
itself is reproducible: sorted entries, fixed timestamps.
"""

from __future__ import annotations

import argparse
import compileall
import logging
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

_LOGGER = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(".python_packages/lib/site-packages")
PYTHON_VERSION = "3.11"
"""The runtime in infra/core/functionapp.bicep (functionAppConfig.runtime.version)."""
MAX_GLIBC_MINOR = 28
"""Newest manylinux_2_N accepted (older ones are too). The Functions Python 3.11 images run Debian
with glibc 2.31 or later; 2.28 leaves room and is what current wheels are commonly built for."""
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    """What `build` produced."""

    zip_path: Path
    staging: Path
    project_files: tuple[str, ...]
    """Project files packaged, POSIX paths relative to the root (dependencies not included)."""
    entries: int
    size_bytes: int


def ignore_spec(root: Path) -> pathspec.PathSpec:
    """The project's `.funcignore` (empty when there is none), gitignore semantics."""
    ignore_file = root / ".funcignore"
    lines = ignore_file.read_text().splitlines() if ignore_file.is_file() else []
    return pathspec.GitIgnoreSpec.from_lines(lines)


def project_files(root: Path, spec: pathspec.PathSpec, *, exclude: Sequence[Path] = ()) -> list[str]:
    """Files under `root` that `spec` leaves in, as sorted POSIX paths relative to `root`.

    Ignored directories are pruned rather than walked (`.venv` alone holds tens of thousands of
    files); `exclude` names more directories to leave out (the build output)."""
    excluded = {path.resolve() for path in exclude}
    found = []
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        relative = here.relative_to(root)
        kept = []
        for name in dirnames:
            path = here / name
            rel = (relative / name).as_posix()
            if path.resolve() in excluded or (path / "pyvenv.cfg").exists() or spec.match_file(rel + "/"):
                continue
            kept.append(name)
        dirnames[:] = kept
        found += [
            rel for rel in ((relative / name).as_posix() for name in filenames) if not spec.match_file(rel)
        ]
    return sorted(found)


def install_dependencies(requirements: Path, target: Path, *, extra_args: Sequence[str] = ()) -> None:
    """Install `requirements` into `target` for CPython 3.11 on manylinux x86_64, wheels only: a
    package without a compatible wheel fails the build instead of compiling for this machine.

    uv, not pip: with a target platform pip asks the index about each package in turn (about a
    minute for this app's 74 distributions here); uv asks in parallel and caches (about 6 s cold).
    The installed files are the same either way."""
    from uv import find_uv_bin

    command = [
        find_uv_bin(), "pip", "install",
        "--quiet", "--no-config",
        "--target", str(target),
        "--python-version", PYTHON_VERSION,
        "--python-platform", f"x86_64-manylinux_2_{MAX_GLIBC_MINOR}",
        "--only-binary", ":all:",
        "--requirement", str(requirements),
        *extra_args,
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 (uv from requirements-dev.txt, fixed arguments)
    (target / ".lock").unlink(missing_ok=True)  # uv's lock file for the target directory


def compile_bytecode(staging: Path) -> bool:
    """Checked-hash `.pyc` for every module; only when this interpreter is the target version."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        _LOGGER.warning("Not compiling bytecode: Python %s is not the target %s", sys.version, PYTHON_VERSION)
        return False
    return compileall.compile_dir(
        staging,
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )


def write_zip(staging: Path, zip_path: Path) -> int:
    """Zip `staging` reproducibly; returns the number of entries."""
    files = sorted(
        (path.relative_to(staging).as_posix(), path) for path in staging.rglob("*") if path.is_file()
    )
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    return len(files)


def build(
    *,
    root: Path = ROOT,
    zip_path: Path | None = None,
    staging: Path | None = None,
    bytecode: bool = True,
    extra_install_args: Sequence[str] = (),
) -> Package:
    """Stage the project and its dependencies, then zip them. Replaces earlier output."""
    zip_path = zip_path or root / "build" / "scheduler-bridge.zip"
    staging = staging or root / "build" / "package"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files = tuple(project_files(root, ignore_spec(root), exclude=[staging, zip_path.parent]))
    for rel in files:
        destination = staging / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, destination)
    install_dependencies(root / "requirements.txt", staging / SITE_PACKAGES, extra_args=extra_install_args)
    if bytecode:
        compile_bytecode(staging)
    entries = write_zip(staging, zip_path)
    return Package(zip_path, staging, files, entries, zip_path.stat().st_size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="the zip (default: build/scheduler-bridge.zip)")
    parser.add_argument("--staging", type=Path, help="the unzipped package (default: build/package)")
    parser.add_argument("--no-bytecode", action="store_true", help="leave out the .pyc files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    package = build(zip_path=args.output, staging=args.staging, bytecode=not args.no_bytecode)
    _LOGGER.info(
        "Wrote %s: %d files (%d from the project), %.1f MB",
        package.zip_path,
        package.entries,
        len(package.project_files),
        package.size_bytes / 1_000_000,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
