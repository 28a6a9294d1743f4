"""A loopback front end that stays up when the server behind it dies, like a region's gateway.

An HTTP/1.1 reverse proxy on raw asyncio streams, so it can do what real front ends do and a web
framework would not let it: keep the caller's connection alive across requests, stream SSE
answers chunk by chunk, and when the server behind it is gone either answer 502, 503 or 504, or
reset the caller's connection after reading its request (`dead_answer="reset"`). Every request
it reads is counted, so a test can say how much load a dead region still received.

For chaos runs it can also hang (`hang()`: read each request and never answer, until `unhang()`
resets the held connections; nothing held is forwarded) and stop listening altogether
(`stop_listening()`, then `listen_again()` on the same port), as a region whose machine is gone.

Each request is forwarded on a fresh upstream connection with `Connection: close`; the answer's
framing (Content-Length, chunked, or until close) is relayed as it comes. An upstream that dies
mid-answer has the caller's connection reset, as a gateway does mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

DeadAnswer = Literal[502, 503, 504, "reset"]

_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_HOP_BY_HOP = (b"connection", b"keep-alive", b"proxy-connection")
_MAX_HEAD = 64 * 1024


@dataclass
class Counters:
    received: int = 0
    """Requests read from callers."""
    forwarded: int = 0
    """Requests passed to a live server behind."""
    refused: int = 0
    """Requests answered for a dead server (a status or a reset)."""
    tool_calls: int = 0
    """Requests whose JSON-RPC body is a `tools/call`."""
    forwarded_tool_calls: int = 0
    """`tools/call` requests passed to a live server behind."""
    held: int = 0
    """Requests read while hanging: never forwarded, never answered."""
    methods: dict[str, int] = field(default_factory=dict)


class _UpstreamGone(Exception):
    """The server behind closed or refused before its answer began: nothing reached the caller."""


class FrontEnd:
    """`await FrontEnd(upstream_port).start()`; point the bridge at `.url + "/mcp"`."""

    def __init__(
        self, upstream_port: int, *, dead_answer: DeadAnswer = 502, refuse_get: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.dead_answer: DeadAnswer = dead_answer
        # A request/response gateway that does not carry the optional GET event stream (405), as
        # the MCP spec allows a server to do. Without that stream a session can go idle.
        self.refuse_get = refuse_get
        self.counters = Counters()
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: set[asyncio.StreamWriter] = set()
        self._unhang: asyncio.Event | None = None

    @property
    def port(self) -> int:
        assert self._port, "start() first"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset_counters(self) -> Counters:
        """Zero the counters; returns what they were."""
        before, self.counters = self.counters, Counters()
        return before

    async def start(self) -> FrontEnd:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self._port, limit=_MAX_HEAD, reuse_address=True
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def aclose(self) -> None:
        self.unhang()
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def stop_listening(self) -> None:
        """Refuse new connections and drop the open ones (reset), like a machine that is gone."""
        await self.aclose()
        self._server = None

    async def listen_again(self) -> None:
        """Listen on the same port again after `stop_listening()`."""
        await self.start()

    def hang(self) -> None:
        """From now on read each request, count it, and never answer or forward it."""
        if self._unhang is None:
            self._unhang = asyncio.Event()

    def unhang(self) -> None:
        """Answer again; connections held by the hang are reset (their requests were never sent on)."""
        if self._unhang is not None:
            self._unhang.set()
            self._unhang = None

    # -- one caller connection ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()
        finally:
            self._connections.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the caller's connection is done."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # the caller closed between requests
        method, headers = _parse_head(head)
        body = await _read_body(reader, headers)
        self._count(method, body)
        if self._unhang is not None:
            self.counters.held += 1
            await self._unhang.wait()
            _reset(writer)
            return False
        if self.refuse_get and method == "GET":
            writer.write(
                b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST, DELETE\r\ncontent-length: 0\r\n\r\n"
            )
            await writer.drain()
            return True
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port, limit=_MAX_HEAD)
        except OSError:
            return await self._dead(writer)
        up_reader, up_writer = upstream
        try:
            try:
                up_writer.write(_with_close(head) + body)
                await up_writer.drain()
                answer_head = await up_reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise _UpstreamGone from exc
            self.counters.forwarded += 1
            if b'"tools/call"' in body:
                self.counters.forwarded_tool_calls += 1
            return await _relay(answer_head, up_reader, writer, request_method=method)
        except _UpstreamGone:
            return await self._dead(writer)
        finally:
            up_writer.transport.abort()

    async def _dead(self, writer: asyncio.StreamWriter) -> bool:
        self.counters.refused += 1
        if self.dead_answer == "reset":
            _reset(writer)
            return False
        reason = _REASONS[self.dead_answer]
        page = f"<html><body><h1>{self.dead_answer} {reason}</h1></body></html>".encode()
        writer.write(
            f"HTTP/1.1 {self.dead_answer} {reason}\r\ncontent-type: text/html\r\n"
            f"content-length: {len(page)}\r\nconnection: keep-alive\r\n\r\n".encode()
            + page
        )
        await writer.drain()
        return True

    def _count(self, method: str, body: bytes) -> None:
        counters = self.counters
        counters.received += 1
        counters.methods[method] = counters.methods.get(method, 0) + 1
        if b'"tools/call"' in body:
            counters.tool_calls += 1


def _parse_head(head: bytes) -> tuple[str, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    method = lines[0].split(b" ", 1)[0].decode("ascii", "replace")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        parts = []
        async for piece in _chunks(reader):
            parts.append(piece)
        return b"".join(parts)
    length = int(headers.get(b"content-length", b"0") or b"0")
    return await reader.readexactly(length) if length else b""


async def _chunks(reader: asyncio.StreamReader):
    """The raw bytes of a chunked body, framing included, one chunk at a time."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            trailer = size_line
            while True:
                line = await reader.readuntil(b"\r\n")
                trailer += line
                if line == b"\r\n":
                    break
            yield trailer
            return
        yield size_line + await reader.readexactly(size + 2)


def _with_close(head: bytes) -> bytes:
    """The request head with hop-by-hop headers replaced by `Connection: close`."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    return b"\r\n".join([lines[0], *kept, b"connection: close"]) + b"\r\n\r\n"


async def _relay(
    head: bytes, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter, *, request_method: str
) -> bool:
    """Relay one answer to the caller; False when its framing needs the connection closed."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    names = {line.split(b":", 1)[0].strip().lower(): line for line in headers}
    no_body = request_method == "HEAD" or status in (204, 304) or 100 <= status < 200
    chunked = b"transfer-encoding" in names and b"chunked" in names[b"transfer-encoding"].lower()
    length = None
    if b"content-length" in names:
        length = int(names[b"content-length"].split(b":", 1)[1].strip())
    keep = no_body or chunked or length is not None
    out_head = b"\r\n".join([lines[0], *headers, b"connection: " + (b"keep-alive" if keep else b"close")])
    writer.write(out_head + b"\r\n\r\n")
    try:
        if no_body:
            pass
        elif chunked:
            async for piece in _chunks(upstream):
                writer.write(piece)
                await writer.drain()
        elif length is not None:
            remaining = length
            while remaining:
                piece = await upstream.read(min(remaining, 65536))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", remaining)
                writer.write(piece)
                await writer.drain()
                remaining -= len(piece)
        else:
            while piece := await upstream.read(65536):
                writer.write(piece)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        _reset(writer)  # the server died mid-answer: so does the caller's connection
        return False
    await writer.drain()
    return keep


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a front end does when its backend vanishes."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
