"""Where the bridge may send its credentials: the endpoint policy at settings time and at connect time."""

from __future__ import annotations

import logging

import httpcore2
import pytest

from mcp_bridge.config.loader import SettingsError, parse_settings
from mcp_bridge.upstream.addresses import AddressRefused, GuardedNetworkBackend

from .conftest import tool_calls

BASE = {"SCHEDULER_AUTH": "none"}


def endpoints_problem(endpoints: str, **extra: str) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, "SCHEDULER_ENDPOINTS": endpoints, **extra})
    assert [name for name, _ in caught.value.problems] == ["SCHEDULER_ENDPOINTS"]
    return caught.value.problems[0][1]


@pytest.mark.parametrize(
    "url",
    [
        "https://scheduler.example/mcp",
        "http://127.0.0.1:5146/mcp",
        "http://127.8.9.10/mcp",
        "http://localhost:5146/mcp",
        "http://[::1]:5146/mcp",
        "https://scheduler-eastus.privatelink.example.net/mcp",  # names are not resolved here
    ],
)
def test_https_anywhere_and_http_only_on_loopback_are_accepted(url):
    assert parse_settings({**BASE, "SCHEDULER_ENDPOINTS": url}).scheduler_endpoints == [url]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://scheduler.example/mcp", "must use https"),
        ("http://10.1.2.3/mcp", "must use https"),
        ("https://169.254.169.254/metadata", "link-local"),
        ("https://[fe80::1]/mcp", "link-local"),
        ("https://[::ffff:169.254.169.254]/mcp", "link-local"),
        ("https://2852039166/mcp", "link-local"),  # 169.254.169.254 spelled as one number
        ("https://0xa9.0xfe.0xa9.0xfe/mcp", "link-local"),
        ("https://0.0.0.0/mcp", "never an endpoint"),
        ("https://10.0.0.5/mcp", "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true"),
        ("https://172.20.0.5/mcp", "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true"),
        ("https://192.168.1.5/mcp", "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true"),
        ("https://[fd00::5]/mcp", "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS=true"),
    ],
)
def test_refused_endpoints_name_the_setting_and_the_reason(url, expected):
    message = endpoints_problem(f"https://ok.example/mcp,{url}")
    assert expected in message
    assert "endpoint 2" in message


def test_private_endpoints_are_an_explicit_choice_but_link_local_never_is():
    allow = {"SCHEDULER_ALLOW_PRIVATE_ENDPOINTS": "true"}
    settings = parse_settings({**BASE, "SCHEDULER_ENDPOINTS": "https://10.0.0.5/mcp", **allow})
    assert settings.scheduler_allow_private_endpoints is True
    assert "link-local" in endpoints_problem("https://169.254.169.254/mcp", **allow)
    assert "must use https" in endpoints_problem("http://10.0.0.5/mcp", **allow)


def test_upstream_response_cap_defaults_to_10_mib_and_must_be_positive():
    settings = parse_settings({**BASE, "SCHEDULER_ENDPOINTS": "https://ok.example/mcp"})
    assert settings.max_upstream_response_bytes == 10 * 1024 * 1024
    with pytest.raises(SettingsError) as caught:
        parse_settings(
            {**BASE, "SCHEDULER_ENDPOINTS": "https://ok.example/mcp", "MAX_UPSTREAM_RESPONSE_BYTES": "0"}
        )
    assert caught.value.problems[0][0] == "MAX_UPSTREAM_RESPONSE_BYTES"


class RecordingBackend(httpcore2.AsyncNetworkBackend):
    """Stands in for the network where a refused address would be dialled: it never connects."""

    def __init__(self) -> None:
        self.dialled: list[str] = []

    async def connect_tcp(
        self,
        host,
        port,
        timeout=None,  # noqa: ASYNC109
        local_address=None,
        socket_options=None,
    ):
        self.dialled.append(host)
        raise httpcore2.ConnectError("recording backend: not connecting")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ASYNC109
        raise AssertionError("not used")

    async def sleep(self, seconds):
        raise AssertionError("not used")


@pytest.mark.parametrize("host", ["2852039166", "0", "169.254.169.254", "fe80::1", "10.0.0.5"])
async def test_connect_time_guard_refuses_what_a_name_or_number_resolves_to(host):
    # The resolver turns "2852039166" into 169.254.169.254 and "0" into 0.0.0.0 without DNS: the
    # guard checks the resolved address, not the spelling.
    inner = RecordingBackend()
    guard = GuardedNetworkBackend(inner, allow_private=False)
    with pytest.raises(AddressRefused):
        await guard.connect_tcp(host, 443, timeout=2)
    assert inner.dialled == []


async def test_connect_time_guard_dials_the_address_it_checked():
    inner = RecordingBackend()
    guard = GuardedNetworkBackend(inner, allow_private=True)
    with pytest.raises(httpcore2.ConnectError):
        await guard.connect_tcp("10.0.0.5", 443, timeout=2)  # the recorder never connects
    assert inner.dialled == ["10.0.0.5"]
    inner.dialled.clear()
    with pytest.raises(httpcore2.ConnectError):
        await guard.connect_tcp("localhost", 443, timeout=2)
    assert inner.dialled == ["127.0.0.1"], "the name is resolved once and the checked address dialled"


async def test_the_bridge_connects_through_the_guard(configure, functions, stack, captured_logs):
    endpoint = stack.east.mcp_url.replace("127.0.0.1", "localhost")
    await configure(endpoints=[endpoint])
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert tool_calls(stack.east, "listConversations") == 1
    checked = [r.getMessage() for r in captured_logs.records if r.name == "mcp_bridge.upstream.addresses"]
    assert any(f"localhost:{stack.east.port} at 127.0.0.1 (loopback)" in line for line in checked), checked
    assert logging.getLogger("mcp_bridge.upstream.addresses").isEnabledFor(logging.DEBUG)
