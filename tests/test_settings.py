"""Settings: parsed once with pydantic, and every problem names the setting without its value."""

import pytest

from mcp_bridge.config.loader import SettingsError, parse_settings

BASE = {"SCHEDULER_ENDPOINTS": "https://east.example/mcp, https://west.example/mcp", "SCHEDULER_AUTH": "none"}


def test_endpoints_keep_priority_order_and_defaults_apply():
    settings = parse_settings(BASE)
    assert settings.scheduler_endpoints == ["https://east.example/mcp", "https://west.example/mcp"]
    assert settings.primary_endpoint == "https://east.example/mcp"
    assert settings.scheduler_timeout_seconds == 30
    assert settings.max_request_bytes == 1_048_576
    assert settings.scheduler_status_tool == "getConversationStatus"
    assert settings.scheduler_status_argument == "conversation_id"
    assert settings.scheduler_allowed_tools is None


def test_missing_endpoints_names_the_setting():
    with pytest.raises(SettingsError) as caught:
        parse_settings({"SCHEDULER_AUTH": "none"})
    assert caught.value.problems[0][0] == "SCHEDULER_ENDPOINTS"


@pytest.mark.parametrize(
    "scope",
    ["https://management.azure.com/.default", "https://management.core.windows.net//.default"],
)
def test_arm_scope_is_refused_with_a_reason(scope):
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, "SCHEDULER_AUTH": "managed_identity", "SCHEDULER_TOKEN_SCOPE": scope})
    name, message = caught.value.problems[0]
    assert name == "SCHEDULER_TOKEN_SCOPE"
    assert "ARM token to a third party" in message


def test_managed_identity_requires_a_scope():
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, "SCHEDULER_AUTH": "managed_identity", "SCHEDULER_TOKEN_SCOPE": ""})
    assert caught.value.problems == [
        ("SCHEDULER_TOKEN_SCOPE", "required when SCHEDULER_AUTH=managed_identity")
    ]


def test_api_key_mode_requires_both_values_and_never_echoes_them():
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, "SCHEDULER_AUTH": "api_key", "SCHEDULER_CLIENT_ID": "client-1"})
    assert caught.value.problems[0][0] == "SCHEDULER_API_KEY"
    settings = parse_settings(
        {
            **BASE,
            "SCHEDULER_AUTH": "api_key",
            "SCHEDULER_CLIENT_ID": "c",
            "SCHEDULER_API_KEY": "k-very-secret",
        }
    )
    assert "k-very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SCHEDULER_TIMEOUT_SECONDS", "0"),
        ("SCHEDULER_TIMEOUT_SECONDS", "soon"),
        ("MAX_REQUEST_BYTES", "-1"),
        ("SCHEDULER_AUTH", "password"),
        ("SCHEDULER_ENDPOINTS", "ftp://east.example/mcp"),
        ("SCHEDULER_ENDPOINTS", "https://user:pw@east.example/mcp"),
    ],
)
def test_invalid_values_name_the_setting_not_the_value(name, value):
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, name: value})
    assert [problem[0] for problem in caught.value.problems] == [name]
    assert "pw@" not in str(caught.value)


def test_allowlist_is_a_comma_list():
    settings = parse_settings({**BASE, "SCHEDULER_ALLOWED_TOOLS": "getConversationStatus, listConversations"})
    assert settings.tool_is_allowed("listConversations")
    assert not settings.tool_is_allowed("cancelConversation")
