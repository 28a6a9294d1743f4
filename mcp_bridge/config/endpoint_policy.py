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

These are the rules only, checked twice. Settings judge what each endpoint URL says (an IP literal
or a name); names are not resolved then, because DNS at start-up says nothing about DNS at connect
time. The connection guard (`upstream.addresses.GuardedNetworkBackend`) applies the same rules to
every address a name resolves to, at connect time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Literal

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
