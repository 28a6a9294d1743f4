"""Apply host.json `logging.logLevel` entries that name Python loggers to those loggers.

Why the app has to: the Functions host filters logs by *its* categories, not by Python logger
names. The Python worker (azure-functions-python-worker 4.x, `Dispatcher.on_logging`) forwards every
record at or above the root level (INFO) over gRPC with the logger name in `RpcLog.category`, but the
host (`GrpcWorkerChannel.Log`) writes a user record through the invocation's logger, whose category
is `Function.<function name>.User`; `RpcLog.category` is never used for filtering. So an entry such
as `"azure.core.pipeline.policies.http_logging_policy": "Warning"` does nothing in Azure by itself:
azure-core's request and response header dumps arrive at Information under `Function.call_tool.User`
and pass `"Function": "Information"`. Setting the Python logger's own level is the only place the
entry can take effect, and it also saves formatting records nobody keeps.

Rules:
- entries whose first dotted part is a host category root (`default`, `Host`, `Function`,
  `Microsoft`, `Worker`, `System`) are the host's and are left alone;
- every other entry names a Python logger (case-sensitive, as Python's are) and gets that level:
  Trace 5, Debug, Information, Warning, Error, Critical, None (off);
- only under a Functions host (`FUNCTIONS_WORKER_RUNTIME` is set, as the host always sets it), so a
  test process or a bench that imports the app keeps its own logging setup;
- host.json is the one next to `function_app.py` (the script root), as the host reads it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)

WORKER_RUNTIME_SETTING = "FUNCTIONS_WORKER_RUNTIME"
HOST_CATEGORY_ROOTS = frozenset({"default", "host", "function", "microsoft", "worker", "system"})
HOST_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}
"""host.json's level names (.NET's `LogLevel`) as Python logging levels."""

_applied = False
_lock = threading.Lock()


def python_logger_levels(host_json: Mapping[str, object]) -> dict[str, int]:
    """The Python logger levels a parsed host.json asks for; unknown level names are skipped."""
    logging_section = host_json.get("logging")
    log_level = logging_section.get("logLevel") if isinstance(logging_section, Mapping) else None
    if not isinstance(log_level, Mapping):
        return {}
    levels: dict[str, int] = {}
    for category, name in log_level.items():
        if str(category).split(".")[0].lower() in HOST_CATEGORY_ROOTS:
            continue
        level = HOST_LEVELS.get(str(name).strip().lower())
        if level is not None:
            levels[str(category)] = level
    return levels


def apply_host_json_levels(host_json: str | None = None) -> dict[str, int]:
    """Set the levels once per process; returns what was applied (empty outside a Functions host)."""
    global _applied
    if _applied:
        return {}
    with _lock:
        if _applied:
            return {}
        _applied = True
        if not os.environ.get(WORKER_RUNTIME_SETTING):
            return {}
        path = host_json or os.path.join(_script_root(), "host.json")
        try:
            with open(path, encoding="utf-8") as file:
                document = json.load(file)
        except (OSError, ValueError) as exc:
            _LOGGER.warning("host.json log levels not applied: %s", type(exc).__name__)
            return {}
        levels = python_logger_levels(document) if isinstance(document, Mapping) else {}
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    _LOGGER.debug("Applied host.json log levels to %d Python loggers", len(levels))
    return levels


def reset_for_tests() -> None:
    """Forget that the levels were applied (the loggers keep theirs)."""
    global _applied
    _applied = False


def _script_root() -> str:
    """Where function_app.py was imported from (the host imports it from the script root).

    os.path, not pathlib: this module is imported while the host indexes the functions.
    """
    entry = sys.modules.get("function_app")
    entry_file = getattr(entry, "__file__", None) or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "function_app.py"
    )
    return os.path.dirname(os.path.abspath(entry_file))
