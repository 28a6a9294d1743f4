"""host.json `logging.logLevel`, applied to a Python app's records the way the Functions host applies it.

What the real host does (azure-functions-host `GrpcWorkerChannel.Log`, Python worker 4.x): the worker
sends each record at or above INFO; the host writes one made during an invocation through that
invocation's logger, whose category is `Function.<function name>.User`, and filters it against
host.json (one made outside any invocation is dropped). The Python logger's name plays no part.
The rule is .NET's: the entry whose name is the longest case-insensitive prefix of the category
wins, `default` otherwise (Information when absent).

The devstack host does the same with a filter on its log handlers. Differences, on purpose:
records made outside any invocation (the devstack's own lines, start-up) are kept; the real host
drops a user record that arrives after its invocation ended (e.g. from a background task the
invocation started), while here such a record keeps the category of the invocation that started the
task. Entries naming Python loggers are the app's business (see `mcp_bridge.host_logging`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path

from mcp_bridge.host_logging.levels import HOST_LEVELS

_LOGGER = logging.getLogger(__name__)

CURRENT_FUNCTION: ContextVar[str | None] = ContextVar("devstack_current_function", default=None)
"""The function whose invocation the current task is running (set by the host around each call)."""

_SYSTEM_LOGGERS = ("devstack", "uvicorn", "azure_functions_worker", "azure.functions")
"""Not user records: the host's own and the worker's (`is_system_log_category`)."""


def read_log_levels(app_dir: Path) -> dict[str, int]:
    """host.json's `logging.logLevel`, category -> Python level; empty when there is none."""
    try:
        document = json.loads((app_dir / "host.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    section = document.get("logging", {}).get("logLevel", {}) if isinstance(document, dict) else {}
    return {
        str(category): HOST_LEVELS[str(name).strip().lower()]
        for category, name in (section.items() if isinstance(section, Mapping) else ())
        if str(name).strip().lower() in HOST_LEVELS
    }


def level_for(category: str, levels: Mapping[str, int]) -> int:
    """The minimum level host.json lets through for `category` (.NET's longest-prefix rule)."""
    matches = [
        name for name in levels if name.lower() != "default" and category.lower().startswith(name.lower())
    ]
    if matches:
        return levels[max(matches, key=len)]
    return next((level for name, level in levels.items() if name.lower() == "default"), logging.INFO)


class HostCategoryFilter(logging.Filter):
    """Drops an app's record when host.json's level for `Function.<name>.User` is above it."""

    def __init__(self, levels: Mapping[str, int]) -> None:
        super().__init__()
        self._levels = dict(levels)
        self._cache: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        function = CURRENT_FUNCTION.get()
        if function is None or record.name.startswith(_SYSTEM_LOGGERS):
            return True
        level = self._cache.get(function)
        if level is None:
            level = self._cache[function] = level_for(f"Function.{function}.User", self._levels)
        return record.levelno >= level


def install(app_dir: Path) -> None:
    """Filter every handler on the root logger by host.json's levels (call after logging is set up)."""
    host_filter = HostCategoryFilter(read_log_levels(app_dir))
    for handler in logging.getLogger().handlers:
        handler.addFilter(host_filter)
    _LOGGER.info("host.json log levels applied to function logs (Function.<name>.User)")
