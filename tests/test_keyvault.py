"""Key Vault: the real aio SecretClient against the devstack vault (HTTPS, challenge auth, tokens
from the devstack identity endpoint), for KEYVAULT_URI secrets, rotation and KV references."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devstack.processes import free_port, start_scheduler
from mcp_bridge.azure_services import settings_loader
from mcp_bridge.azure_services.keyvault import VaultReader
from mcp_bridge.azure_services.scheduler_secrets import SchedulerSecrets, VaultValue
from mcp_bridge.config.loader import load_settings
from mcp_bridge.runtime import get_bridge

from .conftest import API_KEY, CLIENT_ID, IDENTITY_HEADER, SIGNING_KEY, control, identity_requests

VAULT_RESOURCE = "https://vault.azure.net"


async def configure_api_key_from_vault(configure, vault, **settings: str) -> None:
    """api_key mode with both Scheduler credentials left unset: the vault must supply them."""
    values = {"SCHEDULER_CLIENT_ID": "", "SCHEDULER_API_KEY": "", **vault.settings(), **settings}
    await configure(auth="api_key", **values)


def reference(vault, name: str, version: str = "") -> str:
    return f"@Microsoft.KeyVault(SecretUri={vault.url}/secrets/{name}/{version})"


# -- KEYVAULT_URI: the Scheduler's client id and API key ------------------------------------------


async def test_api_key_calls_use_secrets_loaded_once_on_first_use(configure, functions, stack, vault):
    vault.put("SCHEDULER-CLIENT-ID", CLIENT_ID)
    vault.put("SCHEDULER-API-KEY", API_KEY)
    await configure_api_key_from_vault(configure, vault, USE_AZURE_SERVICES="true")
    assert "call_tool" in functions.names()
    assert vault.counters()["requests"] == 0, "indexing and configuration read nothing from the vault"

    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(20)))

    assert [reply.status for reply in replies] == [200] * 20
    counters = vault.counters()
    assert counters["by_secret"] == {"SCHEDULER-CLIENT-ID": 1, "SCHEDULER-API-KEY": 1}, "cached in memory"
    assert counters["unauthorized"] >= 1, "the SDK went through Key Vault's challenge"
    assert control(stack.identity.url)["by_resource"].keys() == {VAULT_RESOURCE}
    assert control(stack.east.url)["unauthorized"] == 0


async def test_app_settings_win_and_the_vault_fills_only_what_they_leave_unset(configure, functions, vault):
    vault.put("partner-api-key", API_KEY)
    vault.put("SCHEDULER-CLIENT-ID", "a-client-id-the-scheduler-does-not-know")
    await configure_api_key_from_vault(
        configure, vault, SCHEDULER_CLIENT_ID=CLIENT_ID, KEYVAULT_API_KEY_SECRET="partner-api-key"
    )
    assert (await functions.call_tool("listConversations", {})).status == 200
    assert vault.counters()["by_secret"] == {"partner-api-key": 1}


async def test_managed_identity_shares_one_credential_with_the_vault(configure, functions, stack, vault):
    await configure(**vault.settings())  # managed identity: KEYVAULT_URI is set but no API key is needed
    assert (await functions.call_tool("listConversations", {})).status == 200
    assert vault.counters()["requests"] == 0
    bridge = await get_bridge()
    assert bridge.secrets is None


async def test_a_missing_secret_names_the_setting_and_a_failing_vault_is_503(configure, functions, vault):
    vault.put("SCHEDULER-CLIENT-ID", CLIENT_ID)
    await configure_api_key_from_vault(configure, vault)
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert reply.json["type"].endswith(":misconfigured")
    assert [entry["name"] for entry in reply.json["settings"]] == ["KEYVAULT_API_KEY_SECRET"]
    assert "404" in reply.json["settings"][0]["problem"]

    vault.put("SCHEDULER-API-KEY", API_KEY)
    vault.control("POST", "/_devstack/config", {"fail_status": 503})
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 503
    assert reply.json["type"].endswith(":keyvault-unavailable")
    assert reply.headers["Retry-After"] == "5"

    vault.control("POST", "/_devstack/config", {"fail_status": None})
    assert (await functions.call_tool("listConversations", {})).status == 200, (
        "the bridge is built once it can be"
    )


async def test_use_azure_services_false_turns_the_vault_and_managed_identity_off(configure, functions, vault):
    vault.put("SCHEDULER-CLIENT-ID", CLIENT_ID)
    vault.put("SCHEDULER-API-KEY", API_KEY)
    await configure_api_key_from_vault(configure, vault, USE_AZURE_SERVICES="false")
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert reply.json["settings"][0]["name"] == "SCHEDULER_CLIENT_ID"
    assert "USE_AZURE_SERVICES=false" in reply.json["settings"][0]["problem"]
    assert vault.counters()["requests"] == 0

    await configure(USE_AZURE_SERVICES="false")  # managed identity is the default auth mode
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert [entry["name"] for entry in reply.json["settings"]] == ["USE_AZURE_SERVICES"]


# -- rotation ------------------------------------------------------------------------------------

OLD_KEY = "old-api-key-rotated-away-0001"
NEW_KEY = "new-api-key-after-rotation-0002"


@pytest.fixture
def rotated_scheduler(stack):
    """A Scheduler that already accepts only the new key (the devstack regions' key is fixed)."""
    process = start_scheduler(
        port=free_port(),
        region="rotated",
        log_dir=stack.log_dir,
        signing_key=SIGNING_KEY,
        client_id=CLIENT_ID,
        api_key=NEW_KEY,
    )
    try:
        yield process
    finally:
        process.stop()


async def test_a_rotated_key_is_reread_once_on_401_and_the_call_succeeds(
    configure, functions, vault, rotated_scheduler, captured_logs
):
    vault.put("SCHEDULER-CLIENT-ID", CLIENT_ID)
    vault.put("SCHEDULER-API-KEY", OLD_KEY)
    await configure_api_key_from_vault(configure, vault, endpoints=[rotated_scheduler.mcp_url])
    bridge = await get_bridge()  # created with the old key
    assert bridge.secrets.credentials() == (CLIENT_ID, OLD_KEY)
    vault.put("SCHEDULER-API-KEY", NEW_KEY)

    first = await functions.call_tool("listConversations", {})

    assert first.status == 200
    assert control(rotated_scheduler.url)["unauthorized"] == 1, "one 401 with the old key, then the resend"
    assert vault.counters()["by_secret"]["SCHEDULER-API-KEY"] == 2
    assert bridge.secrets.rereads == 1
    assert bridge.secrets.credentials() == (CLIENT_ID, NEW_KEY)

    # Another 401 within the minute: no second re-read, no resend, and the caller gets the 401's 502.
    vault.put("SCHEDULER-API-KEY", "yet-another-key-0003")
    control(rotated_scheduler.url, "POST", "/_devstack/faults", {"status": 401, "times": 1})
    second = await functions.call_tool("listConversations", {})
    assert second.status == 502
    assert vault.counters()["by_secret"]["SCHEDULER-API-KEY"] == 2
    assert bridge.secrets.rereads == 1
    assert "not re-reading Key Vault" in captured_logs.text

    everything = captured_logs.text + first.body.decode() + second.body.decode() + str(second.headers)
    for secret in (OLD_KEY, NEW_KEY, "yet-another-key-0003"):
        assert secret not in everything


async def test_rereads_are_single_flight_and_at_most_once_per_interval(stack, vault, monkeypatch):
    from azure.identity.aio import ManagedIdentityCredential

    from mcp_bridge.azure_services.http_client import azure_http_client
    from mcp_bridge.azure_services.transport import Httpx2Transport

    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    credential = ManagedIdentityCredential(transport=Httpx2Transport(azure_http_client(), owns_client=True))
    now = [1000.0]
    vault.put("key", "k1")
    secrets = SchedulerSecrets(
        VaultReader(credential, ca_file=vault.ca_file),
        vault.url,
        client_id=CLIENT_ID,
        api_key=VaultValue("key", "KEYVAULT_API_KEY_SECRET"),
        clock=lambda: now[0],
    )
    try:
        await secrets.load()
        assert secrets.credentials() == (CLIENT_ID, "k1")
        vault.put("key", "k2")
        answers = await asyncio.gather(*(secrets.refresh_after_unauthorized() for _ in range(25)))
        assert answers == [True] * 25, "every waiter learns the key changed"
        assert vault.counters()["by_secret"]["key"] == 2, "one read for 25 concurrent 401s"

        vault.put("key", "k3")
        now[0] += 59
        assert await secrets.refresh_after_unauthorized() is False
        assert secrets.credentials()[1] == "k2"
        now[0] += 2
        assert await secrets.refresh_after_unauthorized() is True
        assert secrets.credentials()[1] == "k3"
        now[0] += 61
        assert await secrets.refresh_after_unauthorized() is False, "re-read, but nothing changed"
        assert vault.counters()["by_secret"]["key"] == 4
    finally:
        await secrets.aclose()
        await credential.close()


# -- Key Vault references in app settings ---------------------------------------------------------


async def test_references_in_both_forms_are_resolved_once(configure, functions, stack, vault):
    pinned = vault.put("ref-api-key", API_KEY)
    vault.put("ref-api-key", "a-later-version-the-scheduler-does-not-accept")
    vault.put("ref-client-id", CLIENT_ID)
    vault.put("ref-endpoints", f"{stack.west.mcp_url},{stack.east.mcp_url}")
    await configure(
        auth="api_key",
        endpoints=[reference(vault, "ref-endpoints").replace("/)", ")")],
        SCHEDULER_CLIENT_ID=reference(vault, "ref-client-id"),
        SCHEDULER_API_KEY=f"@Microsoft.KeyVault(VaultName=devstack-kv;SecretName=ref-api-key;SecretVersion={pinned})",
        KEYVAULT_URL_TEMPLATE=vault.url,  # VaultName=devstack-kv lives on 127.0.0.1
        KEYVAULT_CA_FILE=vault.ca_file,
    )
    assert vault.counters()["requests"] == 0

    replies = await asyncio.gather(*(functions.call_tool("listConversations", {}) for _ in range(10)))

    assert {reply.status for reply in replies} == {200}
    assert {reply.json["endpoint"] for reply in replies} == {stack.west.mcp_url}, "the resolved list's order"
    assert vault.counters()["by_secret"] == {"ref-api-key": 1, "ref-client-id": 1, "ref-endpoints": 1}
    settings = load_settings()
    assert settings.scheduler_api_key.get_secret_value() == API_KEY, "the pinned version"
    assert settings.scheduler_endpoints == [stack.west.mcp_url, stack.east.mcp_url]
    assert API_KEY not in repr(settings)


async def test_an_unresolvable_reference_names_the_setting_never_the_value(
    configure, functions, vault, monkeypatch, captured_logs
):
    monkeypatch.setattr(settings_loader, "FAILURE_MEMORY_SECONDS", 0.3)
    vault.put("ref-client-id", CLIENT_ID)
    missing = reference(vault, "not-there-yet")
    await configure(
        auth="api_key",
        SCHEDULER_CLIENT_ID=reference(vault, "ref-client-id"),
        SCHEDULER_API_KEY=missing,
        KEYVAULT_CA_FILE=vault.ca_file,
    )
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert reply.json["type"].endswith(":misconfigured")
    assert reply.json["settings"] == [
        {"name": "SCHEDULER_API_KEY", "problem": "its Key Vault reference could not be resolved: "
         "the vault has no such secret (404)"}
    ]  # fmt: skip
    for leaked in (missing, "not-there-yet", vault.url):
        assert leaked not in reply.body.decode()

    requests = vault.counters()["requests"]
    assert (await functions.call_tool("listConversations", {})).status == 500
    assert vault.counters()["requests"] == requests, "a failure is remembered for a moment"

    vault.put("not-there-yet", API_KEY)
    await asyncio.sleep(0.35)
    assert (await functions.call_tool("listConversations", {})).status == 200, "and then tried again"
    assert API_KEY not in captured_logs.text


@pytest.mark.parametrize(
    ("setting", "value", "status", "slug"),
    [
        ("SCHEDULER_API_KEY", "@Microsoft.KeyVault(SecretName=only-half)", 500, "misconfigured"),
        ("SCHEDULER_API_KEY", "@Microsoft.KeyVault(SecretUri=http://plain.example/secrets/x)", 500,
         "misconfigured"),
        ("KEYVAULT_CA_FILE", "@Microsoft.KeyVault(VaultName=kv-one;SecretName=ca)", 500, "misconfigured"),
        ("SCHEDULER_API_KEY", "@Microsoft.KeyVault(SecretUri=https://127.0.0.1:{free}/secrets/x)", 503,
         "keyvault-unavailable"),
    ],
)  # fmt: skip
async def test_broken_references_fail_cleanly(configure, functions, setting, value, status, slug):
    value = value.replace("{free}", str(free_port()))
    await configure(auth="api_key", **{setting: value})
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == status
    assert reply.json["type"].endswith(f":{slug}")
    assert [entry["name"] for entry in reply.json["settings"]] == [setting]
    assert value not in reply.body.decode()
    if status == 503:
        assert "Retry-After" in reply.headers


async def test_references_are_refused_when_azure_services_are_off(configure, functions, vault):
    await configure(auth="api_key", USE_AZURE_SERVICES="false", SCHEDULER_API_KEY=reference(vault, "k"))
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert reply.json["settings"][0]["name"] == "SCHEDULER_API_KEY"
    assert "USE_AZURE_SERVICES=false" in reply.json["settings"][0]["problem"]
    assert vault.counters()["requests"] == 0


async def test_a_resolved_value_is_not_quoted_by_a_validation_error(configure, functions, vault):
    vault.put("bad-endpoints", "ftp://secret-looking-host.example/mcp")
    await configure(endpoints=[reference(vault, "bad-endpoints")], KEYVAULT_CA_FILE=vault.ca_file)
    reply = await functions.call_tool("listConversations", {})
    assert reply.status == 500
    assert reply.json["settings"][0]["name"] == "SCHEDULER_ENDPOINTS"
    assert "secret-looking-host" not in reply.body.decode()


# -- no secret in logs or responses ---------------------------------------------------------------


async def test_vault_values_and_tokens_stay_out_of_logs_responses_and_the_vault_log(
    configure, functions, stack, vault, captured_logs
):
    captured_logs.set_level(logging.DEBUG)
    vault.put("SCHEDULER-CLIENT-ID", CLIENT_ID)
    vault.put("SCHEDULER-API-KEY", API_KEY)
    vault.put("ref-key", API_KEY)
    await configure_api_key_from_vault(configure, vault)
    replies = [await functions.call_tool("listConversations", {})]
    control(
        stack.east.url,
        "POST",
        "/_devstack/faults",
        {"status": 401, "times": 1, "tools": ["listConversations"]},
    )
    replies.append(await functions.call_tool("listConversations", {}))
    await configure(
        auth="api_key", SCHEDULER_API_KEY=reference(vault, "ref-key"), KEYVAULT_CA_FILE=vault.ca_file
    )
    replies.append(await functions.call_tool("listConversations", {}))
    assert [reply.status for reply in replies] == [200, 502, 200]

    assert "Read secret SCHEDULER-API-KEY" in captured_logs.text, "the logs were really captured"
    assert "azure.core.pipeline.policies.http_logging_policy" in {r.name for r in captured_logs.records}
    assert identity_requests(stack) >= 1
    everything = captured_logs.text + "".join(reply.body.decode() + str(reply.headers) for reply in replies)
    assert API_KEY not in everything
    assert "Bearer ey" not in everything
    vault_log = (stack.log_dir / "keyvault.log").read_text()
    assert "read secret SCHEDULER-API-KEY" in vault_log
    assert API_KEY not in vault_log and "eyJ" not in vault_log


# -- reference syntax -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "vault_url", "name", "version"),
    [
        ("@Microsoft.KeyVault(SecretUri=https://kv-one.vault.azure.net/secrets/API-KEY/)",
         "https://kv-one.vault.azure.net", "API-KEY", None),
        ("  @microsoft.keyvault(secreturi=https://kv-one.vault.azure.net/secrets/API-KEY/0123abcd)  ",
         "https://kv-one.vault.azure.net", "API-KEY", "0123abcd"),
        ("@Microsoft.KeyVault(VaultName=kv-one;SecretName=API-KEY)",
         "https://kv-one.vault.azure.cn", "API-KEY", None),
        ("@Microsoft.KeyVault(SecretName=API-KEY; VaultName=kv-one; SecretVersion=0123abcd)",
         "https://kv-one.vault.azure.cn", "API-KEY", "0123abcd"),
    ],
)  # fmt: skip
def test_both_reference_forms_parse(text, vault_url, name, version):
    from mcp_bridge.config.keyvault_reference import is_reference, parse_reference

    assert is_reference(text)
    parsed = parse_reference(text)
    assert parsed.resolve_vault_url("https://{name}.vault.azure.cn") == vault_url
    assert (parsed.secret_name, parsed.version) == (name, version)


@pytest.mark.parametrize(
    "text",
    [
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k/v",  # no closing parenthesis
        "@Microsoft.KeyVault()",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/keys/k)",
        "@Microsoft.KeyVault(SecretUri=https://user:pw@kv.vault.azure.net/secrets/k)",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k?x=1)",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k;VaultName=kv)",
        "@Microsoft.KeyVault(VaultName=kv one;SecretName=k)",
        "@Microsoft.KeyVault(VaultName=kv-one;SecretName=bad_name)",
        "@Microsoft.KeyVault(VaultName=kv-one;SecretName=k;Color=blue)",
    ],
)
def test_malformed_references_are_refused_without_quoting_them(text):
    from mcp_bridge.config.keyvault_reference import parse_reference

    with pytest.raises(ValueError) as caught:
        parse_reference(text)
    assert "pw@" not in str(caught.value) and "kv one" not in str(caught.value)
    assert "blue" not in str(caught.value) and "bad_name" not in str(caught.value)
