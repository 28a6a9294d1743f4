"""What went wrong is said plainly: each common misconfiguration gets its own problem detail.

"No Scheduler endpoint is reachable" tells an operator nothing. A TLS handshake that fails (an
https:// URL on a plain-HTTP port), a path that answers 404 with no session involved (a wrong URL),
and credentials the Scheduler refuses even after a token refresh each name their cause, and every
failed attempt is listed with its own.
"""

from __future__ import annotations

from .conftest import control


async def test_https_to_a_plain_http_port_says_the_tls_handshake_failed(configure, functions, stack):
    plain = stack.east.mcp_url.replace("http://", "https://")
    await configure(endpoints=[plain], scheduler_ping_path="")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503, reply.body
    assert "TLS handshake" in reply.json["detail"] and "plain-HTTP port" in reply.json["detail"]
    assert {a["cause"] for a in reply.json["attempts"]} == {"TLS handshake failed"}


async def test_a_wrong_path_says_the_url_is_probably_wrong(configure, functions, stack):
    await configure(endpoints=[stack.east.url + "/not-mcp"], scheduler_ping_path="")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 502, reply.body
    assert "HTTP 404" in reply.json["detail"] and "path is probably wrong" in reply.json["detail"]


async def test_refused_credentials_say_so_even_after_a_refresh(configure, functions, stack):
    await configure(endpoints=[stack.east.mcp_url], auth="api_key", scheduler_api_key="not-the-key")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 502, reply.body
    assert "refused the bridge's credentials" in reply.json["detail"]
    assert "not-the-key" not in reply.body.decode()


async def test_each_attempt_is_listed_with_its_own_cause(configure, functions, stack):
    tls = stack.east.mcp_url.replace("http://", "https://")
    stack.west.kill()
    await configure(endpoints=[tls, stack.west.mcp_url], scheduler_ping_path="")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503, reply.body
    causes = {(a["endpoint"], a["cause"]) for a in reply.json["attempts"]}
    assert (tls, "TLS handshake failed") in causes
    assert (stack.west.mcp_url, "connection refused") in causes
    assert sum(control(stack.east.url)["tool_calls"].values()) == 0
