"""The managed-identity stand-in speaks App Service's protocol; proven with azure-identity itself."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from devstack.tokens import verify_access_token
from tests.devstack.conftest import AUDIENCE, IDENTITY_HEADER, SIGNING_KEY

SCOPE = f"{AUDIENCE}/.default"
TOKEN_QUERY = {"api-version": "2019-08-01", "resource": AUDIENCE}


@pytest.fixture
async def identity(identity_url: str) -> str:
    async with httpx2.AsyncClient(base_url=identity_url) as control:
        await control.post("/_devstack/reset")
        await control.post(
            "/_devstack/config",
            json={"lifetime_seconds": 3600, "fail": False, "fail_status": 500, "delay_seconds": 0},
        )
    return identity_url


async def request_token(identity: str, *, headers: dict[str, str], **query: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=identity) as http:
        return await http.get("/msi/token", params={**TOKEN_QUERY, **query}, headers=headers)


async def test_token_response_has_the_app_service_shape(identity: str) -> None:
    before = int(time.time())
    response = await request_token(identity, headers={"X-IDENTITY-HEADER": IDENTITY_HEADER})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str)  # epoch seconds as a string, as App Service sends it
    assert before + 3600 <= int(body["expires_on"]) <= int(time.time()) + 3600
    assert (body["resource"], body["token_type"]) == (AUDIENCE, "Bearer")
    claims = verify_access_token(body["access_token"], SIGNING_KEY, audience=AUDIENCE)
    assert claims["appid"] == body["client_id"]
    assert {"oid", "iat", "exp", "tid"} <= set(claims)


async def test_user_assigned_identity_by_client_id(identity: str) -> None:
    response = await request_token(
        identity, headers={"X-IDENTITY-HEADER": IDENTITY_HEADER}, client_id="abc-123"
    )

    assert response.json()["client_id"] == "abc-123"
    assert (
        verify_access_token(response.json()["access_token"], SIGNING_KEY, audience=AUDIENCE)["appid"]
        == "abc-123"
    )


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        pytest.param({}, {}, 400, id="missing-header"),
        pytest.param({"X-IDENTITY-HEADER": "wrong"}, {}, 401, id="wrong-header"),
        pytest.param(
            {"X-IDENTITY-HEADER": IDENTITY_HEADER}, {"api-version": "2018-02-01"}, 400, id="api-version"
        ),
        pytest.param({"X-IDENTITY-HEADER": IDENTITY_HEADER}, {"resource": ""}, 400, id="no-resource"),
    ],
)
async def test_refusals_look_like_app_service(
    identity: str, headers: dict[str, str], query: dict[str, str], status: int
) -> None:
    response = await request_token(identity, headers=headers, **query)

    assert response.status_code == status
    assert set(response.json()) >= {"statusCode", "message"}


async def test_configured_failure_lifetime_and_counters(identity: str) -> None:
    async with httpx2.AsyncClient(base_url=identity) as control:
        await control.post("/_devstack/config", json={"fail": True, "fail_status": 503})
        failed = await request_token(identity, headers={"X-IDENTITY-HEADER": IDENTITY_HEADER})
        await control.post("/_devstack/config", json={"fail": False, "lifetime_seconds": 5})
        short = await request_token(identity, headers={"X-IDENTITY-HEADER": IDENTITY_HEADER})
        snapshot = (await control.get("/_devstack/counters")).json()
        invalid = await control.post("/_devstack/config", json={"lifetime_seconds": 0})

    assert failed.status_code == 503
    assert int(short.json()["expires_on"]) - time.time() <= 5
    assert snapshot["token_requests"] == 2
    assert snapshot["tokens_issued"] == 1
    assert invalid.status_code == 400


async def test_real_azure_identity_credential_gets_a_token(
    identity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync credential (azure-identity over MSAL) sends the same App Service request as the aio one."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{identity}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)

    token = await asyncio.to_thread(lambda: ManagedIdentityCredential().get_token_info(SCOPE))

    assert verify_access_token(token.token, SIGNING_KEY, audience=AUDIENCE)["aud"] == AUDIENCE
    assert token.expires_on > time.time() + 3000

    monkeypatch.setenv("IDENTITY_HEADER", "wrong-secret")
    with pytest.raises(ClientAuthenticationError):
        await asyncio.to_thread(lambda: ManagedIdentityCredential().get_token_info(SCOPE))
