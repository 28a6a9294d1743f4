"""The Azure Monitor (Application Insights) ingestion endpoint, as the real exporter talks to it.

    python -m devstack.ingestion --port 5149

A connection string `InstrumentationKey=<guid>;IngestionEndpoint=http://127.0.0.1:5149/` makes
azure-monitor-opentelemetry-exporter send its telemetry here, exactly as it would to Azure:

    POST /v2.1/track
    Content-Type: application/json            (Content-Encoding: gzip is accepted too)
    [{"name": "...", "time": "...", "iKey": "...", "tags": {...},
      "data": {"baseType": "RemoteDependencyData", "baseData": {...}}}, ...]

and answers `{"itemsReceived": n, "itemsAccepted": n, "errors": [{"index", "statusCode",
"message"}]}`: 200 when every item is accepted, 206 when some are not, 400 for a body that is not a
list of items (exporter/_generated/.../_operations.py deserialises this `TrackResponse`;
export/_base.py retries only the indexes listed in `errors` with a retryable status).

Control API (loopback only, no auth): `GET /_devstack/envelopes` (optionally
`?base_type=MetricData`) returns the accepted envelopes in arrival order; `POST /_devstack/reset`
forgets them. `POST /QuickPulseService.svc/...` (live metrics) answers "nobody is watching", so a
connection string whose `LiveEndpoint` points here keeps live metrics on loopback too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import zlib
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from devstack.serving import configure_logging, serve

_LOGGER = logging.getLogger(__name__)

TRACK_PATH = "/v2.1/track"
DEVSTACK_INSTRUMENTATION_KEY = "00000000-0000-4000-8000-00000000d5ac"
"""Any GUID will do; the exporter refuses a connection string whose key is not one."""
_REQUIRED_FIELDS = ("name", "time", "iKey", "data")


def connection_string(url: str, *, instrumentation_key: str = DEVSTACK_INSTRUMENTATION_KEY) -> str:
    """The `APPLICATIONINSIGHTS_CONNECTION_STRING` that sends everything (live metrics too) to `url`."""
    base = url.rstrip("/") + "/"
    return f"InstrumentationKey={instrumentation_key};IngestionEndpoint={base};LiveEndpoint={base}"


def build_app() -> ASGIApp:
    """The ASGI app serving `POST /v2.1/track`, the live-metrics ping and the control API."""
    envelopes: list[dict[str, Any]] = []

    async def track(request: Request) -> Response:
        try:
            items = _parse_items(await request.body(), request.headers.get("content-encoding", ""))
        except ValueError as exc:
            refusal = {"itemsReceived": 0, "itemsAccepted": 0, "errors": [], "message": str(exc)}
            return JSONResponse(refusal, 400)
        errors = []
        for index, item in enumerate(items):
            missing = [name for name in _REQUIRED_FIELDS if not (isinstance(item, dict) and item.get(name))]
            if missing:
                errors.append({"index": index, "statusCode": 400, "message": f"missing {', '.join(missing)}"})
            else:
                envelopes.append(item)
        accepted = len(items) - len(errors)
        _LOGGER.info("track: %d received, %d accepted", len(items), accepted)
        body = {"itemsReceived": len(items), "itemsAccepted": accepted, "errors": errors}
        return JSONResponse(body, 206 if errors else 200)

    async def live_metrics(_request: Request) -> Response:
        return Response(status_code=200, headers={"x-ms-qps-subscribed": "false"})

    async def read_envelopes(request: Request) -> Response:
        base_type = request.query_params.get("base_type")
        selected = [e for e in envelopes if base_type is None or e["data"].get("baseType") == base_type]
        return JSONResponse(selected)

    async def reset(_request: Request) -> Response:
        envelopes.clear()
        return JSONResponse({"envelopes": 0})

    app = Starlette(
        routes=[
            Route(TRACK_PATH, track, methods=["POST"]),
            Route("/QuickPulseService.svc/{operation:path}", live_metrics, methods=["POST"]),
            Route("/_devstack/envelopes", read_envelopes, methods=["GET"]),
            Route("/_devstack/reset", reset, methods=["POST"]),
        ]
    )
    return _collapse_slashes(app)


def _collapse_slashes(app: ASGIApp) -> ASGIApp:
    async def collapsed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = {**scope, "path": re.sub("/{2,}", "/", scope["path"])}
        await app(scope, receive, send)

    return collapsed


def _parse_items(raw: bytes, encoding: str) -> list[Any]:
    """A JSON array of envelopes, or newline-delimited JSON (the service accepts both)."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
    except (OSError, zlib.error) as exc:
        raise ValueError(f"body is not valid {encoding}") from exc
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        raise ValueError("empty body")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is neither a JSON array nor JSON lines: {exc.msg}") from None
    return parsed if isinstance(parsed, list) else [parsed]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.ingestion", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5149)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging()
    serve(build_app(), port=args.port)


if __name__ == "__main__":
    main()
