"""A local Azure Functions host for machines without Core Tools.

    python -m devstack.host --port 7071 --app-dir . [--settings local.settings.json]

It does what `func start` does for this project: puts local.settings.json
"Values" into the environment (never overriding a variable already set),
imports `function_app` from the app directory, and serves its functions -
HTTP triggers under host.json's route prefix with the real key rules, timer
triggers on their NCRONTAB schedules - all on one event loop, as the Python
worker runs them - and filters the app's log records by host.json's levels
for `Function.<name>.User`, as the host does (`devstack.host_logging`). Keys
come from DEVSTACK_FUNCTION_KEY / DEVSTACK_MASTER_KEY (random ones are
generated and printed when absent).

Besides the functions it answers `GET /admin/host/ping` (anonymous, used for
readiness), `GET /admin/host/status` and `GET /admin/functions` (master key).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from azure.functions.decorators.function_app import FunctionRegister
from azure.functions.timer import TimerRequest
from azure.functions.warmup import WarmUpContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devstack import host_logging
from devstack.easyauth import EasyAuth
from devstack.host_functions import HttpFunction, TimerFunction, index_function_app
from devstack.host_http import (
    HostKeys,
    from_function_response,
    is_authorized,
    joined_headers,
    presented_key,
    to_function_request,
)
from devstack.host_streams import stream_request, stream_response, streams_enabled
from devstack.host_timers import run_timer
from devstack.local_settings import (
    DEFAULT_ROUTE_PREFIX,
    LOCAL_SETTINGS_FILE,
    apply_settings_to_environment,
    read_local_settings,
    read_route_prefix,
)
from devstack.serving import configure_logging, serve

_LOGGER = logging.getLogger(__name__)

FUNCTION_KEY_SETTING = "DEVSTACK_FUNCTION_KEY"
MASTER_KEY_SETTING = "DEVSTACK_MASTER_KEY"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_HOST_VERSION = "4.x (devstack)"


def build_host_app(
    function_app: FunctionRegister,
    *,
    function_key: str,
    master_key: str,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
    script_dir: Path | None = None,
    easyauth: EasyAuth | None = None,
    warm_up: bool = False,
) -> Starlette:
    """Serve `function_app`'s HTTP and timer functions; run it with lifespan on (timers live there).

    With `warm_up`, its warm-up functions run at start, before the first request is taken, as
    Azure runs them on a new instance before sending it traffic.

    With `easyauth`, every function call passes App Service Authentication first (devstack.easyauth)."""
    http_functions, timer_functions, warmups = index_function_app(
        function_app, route_prefix=route_prefix, script_dir=script_dir
    )
    warmups = warmups if warm_up else []
    streams = streams_enabled()  # HTTP streams: every HTTP function takes and answers FastAPI types
    if streams:
        _LOGGER.info("HTTP streams on: requests and responses pass through as FastAPI objects")
    keys = HostKeys(function_key=function_key, master_key=master_key)
    for function in http_functions:
        _LOGGER.info(
            "%s: [%s] /%s (%s)",
            function.name,
            ",".join(sorted(function.methods or ["ALL"])),
            function.route.template,
            function.auth_level,
        )
    for timer in timer_functions:
        _LOGGER.info("%s: timerTrigger %r", timer.name, timer.schedule.expression)

    async def dispatch(request: Request) -> Response:
        path: str = request.scope["path"]
        matches = [(f, values) for f in http_functions if (values := f.route.match(path)) is not None]
        if not matches:
            if path == "/":
                return PlainTextResponse("Your Functions 4.0 app is up and running (devstack host)")
            return Response(status_code=404)
        chosen = next(((f, v) for f, v in matches if f.methods is None or request.method in f.methods), None)
        if chosen is None:
            allowed = sorted({m for f, _ in matches for m in (f.methods or [])})
            return Response(status_code=405, headers={"allow": ", ".join(allowed)})
        function, route_values = chosen
        headers = None
        if easyauth is not None:  # in front of the host, as in App Service: before the key check
            authenticated = easyauth.authenticate(joined_headers(request))
            if isinstance(authenticated, Response):
                return authenticated
            headers = authenticated
        if not is_authorized(function.auth_level, presented_key(request), keys):
            return Response(status_code=401)
        return await _invoke_http(function, request, route_values, headers, streams=streams)

    async def ping(_request: Request) -> Response:
        return Response(status_code=200)

    async def status(request: Request) -> Response:
        if not is_authorized("admin", presented_key(request), keys):
            return Response(status_code=401)
        return JSONResponse(
            {"id": "devstack", "state": "Running", "version": _HOST_VERSION, "processId": os.getpid()}
        )

    async def list_functions(request: Request) -> Response:
        if not is_authorized("admin", presented_key(request), keys):
            return Response(status_code=401)
        return JSONResponse(_describe(http_functions, timer_functions))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        for warmup in warmups:
            started = time.monotonic()
            try:
                await warmup.invoke(WarmUpContext())
            except Exception:
                _LOGGER.exception("Executed 'Functions.%s' (Failed)", warmup.name)
            else:
                _LOGGER.info(
                    "Executed 'Functions.%s' (Succeeded, Duration=%.0fms)",
                    warmup.name,
                    (time.monotonic() - started) * 1000,
                )
        tasks = [
            asyncio.create_task(
                run_timer(t.name, t.schedule, _timer_invoker(t), run_on_startup=t.run_on_startup),
                name=f"timer:{t.name}",
            )
            for t in timer_functions
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return Starlette(
        routes=[
            Route("/admin/host/ping", ping, methods=["GET", "POST"]),
            Route("/admin/host/status", status, methods=["GET"]),
            Route("/admin/functions", list_functions, methods=["GET"]),
            Route("/{path:path}", dispatch, methods=_ALL_METHODS),
        ],
        lifespan=lifespan,
    )


async def _invoke_http(
    function: HttpFunction,
    request: Request,
    route_values: dict[str, str],
    headers: dict[str, str] | None,
    *,
    streams: bool = False,
) -> Response:
    invocation_id = uuid.uuid4()
    _LOGGER.info(
        "Executing 'Functions.%s' (Reason='%s %s', Id=%s)",
        function.name,
        request.method,
        request.url.path,
        invocation_id,
    )
    started = time.monotonic()
    current = host_logging.CURRENT_FUNCTION.set(function.name)
    try:
        if streams:
            response = stream_response(await function.invoke(stream_request(request, route_values, headers)))
        else:
            result = await function.invoke(await to_function_request(request, route_values, headers))
            response = from_function_response(result, method=request.method)
    except Exception:
        _LOGGER.exception("Executed 'Functions.%s' (Failed, Id=%s)", function.name, invocation_id)
        return Response(status_code=500)
    finally:
        host_logging.CURRENT_FUNCTION.reset(current)
    _LOGGER.info(
        "Executed 'Functions.%s' (Succeeded, Id=%s, Status=%d, Duration=%.0fms)",
        function.name,
        invocation_id,
        response.status_code,
        (time.monotonic() - started) * 1000,
    )
    return response


def _timer_invoker(function: TimerFunction) -> Callable[[TimerRequest], Awaitable[None]]:
    async def invoke(request: TimerRequest) -> None:
        started = time.monotonic()
        current = host_logging.CURRENT_FUNCTION.set(function.name)
        try:
            await function.invoke(request)
        finally:
            host_logging.CURRENT_FUNCTION.reset(current)
        _LOGGER.info(
            "Executed 'Functions.%s' (Succeeded, Duration=%.0fms)",
            function.name,
            (time.monotonic() - started) * 1000,
        )

    return invoke


def _describe(
    http_functions: list[HttpFunction], timer_functions: list[TimerFunction]
) -> list[dict[str, object]]:
    described: list[dict[str, object]] = [
        {
            "name": f.name,
            "trigger": "httpTrigger",
            "route": f.route.template,
            "methods": sorted(f.methods) if f.methods else None,
            "authLevel": f.auth_level,
        }
        for f in http_functions
    ]
    described += [
        {
            "name": t.name,
            "trigger": "timerTrigger",
            "schedule": t.schedule.expression,
            "runOnStartup": t.run_on_startup,
        }
        for t in timer_functions
    ]
    return described


def load_function_app(app_dir: Path, module_name: str = "function_app") -> FunctionRegister:
    """Import `module_name` from `app_dir` and return its one FunctionApp, as the worker finds it."""
    resolved = str(app_dir.resolve())
    if resolved not in sys.path:
        sys.path.insert(0, resolved)
    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise RuntimeError(f"{module_name}.py must define exactly one FunctionApp, found {len(apps)}")
    return apps[0]


def host_keys_from_environment() -> tuple[HostKeys, list[str]]:
    """Keys from DEVSTACK_FUNCTION_KEY / DEVSTACK_MASTER_KEY; names of any that had to be generated."""
    generated: list[str] = []
    values: dict[str, str] = {}
    for setting in (FUNCTION_KEY_SETTING, MASTER_KEY_SETTING):
        value = os.environ.get(setting, "")
        if not value:
            value = secrets.token_urlsafe(24)
            os.environ[setting] = value
            generated.append(setting)
        values[setting] = value
    return HostKeys(
        function_key=values[FUNCTION_KEY_SETTING], master_key=values[MASTER_KEY_SETTING]
    ), generated


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.host", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--app-dir", type=Path, default=Path())
    parser.add_argument("--settings", type=Path, default=None, help="default: APP_DIR/local.settings.json")
    parser.add_argument("--warm-up", action="store_true", help="run the app's warm-up functions at start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging()
    app_dir: Path = args.app_dir.resolve()
    settings_path: Path = args.settings or app_dir / LOCAL_SETTINGS_FILE
    if settings_path.exists():
        applied = apply_settings_to_environment(read_local_settings(settings_path))
        _LOGGER.info("loaded %d settings from %s", len(applied), settings_path)
    else:
        _LOGGER.warning("no %s; using the environment only", settings_path)
    os.environ.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")  # the host always sets it for the worker
    host_logging.install(app_dir)
    keys, generated = host_keys_from_environment()
    for setting in generated:
        print(f"{setting} was not set; generated {os.environ[setting]}", flush=True)
    try:
        easyauth = EasyAuth.from_environment(os.environ)
    except ValueError as exc:
        raise SystemExit(f"devstack host: {exc}") from None
    if easyauth is not None:
        os.environ["WEBSITE_AUTH_ENABLED"] = "True"  # what App Service sets for the app
        _LOGGER.info("App Service Authentication on (%s, audience %s)", easyauth.mode, easyauth.audience)
    elif os.environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true":
        _LOGGER.warning("WEBSITE_AUTH_ENABLED=True, DEVSTACK_EASYAUTH off: anyone can forge a principal")
    os.chdir(app_dir)
    app = build_host_app(
        load_function_app(app_dir),
        function_key=keys.function_key,
        master_key=keys.master_key,
        route_prefix=read_route_prefix(app_dir),
        script_dir=app_dir,
        easyauth=easyauth,
        warm_up=args.warm_up,
    )
    serve(app, port=args.port)


if __name__ == "__main__":
    main()
