"""The Azure Monitor ingestion stand-in answers the track protocol the exporter relies on.

The real exporter posting here is proven end to end by tests/test_telemetry.py (in a fresh process,
since it installs process-wide providers); these tests pin the protocol details it depends on.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import httpx2
import pytest

from devstack.ingestion import DEVSTACK_INSTRUMENTATION_KEY, TRACK_PATH, build_app, connection_string
from tests.devstack.conftest import serving


def envelope(name: str, base_type: str = "RemoteDependencyData") -> dict:
    return {
        "name": f"Microsoft.ApplicationInsights.{base_type.removesuffix('Data')}",
        "time": "2026-01-01T00:00:00.000000Z",
        "iKey": DEVSTACK_INSTRUMENTATION_KEY,
        "tags": {"ai.operation.id": "0af7651916cd43dd8448eb211c80319c"},
        "data": {"baseType": base_type, "baseData": {"ver": 2, "name": name}},
    }


@pytest.fixture
async def ingestion() -> AsyncIterator[httpx2.AsyncClient]:
    async with serving(build_app()) as url, httpx2.AsyncClient(base_url=url) as client:
        yield client


async def test_a_json_batch_is_accepted_and_kept_in_order(ingestion: httpx2.AsyncClient) -> None:
    batch = [envelope("first"), envelope("second", "MetricData")]
    response = await ingestion.post(TRACK_PATH, json=batch)

    assert response.status_code == 200
    assert response.json() == {"itemsReceived": 2, "itemsAccepted": 2, "errors": []}
    stored = (await ingestion.get("/_devstack/envelopes")).json()
    assert [e["data"]["baseData"]["name"] for e in stored] == ["first", "second"]
    metrics = (await ingestion.get("/_devstack/envelopes", params={"base_type": "MetricData"})).json()
    assert [e["data"]["baseData"]["name"] for e in metrics] == ["second"]


async def test_gzip_and_json_lines_bodies_are_understood(ingestion: httpx2.AsyncClient) -> None:
    lines = "\n".join(json.dumps(envelope(name)) for name in ("a", "b")).encode()
    response = await ingestion.post(
        TRACK_PATH, content=gzip.compress(lines), headers={"Content-Encoding": "gzip"}
    )

    assert response.json()["itemsAccepted"] == 2
    assert len((await ingestion.get("/_devstack/envelopes")).json()) == 2


async def test_invalid_items_are_reported_by_index_with_206(ingestion: httpx2.AsyncClient) -> None:
    broken = envelope("broken")
    del broken["iKey"]
    response = await ingestion.post(TRACK_PATH, json=[envelope("ok"), broken])

    assert response.status_code == 206
    body = response.json()
    assert (body["itemsReceived"], body["itemsAccepted"]) == (2, 1)
    assert body["errors"] == [{"index": 1, "statusCode": 400, "message": "missing iKey"}]
    assert len((await ingestion.get("/_devstack/envelopes")).json()) == 1


async def test_a_body_that_is_not_telemetry_is_refused(ingestion: httpx2.AsyncClient) -> None:
    response = await ingestion.post(TRACK_PATH, content=b"not json at all")

    assert response.status_code == 400
    assert (await ingestion.get("/_devstack/envelopes")).json() == []


async def test_reset_forgets_everything(ingestion: httpx2.AsyncClient) -> None:
    await ingestion.post(TRACK_PATH, json=[envelope("x")])
    await ingestion.post("/_devstack/reset")

    assert (await ingestion.get("/_devstack/envelopes")).json() == []


async def test_live_metrics_pings_stay_local_and_unsubscribed(ingestion: httpx2.AsyncClient) -> None:
    ping = await ingestion.post("/QuickPulseService.svc/ping", params={"ikey": DEVSTACK_INSTRUMENTATION_KEY})

    assert ping.status_code == 200
    assert ping.headers["x-ms-qps-subscribed"] == "false"


def test_connection_string_points_ingestion_and_live_metrics_at_the_stand_in() -> None:
    value = connection_string("http://127.0.0.1:5149")

    parts = dict(part.split("=", 1) for part in value.split(";"))
    assert parts == {
        "InstrumentationKey": DEVSTACK_INSTRUMENTATION_KEY,
        "IngestionEndpoint": "http://127.0.0.1:5149/",
        "LiveEndpoint": "http://127.0.0.1:5149/",
    }


async def test_the_doubled_slash_of_a_trailing_slash_endpoint_is_tolerated(
    ingestion: httpx2.AsyncClient,
) -> None:
    # Connection strings end the endpoint with "/", and the exporter appends "/v2.1/track" to it.
    url = str(ingestion.base_url).rstrip("/") + "/" + TRACK_PATH
    response = await ingestion.post(url, json=[envelope("x")])

    assert response.json()["itemsAccepted"] == 1
