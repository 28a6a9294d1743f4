"""App Service Authentication ("Easy Auth") in front of the devstack host, and the callers' tokens.

    DEVSTACK_EASYAUTH=require            # every call needs a valid bearer token ("Return HTTP 401")
    DEVSTACK_EASYAUTH=allow-anonymous    # calls without a token go through ("Allow unauthenticated")
    DEVSTACK_EASYAUTH_AUDIENCE=api://scheduler-bridge-devstack   # the app's Application ID URI
    DEVSTACK_SIGNING_KEY=...             # the key the devstack identity endpoint signs with

For each call to a function, as App Service does it:

- every `X-MS-CLIENT-PRINCIPAL*` and `X-MS-TOKEN-*` header the client sent is removed;
- `Authorization: Bearer <token>` is validated (signature, audience, expiry, issuer); an invalid
  token is a 401, with or without `allow-anonymous`;
- no token: 401 under `require`; under `allow-anonymous` the call goes through with no principal;
- a valid token becomes `X-MS-CLIENT-PRINCIPAL` (base64 of `{"auth_typ", "claims", "name_typ",
  "role_typ"}`), `X-MS-CLIENT-PRINCIPAL-ID` (the object id), `-NAME` (the `name` claim, when
  there is one) and `-IDP` (`aad`).

Claims are mapped the way App Service maps Entra ID tokens: `oid`, `sub`, `tid` and `idp` become
their long claim-type URIs, an array becomes one claim per value, and app roles stay `roles`
although `role_typ` names the long role URI (the quirk a reader of the header must handle).

Tokens come from the devstack identity endpoint, `GET /_devstack/caller-token?name=&roles=`, for
a named calling identity: HS256 with the devstack key, where Entra ID would sign RS256. Entra ID's
app-only tokens carry no `name`; these do, so the devstack's audit lines are easy to read.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from starlette.responses import Response

from devstack.tokens import DEVSTACK_ISSUER, DEVSTACK_TENANT_ID, TOKEN_ALGORITHM

MODE_SETTING = "DEVSTACK_EASYAUTH"
AUDIENCE_SETTING = "DEVSTACK_EASYAUTH_AUDIENCE"
SIGNING_KEY_SETTING = "DEVSTACK_SIGNING_KEY"
DEFAULT_AUDIENCE = "api://scheduler-bridge-devstack"

NAME_CLAIM_TYPE = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
ROLE_CLAIM_TYPE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
_MAPPED_CLAIMS = {
    "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
    "idp": "http://schemas.microsoft.com/identity/claims/identityprovider",
}
_STRIPPED_PREFIXES = ("x-ms-client-principal", "x-ms-token-")

Mode = Literal["require", "allow-anonymous"]
_MODES: dict[str, Mode] = {
    "1": "require",
    "true": "require",
    "require": "require",
    "allow-anonymous": "allow-anonymous",
}


@dataclass(frozen=True)
class EasyAuth:
    """Easy Auth's settings for one host."""

    mode: Mode
    audience: str
    signing_key: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> EasyAuth | None:
        """None when `DEVSTACK_EASYAUTH` is unset, empty, `0` or `false`; ValueError when unusable."""
        value = environ.get(MODE_SETTING, "").strip().lower()
        if value in ("", "0", "false", "off"):
            return None
        if value not in _MODES:
            raise ValueError(f"{MODE_SETTING} must be require (or 1) or allow-anonymous")
        signing_key = environ.get(SIGNING_KEY_SETTING, "")
        if not signing_key:
            raise ValueError(f"{MODE_SETTING} needs {SIGNING_KEY_SETTING} to validate tokens")
        audience = environ.get(AUDIENCE_SETTING, "").strip() or DEFAULT_AUDIENCE
        return cls(_MODES[value], audience, signing_key)

    def authenticate(self, headers: Mapping[str, str]) -> dict[str, str] | Response:
        """The headers the app sees (lower-case names in, lower-case out), or the 401 to answer."""
        passed = {name: value for name, value in headers.items() if not name.startswith(_STRIPPED_PREFIXES)}
        scheme, _, token = passed.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if self.mode == "allow-anonymous":
                return passed
            return _unauthorized('Bearer realm="devstack"')
        try:
            claims = jwt.decode(
                token.strip(),
                self.signing_key,
                algorithms=[TOKEN_ALGORITHM],
                audience=self.audience,
                issuer=DEVSTACK_ISSUER,
                options={"require": ["exp", "aud", "iss", "oid"]},
            )
        except jwt.InvalidTokenError:
            return _unauthorized('Bearer realm="devstack", error="invalid_token"')
        passed.update(principal_headers(claims))
        return passed


def principal_headers(claims: Mapping[str, Any], *, identity_provider: str = "aad") -> dict[str, str]:
    """The `x-ms-client-principal*` headers App Service sets for a validated token's claims."""
    mapped = []
    for typ, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            mapped.append({"typ": _MAPPED_CLAIMS.get(typ, typ), "val": str(item)})
    principal = {
        "auth_typ": identity_provider,
        "claims": mapped,
        "name_typ": NAME_CLAIM_TYPE,
        "role_typ": ROLE_CLAIM_TYPE,
    }
    headers = {
        "x-ms-client-principal": base64.b64encode(json.dumps(principal).encode()).decode("ascii"),
        "x-ms-client-principal-id": str(claims["oid"]),
        "x-ms-client-principal-idp": identity_provider,
    }
    if claims.get("name"):
        headers["x-ms-client-principal-name"] = str(claims["name"])
    return headers


def caller_object_id(name: str) -> str:
    """A stable object id for a named calling identity, so its audit lines agree across runs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://devstack.local/callers/{name}"))


def mint_caller_token(
    signing_key: str,
    *,
    name: str,
    roles: list[str],
    audience: str = DEFAULT_AUDIENCE,
    lifetime_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """An access token for the calling identity `name` holding `roles`, as Entra ID issues one to a
    service's managed identity for an app whose app roles were assigned to it."""
    issued_at = int(now if now is not None else time.time())
    object_id = caller_object_id(name)
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": DEVSTACK_ISSUER,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime_seconds,
        "oid": object_id,
        "sub": object_id,
        "appid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://devstack.local/apps/{name}")),
        "tid": DEVSTACK_TENANT_ID,
        "idtyp": "app",
        "roles": roles,
        "name": name,
        "uti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    return jwt.encode(claims, signing_key, algorithm=TOKEN_ALGORITHM)


def _unauthorized(challenge: str) -> Response:
    return Response(status_code=401, headers={"www-authenticate": challenge})
