"""Real local servers for the azure transport tests (127.0.0.1 only, nothing mocked).

* `azure_app`: a Starlette app under uvicorn in a background thread, playing the App Service
  managed-identity endpoint and a small storage-like service.
* `refused_url`: a bound socket that does not listen, so connecting is refused at once.
* `silent_url`: a listening socket that never accepts: the kernel completes the handshake, the
  request is buffered, and no answer ever comes.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

IDENTITY_SECRET = "identity-header-secret"
BLOB = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable modulo 256
GZIP_JSON = {"compressed": True, "items": list(range(50))}


@dataclass
class AzureApp:
    base_url: str
    msi_requests: list[dict[str, object]] = field(default_factory=list)


def _build_app(state: AzureApp) -> Starlette:
    async def msi_token(request: Request) -> Response:
        state.msi_requests.append(
            {
                "query": dict(request.query_params),
                "identity_header_ok": request.headers.get("x-identity-header") == IDENTITY_SECRET,
            }
        )
        if request.headers.get("x-identity-header") != IDENTITY_SECRET:
            return JSONResponse({"error": "bad identity header"}, status_code=401)
        if request.query_params.get("api-version") != "2019-08-01":
            return JSONResponse({"error": "bad api-version"}, status_code=400)
        resource = request.query_params["resource"]
        return JSONResponse(
            {
                "access_token": f"token-for-{resource}",
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
            }
        )

    async def json_route(request: Request) -> Response:
        return JSONResponse({"hello": "world", "n": 1})

    async def blob(request: Request) -> Response:
        return Response(BLOB, media_type="application/octet-stream")

    async def gzipped(request: Request) -> Response:
        body = gzip.compress(json.dumps(GZIP_JSON).encode())
        return Response(body, media_type="application/json", headers={"Content-Encoding": "gzip"})

    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(
            body,
            media_type="application/octet-stream",
            headers={
                "x-echo-content-type": request.headers.get("content-type", ""),
                "x-echo-authorization": "present" if "authorization" in request.headers else "absent",
                "x-echo-user-agent": request.headers.get("user-agent", ""),
            },
        )

    async def metadata(request: Request) -> Response:
        response = Response(b"")
        # Starlette lower-cases `headers=`; raw_headers keeps the case on the wire, as Blob does.
        response.raw_headers.extend([(b"x-ms-meta-MixedCase", b"v1"), (b"x-dup", b"a"), (b"x-dup", b"b")])
        return response

    async def redirect(request: Request) -> Response:
        return RedirectResponse("/json", status_code=302)

    return Starlette(
        routes=[
            Route("/msi/token", msi_token),
            Route("/json", json_route),
            Route("/blob", blob),
            Route("/gzip", gzipped),
            Route("/echo", echo, methods=["POST", "PUT"]),
            Route("/metadata", metadata),
            Route("/redirect", redirect),
        ]
    )


@pytest.fixture(scope="session")
def azure_app() -> Iterator[AzureApp]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = AzureApp(base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_build_app(state), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test uvicorn server did not start")
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connect() gets RST
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/nothing"
    finally:
        sock.close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # handshakes complete in the backlog; accept() is never called
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hang"
    finally:
        sock.close()


@dataclass
class TlsFiles:
    ca_pem: str
    cert_pem: str
    key_pem: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1: the devstack Key Vault's generator."""
    from devstack.tls import ensure_tls_files

    files = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    return TlsFiles(ca_pem=str(files.ca_file), cert_pem=str(files.cert_file), key_pem=str(files.key_file))
