"""No token, API key, Authorization header or secret in logs, errors or responses."""

from __future__ import annotations

import logging

from mcp_bridge.runtime import get_bridge

from .conftest import API_KEY, IDENTITY_HEADER, SIGNING_KEY, control, schedule_arguments


def leaked(text: str, secrets: dict[str, str]) -> list[str]:
    """Labels (never values) of the secrets found in `text`. Tests assert on a local holding this,
    so a failure names the secret without pytest echoing the arguments of a failing call."""
    assert all(secrets.values()), "an empty secret would prove nothing"
    return [label for label, secret in secrets.items() if secret in text]


async def exercise(functions, stack) -> list:
    replies = [
        await functions.call_tool("scheduleConversation", schedule_arguments()),
        await functions.call_tool("listConversations", {}),
        await functions.call_tool("scheduleConversation", {"participants": []}),
        await functions.status("conv-missing"),
    ]
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 401, "times": 2, "tools": ["listConversations"]},
    )
    replies.append(await functions.call_tool("listConversations", {}))
    return replies


async def test_managed_identity_flow_keeps_token_and_identity_header_out_of_logs(
    configure, functions, stack, captured_logs
):
    captured_logs.set_level(logging.DEBUG)
    await configure()
    replies = await exercise(functions, stack)
    bridge = await get_bridge()
    token = bridge.tokens._token.token  # the live bearer token the Scheduler saw
    assert [reply.status for reply in replies] == [200, 200, 400, 422, 502]
    assert "tool=scheduleConversation" in captured_logs.text, "the logs were really captured"
    assert "Sending client message" in captured_logs.text, "including the MCP transport's own debug lines"
    everything = captured_logs.text + "".join(reply.body.decode() + str(reply.headers) for reply in replies)
    found = leaked(
        everything,
        {
            "token": token,
            "identity header": IDENTITY_HEADER,
            "signing key": SIGNING_KEY,
            "bearer": "Bearer ey",
        },
    )
    assert found == []
    assert "Authorization" not in captured_logs.text or "REDACTED" in captured_logs.text


async def test_api_key_flow_keeps_the_key_out_of_logs(configure, functions, stack, captured_logs):
    captured_logs.set_level(logging.DEBUG)
    await configure(auth="api_key")
    replies = await exercise(functions, stack)
    assert [reply.status for reply in replies] == [200, 200, 400, 422, 502]
    everything = captured_logs.text + "".join(reply.body.decode() + str(reply.headers) for reply in replies)
    found = leaked(everything, {"api key": API_KEY})
    assert found == []


async def test_misconfiguration_names_settings_but_not_their_values(
    configure, functions, monkeypatch, captured_logs
):
    await configure()
    monkeypatch.setenv("SCHEDULER_AUTH", "api_key")
    monkeypatch.setenv("SCHEDULER_API_KEY", "")
    monkeypatch.setenv("SCHEDULER_TOKEN_SCOPE", "https://management.azure.com/.default")
    from mcp_bridge.config.loader import reset_settings

    reset_settings()
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 500
    names = {entry["name"] for entry in reply.json["settings"]}
    assert "SCHEDULER_TOKEN_SCOPE" in names
    assert "ARM token" in reply.body.decode()
    assert "SCHEDULER_TOKEN_SCOPE" in captured_logs.text, "the log says it too"
