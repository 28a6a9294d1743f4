"""Index a v2-programming-model FunctionApp the way the Python worker does, and invoke its functions.

`FunctionApp.get_functions()` yields each function with its trigger. HTTP
triggers get their route joined to the route prefix and compiled; timer
triggers get their schedule parsed. The user function is called with the
trigger under its binding name (`req`, `mytimer`, ...) and, if it asks for
one, a `context`. Async functions are awaited on the caller's event loop -
one loop for the whole host, as in the worker - and sync ones run in a
worker thread so they cannot block it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function, FunctionRegister

from devstack.host_routes import RouteTemplate, compile_route
from devstack.host_timers import TimerSchedule, parse_schedule

_LOGGER = logging.getLogger(__name__)

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
WARMUP_TRIGGER = "warmupTrigger"
_CONTEXT_PARAMETER = "context"


class FunctionIndexError(ValueError):
    """A function this host cannot serve (unsupported trigger or bindings, bad route or schedule)."""


@dataclass(frozen=True)
class IndexedFunction:
    """What every function has: its name, its user callable, and the parameter the trigger binds to."""

    name: str
    user_function: Callable[..., Any]
    trigger_parameter: str
    wants_context: bool
    directory: str

    async def invoke(self, trigger_value: object) -> Any:
        """Call the user function once; async on this loop, sync in a worker thread."""
        kwargs: dict[str, object] = {self.trigger_parameter: trigger_value}
        if self.wants_context:
            kwargs[_CONTEXT_PARAMETER] = InvocationContext(self.name, self.directory)
        if inspect.iscoroutinefunction(self.user_function):
            return await self.user_function(**kwargs)
        return await asyncio.to_thread(self.user_function, **kwargs)


@dataclass(frozen=True)
class HttpFunction(IndexedFunction):
    """An HTTP-triggered function: where it lives, which methods, which key it needs."""

    route: RouteTemplate
    methods: frozenset[str] | None
    auth_level: str


@dataclass(frozen=True)
class TimerFunction(IndexedFunction):
    """A timer-triggered function and its parsed schedule."""

    schedule: TimerSchedule
    run_on_startup: bool


def index_function_app(
    app: FunctionRegister, *, route_prefix: str, script_dir: Path | None = None
) -> tuple[list[HttpFunction], list[TimerFunction], list[IndexedFunction]]:
    """Split the app's functions into HTTP, timer and warm-up functions, HTTP ones ordered by route
    precedence. (`get_functions()` may be called once per app: it registers blueprints again.)"""
    http_functions: list[HttpFunction] = []
    timer_functions: list[TimerFunction] = []
    warmups: list[IndexedFunction] = []
    directory = str(script_dir or Path.cwd())
    for function in app.get_functions():
        trigger = function.get_trigger()
        name = function.get_function_name() or function.get_user_function().__name__
        if trigger is None:
            raise FunctionIndexError(f"function {name} has no trigger")
        trigger_type = trigger.get_binding_name()
        common = _common_fields(function, name, trigger.name, directory)
        if trigger_type == HTTP_TRIGGER:
            route = str(getattr(trigger, "route", None) or name)
            full_route = "/".join(part for part in (route_prefix.strip("/"), route.strip("/")) if part)
            methods = getattr(trigger, "methods", None)
            http_functions.append(
                HttpFunction(
                    **common,
                    route=compile_route(full_route),
                    methods=None if not methods else frozenset(str(m).upper() for m in methods),
                    auth_level=_auth_level_name(getattr(trigger, "auth_level", None)),
                )
            )
        elif trigger_type == TIMER_TRIGGER:
            timer_functions.append(
                TimerFunction(
                    **common,
                    schedule=parse_schedule(str(trigger.schedule)),
                    run_on_startup=bool(getattr(trigger, "run_on_startup", False)),
                )
            )
        elif trigger_type == WARMUP_TRIGGER:  # run on a new instance before it gets traffic
            warmups.append(IndexedFunction(**common))
        else:
            _LOGGER.warning(
                "function %s has a %s trigger, which this host does not serve", name, trigger_type
            )
    http_functions.sort(key=lambda f: f.route.precedence)
    return http_functions, timer_functions, warmups


def _common_fields(function: Function, name: str, trigger_parameter: str, directory: str) -> dict[str, Any]:
    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    if trigger_parameter not in parameters:
        raise FunctionIndexError(
            f"function {name} has no parameter named {trigger_parameter!r} for its trigger"
        )
    extra = [
        p
        for p in parameters
        if p not in (trigger_parameter, _CONTEXT_PARAMETER)
        and parameters[p].default is inspect.Parameter.empty
    ]
    if extra:
        raise FunctionIndexError(f"function {name} needs bindings this host does not provide: {extra}")
    return {
        "name": name,
        "user_function": user_function,
        "trigger_parameter": trigger_parameter,
        "wants_context": _CONTEXT_PARAMETER in parameters,
        "directory": directory,
    }


def _auth_level_name(auth_level: object) -> str:
    """'anonymous', 'function' or 'admin' from an AuthLevel enum or string (None means function)."""
    if auth_level is None:
        return "function"
    value = getattr(auth_level, "value", auth_level)
    return str(value).lower()


class _TraceContext:
    """Empty W3C trace context: the devstack host does not propagate traces."""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext:
    """No retry policy runs locally: always the first attempt."""

    retry_count = 0
    max_retry_count = 0
    exception = None


class InvocationContext(func.Context):
    """The `context` argument: a fresh invocation id per call, like the worker's."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return _RetryContext()
