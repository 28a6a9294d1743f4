"""The alert rules query names the bridge really emits.

A KQL query over a metric nobody sends, or a log line that was reworded, never fires and never
errors. So every name in infra/alerts/*.kql is held against the code: metric names, attribute keys
and the values compared with them against what `mcp_bridge.telemetry` records (captured in a fresh
process by tests/infra/emit_telemetry.py), log messages against the bridge's logging calls, and the
health route against the function index and host.json.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bridge.telemetry import _names

from .templates import ALERTS, INFRA, ROOT, loaded_text_files, parse, resources

KQL_FILES = sorted((INFRA / "alerts").glob("*.kql"))
APP_TABLES = {"AppMetrics", "AppTraces", "AppRequests", "AppDependencies", "AppExceptions"}


@pytest.fixture(scope="module")
def emitted() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-m", "tests.infra.emit_telemetry"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def rules() -> dict[str, dict]:
    return {name: body for name, body in resources(ALERTS, "Microsoft.Insights/scheduledQueryRules")}


def criterion(rule: dict) -> dict:
    [condition] = rule["properties"]["criteria"]["allOf"]
    return condition


def kql(path: Path) -> str:
    """The query without its `//` comment lines (comments may name things freely)."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))


def logging_formats() -> list[str]:
    """First arguments of every `_LOGGER.<level>(...)` call in mcp_bridge that are string literals."""
    formats = []
    for path in sorted((ROOT / "mcp_bridge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "_LOGGER"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                formats.append(node.args[0].value)
    return formats


def test_every_rule_loads_a_query_file_and_every_query_file_is_used():
    loaded = {
        path
        for rule in rules().values()
        for path in loaded_text_files(criterion(rule)["query"], ALERTS.parent)
    }  # fmt: skip
    assert loaded == {path.resolve() for path in KQL_FILES}
    assert len(rules()) == 4


def test_the_rules_cover_what_the_issue_asks_for():
    names = {body["name"].split("}-", 1)[-1] for body in rules().values()}
    assert names == {"every-endpoint-unusable", "failovers", "token-refresh-failures", "http-5xx"}


def test_each_rule_measures_a_column_its_query_produces():
    for symbol, rule in rules().items():
        condition = criterion(rule)
        column = condition.get("metricMeasureColumn")
        [path] = loaded_text_files(condition["query"], ALERTS.parent)
        if column is None:
            assert condition["timeAggregation"] == "Count", symbol
        else:
            assert re.search(rf"\b{column}\s*=", kql(path)), f"{symbol}: {column} is not computed"


def test_the_queries_read_application_insights_tables_in_the_workspace():
    for path in KQL_FILES:
        tables = set(re.findall(r"\b(App[A-Z][A-Za-z]+)\b", kql(path)))
        assert tables and tables <= APP_TABLES, (path.name, tables)
    for rule in rules().values():
        assert rule["properties"]["scopes"] == ["workspaceId"], "App* tables exist in the workspace"
    assert "workspaceId" in parse(ALERTS)["parameters"]


@pytest.mark.parametrize("path", KQL_FILES, ids=lambda path: path.name)
def test_metric_names_attributes_and_values_are_the_ones_the_bridge_records(path: Path, emitted: dict):
    query = kql(path)
    declared = {value for key, value in vars(_names).items() if key.startswith("METRIC_")}
    metric_names = re.findall(r'\bName\s*==\s*"([^"]+)"', query)
    for name in metric_names:
        assert name in declared, f"{name} is not a metric in mcp_bridge/telemetry/_names.py"
        assert name in emitted["metrics"], f"{name} was not recorded"
    attributes: dict[str, set[str]] = {}
    for name in metric_names:
        for key, values in emitted["metrics"][name].items():
            attributes.setdefault(key, set()).update(values)
    keys = re.findall(r'Properties\["([^"]+)"\]', query)
    for key in keys:
        assert key in attributes, f"{path.name}: {key} is not recorded on {metric_names}"
    for key, value in re.findall(r'Properties\["([^"]+)"\]\)?\s*==\s*"([^"]*)"', query):
        assert value in attributes[key], f"{path.name}: {key} is never {value!r} (seen: {attributes[key]})"
    if "AppMetrics" in query:
        assert metric_names, f"{path.name} reads AppMetrics without naming a metric"


def test_log_messages_are_the_bridges_own_lines():
    formats = logging_formats()
    messages = [
        (path.name, message)
        for path in KQL_FILES
        for message in re.findall(r'\bMessage\s+(?:startswith|has|contains)\s+"([^"]+)"', kql(path))
    ]
    assert messages, "the every-endpoint-unusable rule reads a log line"
    for name, message in messages:
        assert "%" not in message, f"{name}: a format placeholder is never in the logged text"
        assert any(line.startswith(message) for line in formats), f"{name}: no log line starts {message!r}"


def test_the_5xx_rule_leaves_out_the_health_route_and_gets_its_minimum(functions):
    host = json.loads((ROOT / "host.json").read_text())
    prefix = host["extensions"]["http"]["routePrefix"]
    health = functions._functions["health"]
    route = json.loads(health.get_function_json())["bindings"][0]["route"]
    query = kql(INFRA / "alerts" / "http-5xx.kql")
    assert f'!= "/{prefix}/{route}"' in query
    assert "minimum_requests" in query
    [http5xx] = [rule for rule in rules().values() if "http-5xx" in rule["name"]]
    assert criterion(http5xx)["query"].startswith("let minimum_requests = ${http5xxMinimumRequests};")
