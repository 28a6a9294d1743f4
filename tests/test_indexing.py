"""Indexing: the host can always index the functions, whatever the settings say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

INDEX = """
import json, function_app
functions = {}
for f in function_app.app.get_functions():
    trigger = f.get_trigger()
    functions[f.get_function_name()] = {
        "type": trigger.get_binding_name(),
        "route": getattr(trigger, "route", None),
        "auth_level": str(getattr(trigger, "auth_level", None)),
        "methods": sorted(str(m) for m in (getattr(trigger, "methods", None) or [])),
        "schedule": getattr(trigger, "schedule", None),
        "run_on_startup": getattr(trigger, "run_on_startup", None),
        "use_monitor": getattr(trigger, "use_monitor", None),
    }
print(json.dumps(functions))
"""


def index(env: dict[str, str]) -> dict:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("SCHEDULER_", "HEALTH_"))}
    result = subprocess.run(
        [sys.executable, "-c", INDEX],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"SCHEDULER_ENDPOINTS": "not a url", "SCHEDULER_TIMEOUT_SECONDS": "-1", "HEALTH_AUTH_LEVEL": "bogus"},
    ],
    ids=["no settings", "invalid settings"],
)
def test_functions_index_without_valid_settings(env):
    functions = index(env)
    assert set(functions) == {
        "call_tool", "list_tools", "conversation_status", "conversation_status_query", "health_probe", "health",
        "openapi", "warmup", "get_operation", "cancel_operation",
        "server_call_tool", "server_list_tools", "server_get_operation", "server_cancel_operation",
    }  # fmt: skip
    assert functions["server_call_tool"]["route"] == "servers/{server}/tools/{tool_name}"
    assert functions["call_tool"]["route"] == "tools/{tool_name}"
    assert functions["call_tool"]["auth_level"].endswith("FUNCTION")
    assert functions["health"]["auth_level"].endswith("FUNCTION")
    probe = functions["health_probe"]
    assert probe["schedule"] == "%HEALTH_PROBE_SCHEDULE%"
    assert probe["run_on_startup"] is False and probe["use_monitor"] is True


def test_health_auth_level_comes_from_its_setting():
    functions = index({"HEALTH_AUTH_LEVEL": "anonymous"})
    assert functions["health"]["auth_level"].endswith("ANONYMOUS")
    assert functions["call_tool"]["auth_level"].endswith("FUNCTION")
