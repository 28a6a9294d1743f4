"""The devstack host playing App Service Authentication: tokens validated, principal headers stripped
and injected as App Service does, 401 for unauthenticated calls; and the identity endpoint's caller
tokens. A real FunctionApp in the in-process host, on a real loopback socket."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import azure.functions as func
import httpx2
import pytest

from devstack.easyauth import (
    DEFAULT_AUDIENCE,
    ROLE_CLAIM_TYPE,
    EasyAuth,
    caller_object_id,
    mint_caller_token,
)
from devstack.host import build_host_app
from devstack.identity import IdentityConfig
from devstack.identity import build_app as build_identity_app
from devstack.run import DevstackPlan, curl_examples
from tests.devstack.conftest import SIGNING_KEY, serving

FUNCTION_KEY = "easyauth-test-function-key"
KEY = {"x-functions-key": FUNCTION_KEY}
SPOOFED = {
    "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"claims":[{"typ":"roles","val":"Admin"}]}').decode(),
    "X-MS-CLIENT-PRINCIPAL-ID": "spoofed-id",
    "X-MS-CLIENT-PRINCIPAL-NAME": "spoofed-name",
    "X-MS-CLIENT-PRINCIPAL-IDP": "spoofed-idp",
    "X-MS-TOKEN-AAD-ACCESS-TOKEN": "spoofed-token",
}

invocations: list[dict[str, str]] = []


def whoami_app() -> func.FunctionApp:
    """A fresh app per host: a FunctionApp can be indexed only once."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="whoami", methods=["GET"])
    def whoami(req: func.HttpRequest) -> func.HttpResponse:
        seen = {name: value for name, value in req.headers.items() if name.startswith("x-ms-")}
        invocations.append(seen)
        return func.HttpResponse(json.dumps(seen), mimetype="application/json")

    return app


@pytest.fixture(scope="module")
async def hosts() -> AsyncIterator[dict[str, str]]:
    """One host per mode, sharing the app."""
    urls: dict[str, str] = {}
    async with (
        serving(_host("require")) as urls["require"],
        serving(_host("allow-anonymous")) as urls["allow-anonymous"],
        serving(build_identity_app(IdentityConfig(header_secret="h", signing_key=SIGNING_KEY))) as urls[
            "identity"
        ],
    ):
        yield urls


def _host(mode: str):
    easyauth = EasyAuth.from_environment({"DEVSTACK_EASYAUTH": mode, "DEVSTACK_SIGNING_KEY": SIGNING_KEY})
    return build_host_app(whoami_app(), function_key=FUNCTION_KEY, master_key="m", easyauth=easyauth)


async def whoami_via(url: str, headers: dict[str, str]) -> httpx2.Response:
    invocations.clear()
    async with httpx2.AsyncClient(base_url=url) as http:
        return await http.get("/api/whoami", headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **KEY}


def decoded(principal: str) -> dict:
    return json.loads(base64.b64decode(principal))


async def test_a_valid_token_becomes_the_headers_app_service_sets(hosts):
    token = mint_caller_token(SIGNING_KEY, name="status-dashboard", roles=["Scheduler.Read", "Extra"])
    response = await whoami_via(hosts["require"], {**bearer(token), **SPOOFED})

    assert response.status_code == 200
    seen = response.json()
    assert set(seen) == {
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-client-principal-idp",
    }, "the client's own x-ms-* headers, the token header included, are gone"
    oid = caller_object_id("status-dashboard")
    assert seen["x-ms-client-principal-id"] == oid
    assert seen["x-ms-client-principal-name"] == "status-dashboard"
    assert seen["x-ms-client-principal-idp"] == "aad"
    principal = decoded(seen["x-ms-client-principal"])
    assert set(principal) == {"auth_typ", "claims", "name_typ", "role_typ"}
    assert (principal["auth_typ"], principal["role_typ"]) == ("aad", ROLE_CLAIM_TYPE)
    claims = principal["claims"]
    assert all(set(c) == {"typ", "val"} and isinstance(c["val"], str) for c in claims)
    # App Service's mapping: oid under its long type; one claim per role, typed "roles".
    assert {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid} in claims
    assert sorted(c["val"] for c in claims if c["typ"] == "roles") == ["Extra", "Scheduler.Read"]
    assert {"typ": "aud", "val": DEFAULT_AUDIENCE} in claims


@pytest.mark.parametrize("mode", ["require", "allow-anonymous"])
@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            mint_caller_token("another-key-0123456789abcdef0123456789", name="x", roles=[]), id="signature"
        ),
        pytest.param(
            mint_caller_token(SIGNING_KEY, name="x", roles=[], audience="api://other"), id="audience"
        ),
        pytest.param(
            mint_caller_token(SIGNING_KEY, name="x", roles=[], now=time.time() - 7200), id="expired"
        ),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
async def test_an_invalid_token_is_refused_before_the_function_runs(hosts, mode, token):
    response = await whoami_via(hosts[mode], {**bearer(token), **SPOOFED})

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.content == b""
    assert invocations == []


async def test_require_refuses_unauthenticated_calls_even_with_a_spoofed_principal(hosts):
    response = await whoami_via(hosts["require"], {**KEY, **SPOOFED})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert invocations == []


async def test_allow_anonymous_lets_unauthenticated_calls_through_without_any_principal(hosts):
    response = await whoami_via(hosts["allow-anonymous"], {**KEY, **SPOOFED})

    assert response.status_code == 200
    assert response.json() == {}, "spoofed headers are stripped"


async def test_the_function_key_is_still_required_behind_easy_auth(hosts):
    token = mint_caller_token(SIGNING_KEY, name="x", roles=["Scheduler.Write"])
    response = await whoami_via(hosts["require"], {"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert invocations == []


async def test_the_identity_endpoint_issues_caller_tokens_the_host_accepts(hosts):
    async with httpx2.AsyncClient(base_url=hosts["identity"]) as identity:
        issued = await identity.get(
            "/_devstack/caller-token", params={"name": "booking-service", "roles": "Scheduler.Write,Other"}
        )
        refused = await identity.get("/_devstack/caller-token", params={"name": "no spaces allowed"})
        expired = await identity.get("/_devstack/caller-token", params={"name": "x", "lifetime_seconds": -60})

    assert issued.status_code == 200 and issued.headers["content-type"].startswith("text/plain")
    seen = (await whoami_via(hosts["require"], bearer(issued.text))).json()
    assert seen["x-ms-client-principal-id"] == caller_object_id("booking-service")
    roles = [c["val"] for c in decoded(seen["x-ms-client-principal"])["claims"] if c["typ"] == "roles"]
    assert roles == ["Scheduler.Write", "Other"]
    assert refused.status_code == 400
    assert (await whoami_via(hosts["require"], bearer(expired.text))).status_code == 401


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"DEVSTACK_EASYAUTH": "0"}, None),
        ({"DEVSTACK_EASYAUTH": "1"}, ("require", DEFAULT_AUDIENCE)),
        (
            {"DEVSTACK_EASYAUTH": "Allow-Anonymous", "DEVSTACK_EASYAUTH_AUDIENCE": "api://x"},
            ("allow-anonymous", "api://x"),
        ),
    ],
)
def test_the_mode_comes_from_devstack_easyauth(environ, expected):
    easyauth = EasyAuth.from_environment({**environ, "DEVSTACK_SIGNING_KEY": SIGNING_KEY})
    assert (None if easyauth is None else (easyauth.mode, easyauth.audience)) == expected


@pytest.mark.parametrize(
    "environ", [{"DEVSTACK_EASYAUTH": "maybe"}, {"DEVSTACK_EASYAUTH": "1", "DEVSTACK_SIGNING_KEY": ""}]
)
def test_an_unusable_easyauth_setting_is_an_error(environ):
    with pytest.raises(ValueError, match="DEVSTACK_EASYAUTH"):
        EasyAuth.from_environment({"DEVSTACK_SIGNING_KEY": SIGNING_KEY, **environ})


def test_make_run_prints_a_reader_and_a_writer_curl_only_with_easy_auth_on():
    plan = DevstackPlan(
        scheduler_ports=(1, 2), identity_port=5148, host_port=7071, audience="a", signing_key="s",
        identity_header="h", scheduler_client_id="c", scheduler_api_key="k", function_key="fk",
        master_key="mk", easyauth_audience=DEFAULT_AUDIENCE,
    )  # fmt: skip
    printed = "\n".join(curl_examples(plan))
    assert "caller-token?name=status-dashboard&roles=Scheduler.Read'" in printed
    assert "caller-token?name=booking-service&roles=Scheduler.Write'" in printed
    assert "caller-token" not in "\n".join(
        curl_examples(DevstackPlan(**{**vars(plan), "easyauth_audience": None}))
    )
