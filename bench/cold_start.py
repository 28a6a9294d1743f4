"""Section 4: cold start, in fresh interpreters (`python -m bench._cold`), telemetry off.

`p5_import_ratio` is the import time of `function_app` over the import time of what indexing
unavoidably needs, measured the same way, interleaved, median of several runs each. Indexing means
the host (or the Python worker) importing `function_app` and reading the functions it registered:
the route, methods, auth level and trigger of each. That takes `azure.functions` (FunctionApp,
Blueprint, the decorators, HttpRequest/HttpResponse) and the standard-library modules our two
blueprint modules use at module level (json, logging, os, re, urllib.parse). Everything else the
app uses (the MCP SDK, httpx2, pydantic, jsonschema, azure-identity) serves requests, not indexing.

Then the first request after import: a fresh process imports `function_app` and calls the tool
twice. The first call pays the deferred imports, the token, the MCP session and the tool listing.
Last, the same after the warm-up function ran first, as the host runs it on a new instance before
sending it traffic: `first_request_after_warmup_ms`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.processes import REPO_ROOT

from .rig import Rig
from .stats import median, ratio

BASELINE = ("azure.functions", "json", "logging", "os", "re", "urllib.parse")
TELEMETRY_SETTINGS = ("APPLICATIONINSIGHTS_CONNECTION_STRING", "APPINSIGHTS_INSTRUMENTATIONKEY")


@dataclass
class ColdStartResult:
    app_import_ms: list[float]
    baseline_import_ms: list[float]
    deferred_import_ms: list[float]
    first_ms: list[float]
    second_ms: list[float]
    paired_ratios: list[float]
    packaged: bool
    warmup_ms: list[float]  # the warm-up function itself, in a fresh instance
    after_warmup_ms: list[float]  # the first request after it

    @property
    def import_ratio(self) -> float:
        return ratio(median(self.app_import_ms), median(self.baseline_import_ms))

    @property
    def paired_ratio(self) -> float:
        """Cross-check: function_app over azure.functions inside the same import (-X importtime)."""
        return median(self.paired_ratios)


PACKAGE = REPO_ROOT / "build" / "package"
"""`make package`'s tree, what Azure unpacks to /home/site/wwwroot (`make bench` builds it first)."""


def _child_env(rig: Rig) -> dict[str, str]:
    """As Azure runs the app: from the packaged tree, its dependencies first on the path, and no
    bytecode written (the tree is read-only there), so only the package's own `.pyc` count. The
    repository comes last on the path, for `bench._cold` alone. Without a package: the source tree."""
    env = {key: value for key, value in os.environ.items() if key not in TELEMETRY_SETTINGS}
    env.update(rig.stack.bridge_env("modern"))
    env["OTEL_SDK_DISABLED"] = "true"
    if _packaged():
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE / ".python_packages" / "lib" / "site-packages"), str(PACKAGE), str(REPO_ROOT)]
        )
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _packaged() -> bool:
    return (PACKAGE / "function_app.py").is_file()


def _cwd() -> Path:
    return PACKAGE if _packaged() else REPO_ROOT


def _run(env: dict[str, str], *args: str) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench._cold", *args],
        cwd=_cwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench._cold {args[0]} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _paired(env: dict[str, str]) -> float:
    """One `import function_app` under -X importtime: its cumulative time over azure.functions'."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=_cwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cumulative = {}
    for line in completed.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative[parts[2].strip()] = int(parts[1])
    return ratio(cumulative["function_app"], cumulative["azure.functions"])


def run_cold_start(rig: Rig, *, runs: int, first_runs: int) -> ColdStartResult:
    env = _child_env(rig)
    app = ("import", "function_app")
    baseline = ("import", *BASELINE)
    _run(env, *app)  # warm the page cache and __pycache__ for both, unmeasured
    _run(env, *baseline)
    result = ColdStartResult([], [], [], [], [], [], _packaged(), [], [])
    for number in range(runs):
        order = (app, baseline) if number % 2 == 0 else (baseline, app)
        for args in order:
            measured = _run(env, *args)["import_ms"]
            (result.app_import_ms if args is app else result.baseline_import_ms).append(measured)
        result.paired_ratios.append(_paired(env))
    for _ in range(first_runs):
        result.deferred_import_ms.append(_run(env, "deferred")["import_ms"])
        first = _run(env, "first", json.dumps(rig.arguments))
        result.first_ms.append(first["first_ms"])
        result.second_ms.append(first["second_ms"])
        warm = _run(env, "warm", json.dumps(rig.arguments))
        result.warmup_ms.append(warm["warmup_ms"])
        result.after_warmup_ms.append(warm["first_ms"])
    return result
