"""How many requests one instance takes at once comes from measurement, and the worker is built for it.

`make bench` (section 8) measures one worker process at concurrency 1 to 128 and finds the knee;
docs/deployment.md records that table and the figure. The Bicep default of
`httpPerInstanceConcurrency` must be that figure, the figure must be the knee of the recorded
table, and the parameter must reach `scaleAndConcurrency.triggers.http.perInstanceConcurrency`.
One worker process serves many requests at once only because every function is a coroutine on
its event loop (a sync function would run in the worker's thread pool instead).
"""

from __future__ import annotations

import inspect
import json
import re

from bench.instance_concurrency import MAX_SECONDS_PER_RUN, MIN_CALLS_PER_RUN, knee, run_seconds

from .templates import FUNCTION_APP, MAIN, ROOT, app_settings, parse, resources

DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
PARAMETERS = ROOT / "infra" / "main.parameters.json"
_FIGURE = re.compile(r"^Measured knee, and the Bicep default: \*\*(\d+)\*\*", re.MULTILINE)
_ROW = re.compile(r"^\| \**(\d+)\** \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|", re.MULTILINE)


def recorded_figure(text: str) -> int:
    [figure] = _FIGURE.findall(text)
    return int(figure)


def recorded_table(text: str) -> list[tuple[int, float]]:
    """(concurrency, p99 ms) rows of the recorded sweep, in order."""
    section = text.split("## How many requests one instance takes", 1)[1].split("\n## ", 1)[0]
    return [(int(level), float(p99)) for level, p99 in _ROW.findall(section)]


def test_the_bicep_default_is_the_figure_recorded_in_the_docs():
    figure = recorded_figure(DEPLOYMENT_DOC.read_text(encoding="utf-8"))
    assert parse(MAIN)["parameters"]["httpPerInstanceConcurrency"]["default"] == figure
    azd = json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"]["httpPerInstanceConcurrency"]
    assert azd["value"] == f"${{HTTP_PER_INSTANCE_CONCURRENCY={figure}}}"


def test_the_recorded_figure_is_the_knee_of_the_recorded_table():
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    rows = recorded_table(text)
    assert [level for level, _ in rows] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert knee(rows) == recorded_figure(text)


def test_the_knee_stops_at_the_first_level_over_the_limit():
    assert knee([(1, 10.0), (2, 14.0), (4, 15.0), (8, 16.0), (16, 14.0)]) == 4
    assert knee([(1, 10.0), (2, 16.0)]) == 1
    assert knee([(1, 10.0), (2, 10.0), (4, float("nan"))]) == 2


def test_low_levels_run_long_enough_for_their_p99_to_be_a_percentile():
    call = 0.080  # 35 ms each way plus the Scheduler
    assert run_seconds(3.0, 1, call) * 1 / call >= MIN_CALLS_PER_RUN
    assert run_seconds(3.0, 2, call) * 2 / call >= MIN_CALLS_PER_RUN
    assert run_seconds(3.0, 64, call) == 3.0, "high levels hold enough calls in the asked time"
    assert run_seconds(3.0, 1, 10.0) == MAX_SECONDS_PER_RUN, "a slow Scheduler cannot stretch the run"


def test_the_parameter_reaches_the_http_trigger_scale_settings():
    [(_, site)] = resources(FUNCTION_APP, "Microsoft.Web/sites")
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["triggers"] == {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}}
    module = parse(MAIN)["modules"]["app"]["config"]["params"]
    assert module["httpPerInstanceConcurrency"] == "httpPerInstanceConcurrency"


def test_the_worker_is_left_to_the_flex_consumption_defaults():
    """One worker process (FUNCTIONS_WORKER_PROCESS_COUNT is not a Flex Consumption setting) and
    no thread pool sizing: nothing here runs in it."""
    names = {setting["name"].upper() for setting in app_settings()}
    assert not names & {"FUNCTIONS_WORKER_PROCESS_COUNT", "PYTHON_THREADPOOL_THREAD_COUNT"}


def test_every_function_is_a_coroutine_on_the_workers_event_loop(functions):
    sync = [
        name
        for name, function in functions._functions.items()
        if not inspect.iscoroutinefunction(function.get_user_function())
    ]
    assert functions.names() and sync == []
