"""host.json log levels: the app applies the Python-logger entries, the devstack host the Function ones."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import httpx2
import pytest

from devstack import host_logging as devstack_host_logging
from devstack.processes import REPO_ROOT, free_port, start_host
from mcp_bridge.host_logging import apply_host_json_levels, python_logger_levels, reset_for_tests

from .conftest import IDENTITY_HEADER, SCOPE, identity_requests

FUNCTION_KEY = "log-levels-function-key"
SDK_LOGGER = "azure.core.pipeline.policies.http_logging_policy"

EXTRA_FUNCTIONS = textwrap.dedent(
    f'''
    """The bridge's own function app, plus two functions that log, for the log-level test."""
    import importlib.util
    import logging

    import azure.functions as func

    _spec = importlib.util.spec_from_file_location("bridge_function_app", {str(REPO_ROOT / "function_app.py")!r})
    _bridge = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_bridge)
    app = _bridge.app


    @app.route(route="log-sdk-warning", methods=["POST"])
    def log_sdk_warning(req: func.HttpRequest) -> func.HttpResponse:
        logging.getLogger({SDK_LOGGER!r}).warning("a warning from the HTTP logging policy")
        return func.HttpResponse("logged")


    @app.route(route="log-user", methods=["POST"])
    def log_user(req: func.HttpRequest) -> func.HttpResponse:
        logging.getLogger("app.user").info("user info below this function's level")
        logging.getLogger("app.user").warning("user warning at this function's level")
        return func.HttpResponse("logged")
    '''
)


def test_python_logger_entries_are_told_apart_from_host_categories() -> None:
    host_json = json.loads((REPO_ROOT / "host.json").read_text())

    levels = python_logger_levels(host_json)

    assert levels == {"mcp_bridge": logging.INFO, "httpx2": logging.WARNING, SDK_LOGGER: logging.WARNING}
    assert python_logger_levels({"logging": {"logLevel": {"x": "None", "y": "Verbose?"}}}) == {
        "x": logging.CRITICAL + 10
    }


def test_the_app_applies_them_once_and_only_under_a_functions_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"logging": {"logLevel": {"default": "Debug", "test.levels": "Error"}}}))
    logger = logging.getLogger("test.levels")
    root_level = logging.getLogger().level
    try:
        reset_for_tests()
        monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
        assert apply_host_json_levels(str(host_json)) == {}
        assert logger.level == logging.NOTSET

        reset_for_tests()
        monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
        assert apply_host_json_levels(str(host_json)) == {"test.levels": logging.ERROR}
        assert logger.level == logging.ERROR
        assert logging.getLogger().level == root_level  # "default" is the host's category, not root's
        assert apply_host_json_levels(str(host_json)) == {}  # once per process
    finally:
        logger.setLevel(logging.NOTSET)


def test_devstack_host_uses_the_longest_matching_category() -> None:
    levels = {"default": logging.INFO, "Function": logging.WARNING, "function.quiet.user": logging.ERROR}

    assert devstack_host_logging.level_for("Function.quiet.User", levels) == logging.ERROR
    assert devstack_host_logging.level_for("Function.other.User", levels) == logging.WARNING
    assert devstack_host_logging.level_for("Host.Results", levels) == logging.INFO
    assert devstack_host_logging.level_for("Host.Results", {}) == logging.INFO


def test_no_header_dump_in_the_host_log_for_a_real_call_but_warnings_still_show(
    stack, tmp_path: Path
) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "function_app.py").write_text(EXTRA_FUNCTIONS)
    host_json = json.loads((REPO_ROOT / "host.json").read_text())
    host_json["logging"]["logLevel"]["Function.log_user.User"] = "Warning"
    (app_dir / "host.json").write_text(json.dumps(host_json))
    host = start_host(
        port=free_port(),
        log_dir=tmp_path,
        app_dir=app_dir,
        settings_file=tmp_path / "no-local-settings.json",
        env={
            "SCHEDULER_ENDPOINTS": f"{stack.east.mcp_url},{stack.west.mcp_url}",
            "SCHEDULER_AUTH": "managed_identity",
            "SCHEDULER_TOKEN_SCOPE": SCOPE,
            "IDENTITY_ENDPOINT": stack.identity.token_url,
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "HEALTH_PROBE_SCHEDULE": "0 0 0 1 1 *",
            "AzureWebJobsStorage": "",
            "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
            "DEVSTACK_MASTER_KEY": "log-levels-master-key",
        },
    )
    try:
        with httpx2.Client(base_url=host.url, params={"code": FUNCTION_KEY}, timeout=30) as http:
            tools = http.get("/api/tools")
            warned = http.post("/api/log-sdk-warning")
            user = http.post("/api/log-user")
    finally:
        host.stop()
    log = host.log_path.read_text()

    assert (tools.status_code, warned.status_code, user.status_code) == (200, 200, 200), tools.text
    assert identity_requests(stack) >= 1, "azure-core really made a request (the token)"
    assert "Request headers:" not in log and "Response headers:" not in log, log
    assert f"WARNING {SDK_LOGGER}: a warning from the HTTP logging policy" in log
    assert "user warning at this function's level" in log
    assert "user info below this function's level" not in log
    assert "INFO mcp_bridge" in log, "the bridge's own Information lines still pass"
