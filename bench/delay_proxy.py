"""`python -m bench.delay_proxy --port P --target T --delay 0.035`: a TCP proxy on loopback that
adds a one-way delay to every byte, in both directions, the closes included.

It stands for the network between a Functions instance and a Scheduler in another region. TLS
passes through it untouched (the client verifies the Scheduler's certificate, not the proxy's). A
new connection also pays one round trip before its first bytes arrive, the TCP handshake that a
loopback connect skips. A close travels as late as data does, so a server's keep-alive close can
cross a request in flight, as it does on a real network. It runs in its own process, so its CPU is
not counted as the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, first_extra: float
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        extra = first_extra
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            queue.put_nowait((loop.time() + delay + extra, data))
            extra = 0.0
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(pump(), deliver())


async def _serve(port: int, target: int, delay: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                _pipe(client_reader, server_writer, delay, first_extra=2 * delay),  # the TCP handshake
                _pipe(server_reader, client_writer, delay, first_extra=0.0),
            )
        finally:
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delay_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.035, help="one-way delay in seconds")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.target, args.delay))


if __name__ == "__main__":
    main()
