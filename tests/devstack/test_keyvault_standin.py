"""devstack.keyvault: HTTPS with a generated CA, Key Vault's challenge, secret versions, counters."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx2
import pytest
from azure.keyvault.secrets._shared.http_challenge import HttpChallenge

from devstack.keyvault import VAULT_RESOURCE
from devstack.processes import KeyVaultProcess, free_port, start_keyvault
from devstack.tokens import DEVSTACK_TENANT_ID, mint_access_token
from tests.devstack.conftest import SIGNING_KEY

API_VERSION = {"api-version": "7.6"}


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVaultProcess]:
    log_dir = tmp_path_factory.mktemp("keyvault")
    process = start_keyvault(
        port=free_port(), log_dir=log_dir, signing_key=SIGNING_KEY, tls_dir=log_dir / "tls"
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(vault: KeyVaultProcess) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=vault.url, verify=ssl.create_default_context(cafile=str(vault.ca_file)), timeout=5
    ) as client:
        client.delete("/_devstack/secrets").raise_for_status()
        client.post("/_devstack/reset").raise_for_status()
        yield client


def bearer(audience: str = VAULT_RESOURCE) -> dict[str, str]:
    token, _ = mint_access_token(
        SIGNING_KEY, audience=audience, client_id="c", object_id="o", lifetime_seconds=60
    )
    return {"Authorization": f"Bearer {token}"}


def test_tls_is_real_and_only_the_generated_ca_is_trusted(vault: KeyVaultProcess) -> None:
    assert vault.url.startswith("https://127.0.0.1:")
    with httpx2.Client(timeout=5) as untrusting, pytest.raises(httpx2.ConnectError):
        untrusting.get(vault.url + "/_devstack/counters")


def test_no_token_gets_the_challenge_the_sdk_parses(client: httpx2.Client) -> None:
    response = client.get("/secrets/anything", params=API_VERSION)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"
    challenge = HttpChallenge(str(response.url), response.headers["www-authenticate"])
    assert challenge.is_bearer_challenge()
    assert challenge.get_resource() == "https://vault.azure.net"
    assert challenge.tenant_id == DEVSTACK_TENANT_ID
    assert challenge.get_authorization_server().startswith("https://login.microsoftonline.com/")


def test_a_token_for_another_audience_is_refused(client: httpx2.Client) -> None:
    response = client.get("/secrets/anything", params=API_VERSION, headers=bearer("api://scheduler-devstack"))
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


def test_versions_latest_and_pinned_and_the_control_api_never_echoes_values(
    vault: KeyVaultProcess, client: httpx2.Client
) -> None:
    first = client.put("/_devstack/secrets/API-KEY", json={"value": "first-value"}).json()
    second = client.put("/_devstack/secrets/API-KEY", json={"value": "second-value"}).json()
    assert "value" not in first and "second-value" not in str(second)

    latest = client.get("/secrets/api-key/", params=API_VERSION, headers=bearer()).json()
    assert latest["value"] == "second-value"
    assert latest["id"] == f"{vault.url}/secrets/api-key/{second['version']}"
    assert latest["attributes"]["enabled"] is True
    pinned = client.get(f"/secrets/API-KEY/{first['version']}", params=API_VERSION, headers=bearer()).json()
    assert pinned["value"] == "first-value"

    missing = client.get("/secrets/nope", params=API_VERSION, headers=bearer())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SecretNotFound"
    assert client.get("/secrets/API-KEY", headers=bearer()).status_code == 400, "api-version is required"

    counters = client.get("/_devstack/counters").json()
    assert counters["reads"] == 2 and counters["not_found"] == 1
    assert counters["by_secret"] == {"api-key": 1, "API-KEY": 1}


def test_disabled_secret_and_configured_failure(client: httpx2.Client) -> None:
    client.put("/_devstack/secrets/off", json={"value": "v", "enabled": False})
    assert client.get("/secrets/off", params=API_VERSION, headers=bearer()).status_code == 403
    client.post("/_devstack/config", json={"fail_status": 503})
    try:
        assert client.get("/secrets/off", params=API_VERSION, headers=bearer()).status_code == 503
    finally:
        client.post("/_devstack/config", json={"fail_status": None})


def test_restart_keeps_the_certificate(vault: KeyVaultProcess, client: httpx2.Client) -> None:
    ca_before = vault.ca_file.read_bytes()
    vault.restart()
    assert vault.ca_file.read_bytes() == ca_before
    assert client.get("/_devstack/counters").status_code == 200
