"""Httpx2Transport against real local servers: azure-identity, azure-core pipelines, errors, closing."""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import pytest
from azure.core import AsyncPipelineClient
from azure.core.exceptions import (
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import HttpRequest
from azure.identity.aio import ManagedIdentityCredential

from mcp_bridge.azure_services.transport import Httpx2Transport, azure_client_kwargs
from mcp_bridge.azure_services.transport_responses import Httpx2TransportResponse, RestHttpx2TransportResponse

from .conftest import BLOB, GZIP_JSON, IDENTITY_SECRET, AzureApp, TlsFiles

# Env vars that would steer ManagedIdentityCredential away from App Service mode.
_OTHER_MI_VARS = (
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_TOKEN_PROXY",
)


def _counting_client(**kwargs: Any) -> tuple[httpx2.AsyncClient, list[str]]:
    """A client whose request hook records every request it sends (path only)."""
    seen: list[str] = []

    async def record(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    return httpx2.AsyncClient(timeout=5.0, event_hooks={"request": [record]}, **kwargs), seen


async def _raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1]


async def _truncating_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Promise 1000 bytes, send 10, hang up."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n")
    writer.write(b"0123456789")
    await writer.drain()
    writer.close()


# 1. azure-identity ----------------------------------------------------------------------------


async def test_managed_identity_app_service_token(
    azure_app: AzureApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in _OTHER_MI_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{azure_app.base_url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_SECRET)
    client, seen = _counting_client()
    async with client:
        transport = Httpx2Transport(client)
        credential = ManagedIdentityCredential(**azure_client_kwargs(transport))
        async with credential:
            info = await credential.get_token_info("https://vault.azure.net/.default")
        # Closing the credential closed its transport; the shared client must survive that.
        assert not client.is_closed
        assert (await client.get(f"{azure_app.base_url}/json")).status_code == 200

    assert info.token == "token-for-https://vault.azure.net"
    assert info.expires_on > time.time() + 3000
    assert seen[0] == "/msi/token"
    assert azure_app.msi_requests[-1] == {
        "query": {"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
        "identity_header_ok": True,
    }


# 2. azure-core pipelines ----------------------------------------------------------------------


async def test_pipeline_client_json_and_streamed_download(azure_app: AzureApp) -> None:
    client, seen = _counting_client()
    async with client:
        transport = Httpx2Transport(client)
        async with AsyncPipelineClient(base_url=azure_app.base_url, **azure_client_kwargs(transport)) as pipe:
            response = await pipe.send_request(HttpRequest("GET", f"{azure_app.base_url}/json"))
            assert isinstance(response, RestHttpx2TransportResponse)
            assert response.status_code == 200
            assert response.json() == {"hello": "world", "n": 1}
            assert response.is_closed  # non-stream responses are read and released at once

            response = await pipe.send_request(HttpRequest("GET", f"{azure_app.base_url}/blob"), stream=True)
            assert response.headers["content-length"] == str(len(BLOB))
            chunks = [chunk async for chunk in response.iter_bytes()]
            assert b"".join(chunks) == BLOB
            assert len(chunks) > 1
            assert response.is_closed
        assert not client.is_closed
        assert seen == ["/json", "/blob"]


async def test_content_encoding_raw_versus_decoded(azure_app: AzureApp) -> None:
    async with httpx2.AsyncClient(timeout=5.0) as client:
        transport = Httpx2Transport(client)
        url = f"{azure_app.base_url}/gzip"
        decoded = await transport.send(HttpRequest("GET", url))
        assert decoded.json() == GZIP_JSON

        raw = await transport.send(HttpRequest("GET", url), stream=True)
        wire = b"".join([chunk async for chunk in raw.iter_raw()])
        assert wire.startswith(b"\x1f\x8b")  # gzip magic: iter_raw does not decode


async def test_legacy_request_stream_download_and_bodies(azure_app: AzureApp) -> None:
    async with httpx2.AsyncClient(timeout=5.0) as client:
        transport = Httpx2Transport(client)
        async with AsyncPipeline(transport) as pipeline:
            result = await pipeline.run(LegacyHttpRequest("GET", f"{azure_app.base_url}/blob"), stream=True)
            response = result.http_response
            assert isinstance(response, Httpx2TransportResponse)
            assert b"".join([c async for c in response.stream_download(pipeline)]) == BLOB

            form = LegacyHttpRequest("POST", f"{azure_app.base_url}/echo", data={"grant_type": "x y"})
            response = (await pipeline.run(form)).http_response
            assert response.body() == b"grant_type=x+y"
            assert response.headers["x-echo-content-type"] == "application/x-www-form-urlencoded"

            text = LegacyHttpRequest("POST", f"{azure_app.base_url}/echo")
            text.set_text_body("héllo")  # azure-core sets Content-Length to 5 characters; it is 6 bytes
            response = (await pipeline.run(text)).http_response
            assert response.text() == "héllo"


@pytest.mark.parametrize("kind", ["bytes", "json", "file", "sync-iter", "async-iter"])
async def test_rest_request_bodies(azure_app: AzureApp, kind: str) -> None:
    payload = b"x" * 70_000 + b"end"

    async def agen() -> AsyncIterator[bytes]:
        yield payload[:1000]
        yield payload[1000:]

    content: Any = {
        "bytes": payload,
        "file": io.BytesIO(payload),
        "sync-iter": iter([payload[:5], payload[5:]]),
        "async-iter": agen(),
    }.get(kind)
    url = f"{azure_app.base_url}/echo"
    request = (
        HttpRequest("PUT", url, json={"a": 1}) if kind == "json" else HttpRequest("PUT", url, content=content)
    )
    async with httpx2.AsyncClient(timeout=5.0) as client:
        response = await Httpx2Transport(client).send(request)
    expected = json.dumps({"a": 1}).encode() if kind == "json" else payload
    assert response.status_code == 200
    assert response.content == expected


async def test_shared_client_defaults_do_not_leak_and_redirects_are_not_followed(azure_app: AzureApp) -> None:
    client, _ = _counting_client(
        headers={"Authorization": "Bearer upstream-secret", "User-Agent": "bridge/1"},
        follow_redirects=True,
        base_url="http://upstream.invalid",
    )
    async with client:
        transport = Httpx2Transport(client)
        echo = await transport.send(HttpRequest("POST", f"{azure_app.base_url}/echo", content=b"hi"))
        assert echo.headers["x-echo-authorization"] == "absent"
        assert echo.headers["x-echo-user-agent"] != "bridge/1"

        redirect = await transport.send(HttpRequest("GET", f"{azure_app.base_url}/redirect"))
        assert redirect.status_code == 302
        assert redirect.headers["location"] == "/json"


async def test_response_headers_keep_case_and_join_repeats(azure_app: AzureApp) -> None:
    async with httpx2.AsyncClient(timeout=5.0) as client:
        response = await Httpx2Transport(client).send(HttpRequest("GET", f"{azure_app.base_url}/metadata"))
    assert "x-ms-meta-MixedCase" in list(response.headers.keys())
    assert response.headers["X-MS-META-MIXEDCASE"] == "v1"
    assert response.headers["x-dup"] == "a, b"


# 3. errors ------------------------------------------------------------------------------------


async def test_connection_refused_is_service_request_error(refused_url: str) -> None:
    async with httpx2.AsyncClient(timeout=5.0) as client:
        with pytest.raises(ServiceRequestError) as caught:
            await Httpx2Transport(client).send(HttpRequest("GET", refused_url))
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)
    assert caught.value.inner_exception is caught.value.__cause__


async def test_silent_server_read_timeout_is_service_response_error(silent_url: str) -> None:
    async with httpx2.AsyncClient(timeout=30.0) as client:
        transport = Httpx2Transport(client)
        started = time.monotonic()
        with pytest.raises(ServiceResponseError) as caught:
            await transport.send(HttpRequest("GET", silent_url), read_timeout=0.3)
        elapsed = time.monotonic() - started
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    assert 0.25 < elapsed < 3


async def test_retry_policy_retries_refused_connections(refused_url: str) -> None:
    """ServiceRequestError means "never sent", so azure-core's retry policy retries it (via our sleep)."""
    client, seen = _counting_client()
    retry = AsyncRetryPolicy(retry_total=2, retry_backoff_factor=0)
    async with client:
        transport = Httpx2Transport(client)
        async with AsyncPipelineClient(base_url=refused_url, transport=transport, policies=[retry]) as pipe:
            with pytest.raises(ServiceRequestError):
                await pipe.send_request(HttpRequest("GET", refused_url))
    assert seen == ["/nothing"] * 3


@pytest.mark.parametrize("stream", [False, True])
async def test_truncated_body_is_incomplete_read_error(stream: bool) -> None:
    server, port = await _raw_server(_truncating_handler)
    async with server, httpx2.AsyncClient(timeout=5.0) as client:
        transport = Httpx2Transport(client)
        request = HttpRequest("GET", f"http://127.0.0.1:{port}/cut")
        with pytest.raises(IncompleteReadError) as caught:
            response = await transport.send(request, stream=stream)
            async for _ in response.iter_bytes():
                pass
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


# 4. closing and per-request TLS settings ------------------------------------------------------


async def test_close_leaves_shared_client_open(azure_app: AzureApp) -> None:
    async with httpx2.AsyncClient(timeout=5.0) as client:
        transport = Httpx2Transport(client)
        async with transport:
            await transport.send(HttpRequest("GET", f"{azure_app.base_url}/json"))
        await transport.close()
        assert not client.is_closed
        # Still usable: another SDK client may share this transport.
        response = await transport.send(HttpRequest("GET", f"{azure_app.base_url}/json"))
        assert response.status_code == 200


async def test_close_closes_owned_client(azure_app: AzureApp) -> None:
    client = httpx2.AsyncClient(timeout=5.0)
    transport = Httpx2Transport(client, owns_client=True)
    async with transport:
        await transport.send(HttpRequest("GET", f"{azure_app.base_url}/json"))
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await transport.send(HttpRequest("GET", f"{azure_app.base_url}/json"))


async def test_connection_verify_uses_one_cached_tls_client(tls_files: TlsFiles) -> None:
    async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the shared client's failed handshake
        finally:
            writer.close()

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls_files.cert_pem, tls_files.key_pem)
    server, port = await _raw_server(answer_ok, server_ctx)
    url = f"https://127.0.0.1:{port}/tls"
    client, seen = _counting_client()
    async with server, client:
        transport = Httpx2Transport(client)
        # The shared client trusts only the system store: our private CA is rejected before sending.
        with pytest.raises(ServiceRequestError):
            await transport.send(HttpRequest("GET", url))
        assert seen == ["/tls"]

        for _ in range(2):
            response = await transport.send(HttpRequest("GET", url), connection_verify=tls_files.ca_pem)
            assert response.text() == "ok"
        assert seen == ["/tls"]  # the CA-path requests went through a separate client...
        tls_clients = list(transport._tls_clients.values())
        assert len(tls_clients) == 1  # ...created once and reused

        await transport.close()
        assert tls_clients[0].is_closed
        assert not client.is_closed
