"""Where the bridge may send the Scheduler's token: the endpoint address policy, in one place.

The bridge attaches a managed-identity token or an API key to every Scheduler request, so an
endpoint that points somewhere else hands that credential over. The policy:

- link-local (169.254.0.0/16, where the instance metadata service lives, and fe80::/10) is always
  refused, as are unspecified, multicast and reserved addresses;
- loopback (127.0.0.0/8, ::1, `localhost`) is allowed, with plain `http`, for development;
- private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are refused unless
  `SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true`: private endpoints (Private Link) are a real deployment,
  but one that has to be chosen;
- everything else must be `https`.

Settings can only judge what the URL says (an IP literal or a name); names are not resolved then,
because DNS at start-up says nothing about DNS at connect time. `GuardedNetworkBackend` applies the
same rules to every address a name resolves to, at connect time, and connects to the address it
checked, so a rebinding DNS answer cannot slip between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from typing import Literal

import anyio
import httpcore2
import httpx2

_LOGGER = logging.getLogger(__name__)

AddressKind = Literal["loopback", "link_local", "private", "unusable", "public"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
_LINK_LOCAL = tuple(ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10"))
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def classify(address: IPAddress) -> AddressKind:
    """What kind of address this is, for the endpoint policy (IPv4-mapped IPv6 counts as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if any(address in network for network in _LINK_LOCAL):
        return "link_local"
    if any(address in network for network in _PRIVATE):
        return "private"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "unusable"
    return "public"


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the bridge must not connect to `address`, or None when it may."""
    kind = classify(address)
    if kind == "link_local":
        return "a link-local address (where the instance metadata service lives) is never an endpoint"
    if kind == "unusable":
        return "an unspecified, multicast or reserved address is never an endpoint"
    if kind == "private" and not allow_private:
        return "a private address is refused unless SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host names directly, or None for a DNS name.

    Includes the legacy IPv4 spellings the resolver accepts without DNS ("2852039166" and
    "0xa9.0xfe.0xa9.0xfe" are both 169.254.169.254), so they cannot pass as names.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_loopback_host(host: str) -> bool:
    address = literal_address(host)
    if address is not None:
        return classify(address) == "loopback"
    return host.lower() in LOOPBACK_NAMES


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
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
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
