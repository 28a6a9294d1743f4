"""The devstack Functions host serving a real v2-model FunctionApp in-process: routes, methods, keys, loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import azure.functions as func
import httpx2
import pytest

from devstack.host import build_host_app
from tests.devstack.conftest import serving

FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
blueprint = func.Blueprint()
seen_loops: list[asyncio.AbstractEventLoop] = []
timer_calls: list[func.TimerRequest] = []


@app.route(route="greet/{name:alpha}", methods=[func.HttpMethod.GET, func.HttpMethod.POST])
async def greet(req: func.HttpRequest) -> func.HttpResponse:
    seen_loops.append(asyncio.get_running_loop())
    payload = {
        "name": req.route_params["name"],
        "method": req.method,
        "params": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-custom"),
        "url": req.url,
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"x-out": "1"}
    )


@app.route(route="items/{id:int}", auth_level=func.AuthLevel.ANONYMOUS)
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"id {req.route_params['id']} on {threading.current_thread().name}")


@app.route(route="items/latest", auth_level=func.AuthLevel.ANONYMOUS)
def latest_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("latest")


@app.route(auth_level=func.AuthLevel.ANONYMOUS)
def no_route_given(req: func.HttpRequest, context: func.Context) -> str:
    return f"invocation {context.invocation_id} of {context.function_name}"


@app.route(route="broken", auth_level=func.AuthLevel.ANONYMOUS)
async def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the function failed")


@blueprint.route(route="admin/thing", methods=["DELETE"], auth_level=func.AuthLevel.ADMIN)
def admin_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="mytimer", run_on_startup=True)
async def yearly(mytimer: func.TimerRequest) -> None:
    seen_loops.append(asyncio.get_running_loop())
    timer_calls.append(mytimer)


app.register_functions(blueprint)


@pytest.fixture(scope="module")
async def host() -> AsyncIterator[str]:
    host_app = build_host_app(app, function_key=FUNCTION_KEY, master_key=MASTER_KEY)
    async with serving(host_app) as url:
        yield url


async def test_http_trigger_gets_a_real_http_request(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        response = await http.post(
            "/api/greet/alice?code=test-function-key&x=1", content=b"hello", headers={"X-Custom": "c"}
        )

    assert response.status_code == 201
    assert response.headers["x-out"] == "1"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["name"] == "alice"
    assert (body["method"], body["body"], body["header"]) == ("POST", "hello", "c")
    assert body["params"] == {"code": FUNCTION_KEY, "x": "1"}
    assert body["url"] == f"{host}/api/greet/alice?code=test-function-key&x=1"


async def test_async_functions_run_on_the_hosts_one_loop(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host, headers={"x-functions-key": FUNCTION_KEY}) as http:
        for _ in range(3):
            assert (await http.get("/api/greet/bob")).status_code == 201

    assert set(seen_loops) == {asyncio.get_running_loop()}  # in-process: the test loop is uvicorn's loop


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        pytest.param("GET", "/api/greet/bob", {}, 401, id="function-no-key"),
        pytest.param("GET", "/api/greet/bob?code=wrong", {}, 401, id="function-wrong-key"),
        pytest.param("GET", "/api/greet/bob", {"x-functions-key": MASTER_KEY}, 201, id="function-master-key"),
        pytest.param("GET", "/api/greet/b0b?code=test-function-key", {}, 404, id="alpha-constraint"),
        pytest.param("PUT", "/api/greet/bob?code=test-function-key", {}, 405, id="method-not-allowed"),
        pytest.param("DELETE", "/api/admin/thing?code=test-function-key", {}, 401, id="admin-function-key"),
        pytest.param("DELETE", "/api/admin/thing?code=test-master-key", {}, 204, id="admin-master-key"),
        pytest.param("GET", "/api/items/12", {}, 200, id="anonymous"),
        pytest.param("GET", "/api/items/twelve", {}, 404, id="int-constraint"),
        pytest.param("GET", "/api/nothing-here", {}, 404, id="unknown-route"),
        pytest.param("GET", "/greet/bob", {}, 404, id="outside-route-prefix"),
    ],
)
async def test_routing_and_keys(
    host: str, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        response = await http.request(method, path, headers=headers)

    assert response.status_code == status
    if status in (401, 404):
        assert response.content == b""  # like the real host: no body to learn from
    if status == 405:
        assert response.headers["allow"] == "GET, POST"


async def test_literal_route_beats_parameter_and_sync_runs_in_a_thread(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        latest = await http.get("/api/items/latest")
        by_id = await http.get("/api/items/7")

    assert latest.text == "latest"
    assert by_id.text.startswith("id 7 on ")
    assert "MainThread" not in by_id.text


async def test_function_name_is_the_default_route_and_context_is_passed(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        response = await http.get("/api/no_route_given")

    assert response.status_code == 200
    assert response.text.startswith("invocation ")
    assert response.text.endswith(" of no_route_given")


async def test_function_exception_is_an_empty_500(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        response = await http.get("/api/broken")

    assert (response.status_code, response.content) == (500, b"")


async def test_admin_endpoints(host: str) -> None:
    async with httpx2.AsyncClient(base_url=host) as http:
        assert (await http.get("/admin/host/ping")).status_code == 200
        assert (await http.get("/admin/host/status")).status_code == 401
        assert (await http.get("/admin/host/status", headers={"x-functions-key": MASTER_KEY})).json()[
            "state"
        ] == "Running"
        functions = (await http.get(f"/admin/functions?code={MASTER_KEY}")).json()

    by_name = {f["name"]: f for f in functions}
    assert by_name["greet"]["route"] == "api/greet/{name:alpha}"
    assert by_name["yearly"] == {
        "name": "yearly",
        "trigger": "timerTrigger",
        "schedule": "0 0 0 1 1 *",
        "runOnStartup": True,
    }


async def test_timer_run_on_startup_fires_on_the_same_loop(host: str) -> None:
    for _ in range(100):
        if timer_calls:
            break
        await asyncio.sleep(0.01)

    assert len(timer_calls) == 1
    assert isinstance(timer_calls[0], func.TimerRequest)
    assert timer_calls[0].past_due is False
    assert "Next" in timer_calls[0].schedule_status
    assert asyncio.get_running_loop() in seen_loops
