"""Read `local.settings.json` and `host.json` the way Core Tools does, for the devstack host and `make run`.

Core Tools puts `local.settings.json` "Values" into the worker's environment
but never overrides a variable that is already set: an exported shell
variable (or a CI setting) wins. `host.json` supplies the HTTP route prefix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

LOCAL_SETTINGS_FILE = "local.settings.json"
LOCAL_SETTINGS_EXAMPLE_FILE = "local.settings.json.example"
DEFAULT_ROUTE_PREFIX = "api"


class LocalSettingsError(ValueError):
    """`local.settings.json` is missing, not JSON, or its Values are not a flat string map."""


def read_local_settings(path: Path) -> dict[str, str]:
    """The "Values" of a local.settings.json file, every value as a string."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LocalSettingsError(f"{path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(f"{path} is not valid JSON: {exc}") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise LocalSettingsError(f'{path}: "Values" must be an object')
    return {str(name): "" if value is None else str(value) for name, value in values.items()}


def apply_settings_to_environment(
    values: Mapping[str, str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Set each value that is not already in the environment; return the names that were set."""
    target = os.environ if environ is None else environ
    applied = []
    for name, value in values.items():
        if name not in target:
            target[name] = value
            applied.append(name)
    return applied


def ensure_local_settings(app_dir: Path) -> tuple[Path, bool]:
    """Return (path of local.settings.json, whether it was just created from the example)."""
    settings_path = app_dir / LOCAL_SETTINGS_FILE
    if settings_path.exists():
        return settings_path, False
    example = app_dir / LOCAL_SETTINGS_EXAMPLE_FILE
    if not example.exists():
        raise LocalSettingsError(f"neither {settings_path} nor {example} exists")
    shutil.copyfile(example, settings_path)
    _LOGGER.info("created %s from %s", settings_path, example.name)
    return settings_path, True


def read_route_prefix(app_dir: Path) -> str:
    """`extensions.http.routePrefix` from host.json ("api" when absent, "" allowed)."""
    host_json = app_dir / "host.json"
    try:
        document = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_ROUTE_PREFIX
    prefix = document.get("extensions", {}).get("http", {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    return str(prefix).strip("/")
