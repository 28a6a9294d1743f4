"""Pooled Scheduler connections: kept as long as the server says, and the keep-alive race made safe.

The server here is a real HTTP/1.1 server on loopback, written on asyncio streams so it can do what
uvicorn only does by accident of timing: close a kept-alive connection just as the next request
arrives on it, without a byte of answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from mcp_bridge.config.settings import BridgeSettings
from mcp_bridge.runtime import scheduler_http_client
from mcp_bridge.upstream.keepalive import advertised_timeout, idle_limit
from mcp_bridge.upstream.wire import SYNTHETIC_STATUS, WireTrace, current_trace

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "cancelConversation"}}


@dataclass
class RacingServer:
    """Answers the first `answered` requests of each connection (saying `keep_alive`), then closes
    that connection when the next request arrives on it, before answering."""

    answered: int = 1
    keep_alive: str | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                if served >= self.answered:
                    return  # the keep-alive race: closed with the request unanswered
                served += 1
                self.requests.append(body)
                extra = f"keep-alive: {self.keep_alive}\r\n" if self.keep_alive else ""
                writer.write(
                    f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n{extra}\r\n{{}}".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def running(server: RacingServer) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{server.port}/mcp"
    finally:
        listener.close()


def client_for(url: str, idle_seconds: float = 60.0):
    settings = BridgeSettings(
        scheduler_endpoints=[url],
        scheduler_auth="api_key",
        scheduler_client_id="c",
        scheduler_api_key="k",
        scheduler_idle_connection_seconds=idle_seconds,
    )
    return scheduler_http_client(settings, None)


async def post(http, url: str, message: dict, *, idempotent: bool = False) -> tuple[int, WireTrace]:
    trace = WireTrace(idempotent_call=idempotent)
    token = current_trace.set(trace)
    try:
        response = await http.post(url, content=json.dumps(message).encode())
        return response.status_code, trace
    finally:
        current_trace.reset(token)


def test_the_keep_alive_header_is_read_and_expired_a_margin_early():
    assert advertised_timeout("timeout=5") == 5
    assert advertised_timeout("max=100, timeout=120") == 120
    assert advertised_timeout("max=100") is None
    assert idle_limit(5) == 4
    assert idle_limit(120) == 108
    assert idle_limit(3600) == 200, "never past Azure's load balancer idle timeout"


async def test_a_replayable_request_that_loses_the_race_is_sent_again_on_a_new_connection():
    server = RacingServer()
    async with running(server) as url, client_for(url) as http:
        assert (await post(http, url, LIST))[0] == 200
        status, trace = await post(http, url, LIST)
    assert status == 200 and trace.failure is None
    assert server.connections == 2, "the resend went out on a fresh connection"
    assert len(server.requests) == 2


async def test_an_idempotent_tool_call_that_loses_the_race_is_sent_again():
    server = RacingServer()
    async with running(server) as url, client_for(url) as http:
        await post(http, url, LIST)
        status, trace = await post(http, url, CALL, idempotent=True)
    assert status == 200 and trace.failure is None
    assert server.requests[-1] == json.dumps(CALL).encode()


async def test_a_non_idempotent_tool_call_is_never_sent_twice():
    server = RacingServer()
    async with running(server) as url, client_for(url) as http:
        await post(http, url, LIST)
        status, trace = await post(http, url, CALL)
    assert status == SYNTHETIC_STATUS and trace.failure == "protocol", "outcome unknown, as it is"
    assert server.connections == 1, "not resent"


async def test_a_fresh_connection_closed_unanswered_is_not_retried():
    server = RacingServer(answered=0)
    async with running(server) as url, client_for(url) as http:
        status, trace = await post(http, url, LIST)
    assert status == SYNTHETIC_STATUS and trace.failure == "protocol"
    assert server.connections == 1, "no idle timeout to race with: the server refused us"


@pytest.mark.parametrize("idle_setting", [60.0, 0.2])
async def test_a_server_announcing_its_timeout_is_trusted_over_the_setting(idle_setting):
    """The server keeps connections 2 s: they are kept 1 s, whether the setting says more or less."""
    server = RacingServer(answered=100, keep_alive="timeout=2")
    async with running(server) as url, client_for(url, idle_setting) as http:
        await post(http, url, LIST)
        await asyncio.sleep(0.5)
        await post(http, url, LIST)
        assert server.connections == 1, "reused inside the announced timeout"
        await asyncio.sleep(1.3)
        await post(http, url, LIST)
    assert server.connections == 2, "dropped a margin before the announced timeout"
