"""The connection guard: every address a Scheduler connection is made to obeys the endpoint policy.

The rules (which addresses may receive the Scheduler's token) are `config.endpoint_policy`; the
settings check them against each endpoint URL. Here they are applied again at connect time, to
every address a name resolves to, and the connection goes to the address that was checked, so a
rebinding DNS answer cannot slip between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable

import anyio
import httpcore2
import httpx2

from ..config.endpoint_policy import IPAddress, classify, literal_address, refusal
from .keepalive import note_connection_opened

_LOGGER = logging.getLogger(__name__)


class AddressRefused(httpcore2.ConnectError):
    """The endpoint's name resolved to an address the policy refuses; nothing was sent."""


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """An httpcore network backend that checks each resolved address before connecting to it.

    The check runs where the connection is made, so it covers every connection the pool opens
    (including reconnects hours later) and the address checked is the address connected to. TLS is
    unaffected: httpcore verifies the certificate against the URL's host, not the address.
    """

    def __init__(self, inner: httpcore2.AsyncNetworkBackend, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        candidates = await self._allowed_addresses(host, port, timeout)
        last_error: Exception | None = None
        for address in candidates:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                note_connection_opened()
                return stream
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _allowed_addresses(self, host: str, port: int, limit: float | None) -> list[str]:
        literal = literal_address(host)  # the connect path: no thread hop for an address
        addresses: list[IPAddress] = [] if literal is None else [literal]
        if literal is None:
            try:
                with anyio.fail_after(limit):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except TimeoutError:
                raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise httpcore2.ConnectError(f"resolving {host} failed ({type(exc).__name__})") from None
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if address not in addresses:
                    addresses.append(address)
        allowed: list[str] = []
        for address in addresses:
            reason = refusal(address, allow_private=self._allow_private)
            if reason is None:
                _LOGGER.debug("Connecting to %s:%d at %s (%s)", host, port, address, classify(address))
                allowed.append(str(address))
            else:
                _LOGGER.warning("Refusing to connect to %s (%s): %s", host, address, reason)
        if not allowed:
            raise AddressRefused(f"{host} resolved only to refused addresses")
        return allowed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise AddressRefused("Scheduler endpoints are TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guard_connections(transport: httpx2.AsyncHTTPTransport, *, allow_private: bool) -> None:
    """Put a `GuardedNetworkBackend` under `transport`'s connection pool.

    httpx2 does not take a network backend, so this reaches into its pool (`_pool`) and httpcore2's
    (`_network_backend`), both unchanged since httpx 0.18. It raises rather than run unguarded if a
    release ever moves them; tests prove the guard is in the path (its debug line per connection).
    """
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore2.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("cannot install the endpoint address guard on this httpx2 version")
    pool._network_backend = GuardedNetworkBackend(pool._network_backend, allow_private=allow_private)
