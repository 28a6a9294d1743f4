"""What keeps per-call work off the hot path (measured by `make bench`; see docs/performance.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mcp_types as types

from mcp_bridge.failover import retry
from mcp_bridge.upstream.catalog import ToolCatalog

REPO_ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str, max_length: int) -> types.Tool:
    return types.Tool(
        name=name,
        input_schema={"type": "object", "properties": {"id": {"type": "string", "maxLength": max_length}}},
    )


def test_a_relisting_keeps_the_validators_of_unchanged_schemas():
    first = ToolCatalog.from_listing([_tool("a", 5), _tool("b", 5)], ttl_hint_ms=0, default_ttl=300)
    second = ToolCatalog.from_listing(
        [_tool("a", 5), _tool("b", 3)], ttl_hint_ms=0, default_ttl=300, previous=first
    )
    assert second.tools["a"].validator is first.tools["a"].validator
    assert second.tools["b"].validator is not first.tools["b"].validator
    assert second.tools["b"].violations({"id": "abcd"}), "the changed schema is the one enforced"
    assert not second.tools["a"].violations({"id": "abcd"})


def test_indexing_imports_neither_the_mcp_sdk_nor_the_http_and_identity_clients():
    script = "import json, sys, function_app; print(json.dumps(sorted(sys.modules)))"
    loaded = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
    )
    top_level = {name.split(".")[0] for name in loaded}
    assert not {"mcp", "mcp_types", "httpx2", "pydantic", "jsonschema", "anyio"} & top_level
    assert "azure.identity" not in loaded
    assert "azure.functions" in loaded  # what indexing needs


def test_the_retry_budget_holds_nothing_once_calls_end():
    budget = retry.RetryBudget()
    for _ in range(1000):
        budget.begin_request()
        assert budget.try_begin_retry()
        budget.end_retry()
        budget.end_request()
    # Counters, not a log of past requests: nothing grows for the life of the worker.
    assert (budget.requests_in_flight, budget.retries_in_flight) == (0, 0)


def _imports_in(node: ast.AST) -> list[int]:
    return [n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]


def test_a_tool_call_runs_no_import_statement():
    """An import statement inside a function runs on every call (~1 µs each; the handlers' dozen cost
    13.6 µs a call): the route bodies import at their module's top, and `tools_api` imports that
    module once (`handlers()`) or, in `respond`, only on a failure."""
    functions = REPO_ROOT / "mcp_bridge" / "functions"
    handlers = ast.parse((functions / "tool_handlers.py").read_text())
    for node in ast.walk(handlers):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert not _imports_in(node), f"tool_handlers.{node.name} imports per call"
    api = ast.parse((functions / "tools_api.py").read_text())
    for node in api.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name == "handlers":
            continue
        failure_paths = [n for n in ast.walk(node) if isinstance(n, ast.ExceptHandler)]
        allowed = {line for handler in failure_paths for line in _imports_in(handler)}
        assert set(_imports_in(node)) <= allowed, f"tools_api.{node.name} imports on its success path"
