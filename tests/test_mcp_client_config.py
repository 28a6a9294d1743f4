"""The MCP client configuration file (MCP_CONFIG_FILE): mapped onto app settings, which override it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.config.loader import SettingsError, load_settings, parse_settings, reset_settings
from mcp_bridge.config.mcp_client_config import APP_ROOT, map_mcp_client_config
from mcp_bridge.runtime import reset_bridge

from .conftest import API_KEY, AUDIENCE, CLIENT_ID, control, schedule_arguments

FILE_KEY = "api-key-written-in-the-config-file"


def scheduler(url: str, auth: dict[str, Any] | None = None, **transport: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "http", "url": url, **transport}
    if auth is not None:
        body["auth"] = auth
    return {"name": "Scheduler", "transport": body}


def config_file(*servers: dict[str, Any], azure: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "mcp": {
            "mcp_servers": [
                # Another MCP server of the same host: skipped, not validated.
                {"name": "Calendar", "transport": {"type": "stdio", "command": "calendar-mcp"}},
                *servers,
            ]
        },
        "logging": {"level": "INFO"},  # other sections of the host application's config
    }
    if azure is not None:
        document["azure"] = azure
    return document


@pytest.fixture
def use_file(configure, monkeypatch, tmp_path):
    """`await use_file(document, keep=..., **settings)`: app settings hold only `keep` and `settings`."""

    async def apply(document: Any, *, keep: tuple[str, ...] = (), **settings: str) -> Path:
        path = tmp_path / "mcp_config.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        await configure(MCP_CONFIG_FILE=str(path), **settings)
        for name in ("SCHEDULER_ENDPOINTS", "SCHEDULER_AUTH", "SCHEDULER_CLIENT_ID", "SCHEDULER_API_KEY",
                     "SCHEDULER_TOKEN_SCOPE"):  # fmt: skip
            if name not in keep and name not in settings:
                monkeypatch.delenv(name)
        reset_settings()
        await reset_bridge()
        return path

    return apply


async def test_an_mcp_client_config_file_works_end_to_end(use_file, functions, stack):
    auth = {"client_id": CLIENT_ID, "api_key": API_KEY}
    await use_file(
        config_file(
            scheduler(stack.east.mcp_url, auth),
            scheduler(stack.west.mcp_url, auth),
            azure={"application_insights_connection_string": "InstrumentationKey=00000000-0000-0000-0000-0"},
        )
    )
    scheduled = await functions.call_tool("scheduleConversation", schedule_arguments())
    assert scheduled.status == 200, scheduled.body
    assert scheduled.json["endpoint"] == stack.east.mcp_url
    status = await functions.status(scheduled.json["structuredContent"]["conversation_id"])
    assert status.status == 200

    settings = load_settings()
    assert settings.scheduler_endpoints == [stack.east.mcp_url, stack.west.mcp_url], (
        "every Scheduler, in order"
    )
    assert settings.scheduler_auth == "api_key"
    assert settings.applicationinsights_connection_string.get_secret_value().startswith("InstrumentationKey=")
    assert control(stack.east.url)["unauthorized"] == 0


async def test_managed_identity_from_the_file_still_needs_the_schedulers_own_scope(
    use_file, functions, stack
):
    document = config_file(scheduler(stack.east.mcp_url, {"use_managed_identity": True}))
    await use_file(document)
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert [entry["name"] for entry in reply.json["settings"]] == ["SCHEDULER_TOKEN_SCOPE"]

    await use_file(document, keep=("SCHEDULER_TOKEN_SCOPE",))
    assert (await functions.call_tool("listConversations", {})).status == 200
    assert control(stack.identity.url)["by_resource"] == {AUDIENCE: 1}, "a token for the Scheduler, not ARM"


async def test_app_settings_override_the_file_and_blank_ones_do_not(use_file, functions, stack):
    document = config_file(scheduler(stack.east.mcp_url, {"client_id": CLIENT_ID, "api_key": "a-stale-key"}))
    await use_file(
        document,
        SCHEDULER_ENDPOINTS=stack.west.mcp_url,
        SCHEDULER_API_KEY=API_KEY,
        SCHEDULER_CLIENT_ID="",  # blank means unset: the file's client id applies
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert reply.json["endpoint"] == stack.west.mcp_url
    assert control(stack.east.url)["mcp_requests"] == 0


def test_the_azure_section_maps_onto_settings():
    document = config_file(
        scheduler(GOOD, {"client_id": CLIENT_ID}),
        azure={"use_managed_identity": True, "key_vault_name": "mcp-scheduler-kv"},
    )
    layer = map_mcp_client_config(document)
    assert layer.values["KEYVAULT_URI"] == "https://mcp-scheduler-kv.vault.azure.net"
    assert layer.values["USE_AZURE_SERVICES"] == "true"
    assert layer.values["SCHEDULER_AUTH"] == "api_key"
    assert "SCHEDULER_API_KEY" not in layer.values, "left to app settings or the vault"
    sovereign = map_mcp_client_config(document, url_template="https://{name}.vault.azure.cn")
    assert sovereign.values["KEYVAULT_URI"] == "https://mcp-scheduler-kv.vault.azure.cn"


async def test_key_vault_name_end_to_end_with_the_key_only_in_the_vault(use_file, functions, stack, vault):
    vault.put("SCHEDULER-API-KEY", API_KEY)
    document = config_file(
        scheduler(stack.east.mcp_url, {"client_id": CLIENT_ID}),
        azure={"use_managed_identity": True, "key_vault_name": "mcp-scheduler-kv"},
    )
    await use_file(document, KEYVAULT_URL_TEMPLATE=vault.url, KEYVAULT_CA_FILE=vault.ca_file)
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 200, reply.body
    assert load_settings().keyvault_uri == vault.url
    assert vault.counters()["by_secret"] == {"SCHEDULER-API-KEY": 1}


GOOD = "https://east.example/mcp"


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (config_file(scheduler(GOOD, type="stdio")), "mcp.mcp_servers[1].transport.type"),
        (config_file(scheduler(GOOD, type="sse")), "mcp.mcp_servers[1].transport.type"),
        (config_file({"name": "Scheduler", "transport": {"type": "http"}}),
         "mcp.mcp_servers[1].transport.url"),
        (config_file(scheduler("ftp://east.example/mcp")), "mcp.mcp_servers[1].transport.url"),
        (config_file({"name": "Scheduler", "transport": {"type": "http", "url": 5}}),
         "mcp.mcp_servers[1].transport.url"),
        (config_file(scheduler(GOOD, headers={"X": "y"})), "mcp.mcp_servers[1].transport.headers"),
        (config_file({"name": "Scheduler", "transport": "http"}), "mcp.mcp_servers[1].transport"),
        (config_file(scheduler(GOOD, {"client_id": "c", "api_key": 12345})),
         "mcp.mcp_servers[1].transport.auth.api_key"),
        (config_file(scheduler(GOOD, {"use_managed_identity": "true"})),
         "mcp.mcp_servers[1].transport.auth.use_managed_identity"),
        (config_file(scheduler(GOOD, {"use_managed_identity": True, "api_key": FILE_KEY})),
         "mcp.mcp_servers[1].transport.auth"),
        (config_file(scheduler(GOOD, {})), "mcp.mcp_servers[1].transport.auth"),
        (config_file(scheduler(GOOD, {"client_id": "c", "api_key": FILE_KEY}),
                    scheduler("https://west.example/mcp", {"use_managed_identity": True})),
         "mcp.mcp_servers[2].transport.auth"),
        (config_file(scheduler(GOOD), scheduler(GOOD)), "mcp.mcp_servers[2].transport.url"),
        ({"mcp": {"mcp_servers": [{"name": "Calendar"}]}}, "mcp.mcp_servers"),
        ({"mcp": {"mcp_servers": {"name": "Scheduler"}}}, "mcp.mcp_servers"),
        ({"mcp": {"mcp_servers": [{"transport": {}}]}}, "mcp.mcp_servers[0].name"),
        ({"mcp": []}, "mcp"),
        ({"azure": {"key_vault_name": "no spaces allowed"}}, "azure.key_vault_name"),
        ({"azure": {"use_managed_identity": "yes"}}, "azure.use_managed_identity"),
        ({"azure": {"keyvault": "typo"}}, "azure.keyvault"),
        (["not", "an", "object"], "MCP_CONFIG_FILE"),
    ],
)  # fmt: skip
def test_what_cannot_be_mapped_is_named_by_its_json_path(tmp_path, document, path):
    config = tmp_path / "mcp_config.json"
    config.write_text(json.dumps(document))
    with pytest.raises(SettingsError) as caught:
        parse_settings(
            {"MCP_CONFIG_FILE": str(config), "SCHEDULER_ENDPOINTS": GOOD, "SCHEDULER_AUTH": "none"}
        )
    assert [name for name, _ in caught.value.problems] == [path]
    assert path == "MCP_CONFIG_FILE" or "MCP_CONFIG_FILE" in caught.value.problems[0][1]
    assert FILE_KEY not in str(caught.value)
    assert "12345" not in str(caught.value)


def problems_for(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"MCP_CONFIG_FILE": str(path), "SCHEDULER_AUTH": "none"})
    return caught.value.problems


def test_unreadable_files_name_the_setting_and_never_echo_content(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"mcp": {"mcp_servers": [{"name": "Scheduler", "auth": {"api_key": "' + FILE_KEY + '"}}'
    )
    [(name, message)] = problems_for(broken)
    assert name == "MCP_CONFIG_FILE"
    assert message.startswith("is not valid JSON: ") and "at line 1 column" in message
    assert FILE_KEY not in message
    assert problems_for(tmp_path / "missing.json") == [("MCP_CONFIG_FILE", "no such file")]


def test_a_mapped_value_that_breaks_a_rule_is_named_by_its_json_path(tmp_path):
    config = tmp_path / "mcp_config.json"
    config.write_text(
        json.dumps(
            config_file(
                scheduler(GOOD, {"use_managed_identity": True}), azure={"use_managed_identity": False}
            )
        )
    )
    with pytest.raises(SettingsError) as caught:
        parse_settings({"MCP_CONFIG_FILE": str(config), "SCHEDULER_TOKEN_SCOPE": "api://scheduler/.default"})
    [(name, message)] = caught.value.problems
    assert name == "azure.use_managed_identity"
    assert "USE_AZURE_SERVICES" in message and "managed identity off" in message


def test_relative_paths_start_at_the_app_folder_not_the_working_directory(tmp_path, monkeypatch):
    config = tmp_path / "mcp_config.json"
    config.write_text(json.dumps(config_file(scheduler(GOOD, {"client_id": "c", "api_key": "k"}))))
    monkeypatch.chdir(tmp_path.parent)
    relative = os.path.relpath(config, APP_ROOT)
    settings = parse_settings({"MCP_CONFIG_FILE": relative})
    assert settings.scheduler_endpoints == [GOOD]
    assert settings.scheduler_auth == "api_key"


async def test_a_bad_file_is_a_500_naming_the_json_path(use_file, functions):
    await use_file(config_file(scheduler(GOOD, {"client_id": "c", "api_key": FILE_KEY}, type="stdio")))
    reply = await functions("list_tools", path="/api/tools")
    assert reply.status == 500
    assert reply.json["type"].endswith(":misconfigured")
    assert [entry["name"] for entry in reply.json["settings"]] == ["mcp.mcp_servers[1].transport.type"]
    assert FILE_KEY not in reply.body.decode()


async def test_a_file_value_may_be_a_key_vault_reference(use_file, functions, stack, vault):
    vault.put("file-api-key", API_KEY)
    for secret, expected in (("file-api-key", 200), ("not-in-the-vault", 500)):
        key = f"@Microsoft.KeyVault(SecretUri={vault.url}/secrets/{secret})"
        await use_file(
            config_file(scheduler(stack.east.mcp_url, {"client_id": CLIENT_ID, "api_key": key})),
            KEYVAULT_CA_FILE=vault.ca_file,
        )
        reply = await functions.call_tool("listConversations", {})
        assert reply.status == expected, reply.body
    assert [entry["name"] for entry in reply.json["settings"]] == ["mcp.mcp_servers[1].transport.auth"]
    assert "not-in-the-vault" not in reply.body.decode()
