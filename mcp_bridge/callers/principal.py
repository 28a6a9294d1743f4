"""The caller of one request: a principal App Service Authentication vouches for, or "key".

App Service Authentication (Easy Auth) validates the caller's token in front of the app and hands
the app what it found, in request headers:

- `X-MS-CLIENT-PRINCIPAL`: base64 of the JSON `{"auth_typ", "claims": [{"typ", "val"}],
  "name_typ", "role_typ"}`;
- `X-MS-CLIENT-PRINCIPAL-ID`, `-NAME` and `-IDP`: the caller's id, name and identity provider.

The platform strips these headers from outside requests and sets `WEBSITE_AUTH_ENABLED=True` for
the app. Only then are they the platform's word. Without it anyone can send them, so they are
ignored, never trusted, and one warning per instance says so.

A principal's roles are the values of its claims typed `role_typ`, and of those typed `roles`:
Entra ID's app roles arrive as `roles` although `role_typ` names the long ClaimTypes.Role URI
(Azure/azure-functions-host#3898, Azure/static-web-apps#655).

While the platform vouches, a principal that cannot be read (bad base64, not JSON, the wrong
shape, over `MAX_PRINCIPAL_CHARS`, no id) is refused with `401 invalid-principal`. The platform
wrote it, so something between it and the app is wrong. Reading such a request as a key caller
would let a request whose identity nobody knows act with the key's roles, and sign the audit trail
"key". The header's content never reaches a log line or a response.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..problems import InvalidPrincipal

_LOGGER = logging.getLogger(__name__)

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
PRINCIPAL_IDP_HEADER = "x-ms-client-principal-idp"
PRINCIPAL_HEADERS = (PRINCIPAL_HEADER, PRINCIPAL_ID_HEADER, PRINCIPAL_NAME_HEADER, PRINCIPAL_IDP_HEADER)

MAX_PRINCIPAL_CHARS = 64 * 1024
"""Room for a token with 200 group claims (Entra ID's limit before it sends an overage claim)."""
MAX_CLAIMS = 1000
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 256
ROLES_CLAIM = "roles"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
NAME_IDENTIFIER_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request. A key caller is known only by the function key it held (not which one)."""

    kind: Literal["principal", "key"]
    roles: frozenset[str]
    id: str | None = None
    name: str | None = None
    identity_provider: str | None = None

    @property
    def is_principal(self) -> bool:
        return self.kind == "principal"


class _Claim(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    typ: str = Field(max_length=1024)
    val: str | int | float | bool | None = None


class _ClientPrincipal(BaseModel):
    """The decoded `X-MS-CLIENT-PRINCIPAL`, as App Service documents it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    auth_typ: str | None = Field(default=None, max_length=256)
    claims: tuple[_Claim, ...] = Field(default=(), max_length=MAX_CLAIMS)
    name_typ: str | None = Field(default=None, max_length=1024)
    role_typ: str | None = Field(default=None, max_length=1024)

    def values(self, *types: str | None) -> list[str]:
        wanted = {t for t in types if t}
        return [c.val for c in self.claims if c.typ in wanted and isinstance(c.val, str) and c.val]


_warned_untrusted = False


def read_caller(headers: Mapping[str, str], *, trusted: bool, key_roles: frozenset[str]) -> Caller:
    """The request's caller. `headers` must look names up case-insensitively (`func.HttpRequest`'s
    do); `trusted` is `WEBSITE_AUTH_ENABLED`; a key caller holds `key_roles`.

    Raises `InvalidPrincipal` (401) when the platform vouches for a principal that cannot be read."""
    global _warned_untrusted
    if not any(name in headers for name in PRINCIPAL_HEADERS):  # `in`: a miss raises no KeyError
        return Caller("key", key_roles)
    if not trusted:
        if not _warned_untrusted:
            _warned_untrusted = True
            _LOGGER.warning(
                "A request carried X-MS-CLIENT-PRINCIPAL headers, but App Service Authentication is "
                "not on (WEBSITE_AUTH_ENABLED is not True): anyone can send them, so they are ignored "
                "and the request is a key caller. Shown once per instance."
            )
        return Caller("key", key_roles)
    blob = headers.get(PRINCIPAL_HEADER)
    if blob is None:
        raise InvalidPrincipal("X-MS-CLIENT-PRINCIPAL is missing while other principal headers are set")
    principal = _decode(blob)
    caller_id = headers.get(PRINCIPAL_ID_HEADER) or next(
        iter(principal.values(OBJECT_ID_CLAIM, NAME_IDENTIFIER_CLAIM)), None
    )
    if not caller_id or len(caller_id) > MAX_ID_LENGTH:
        raise InvalidPrincipal("the principal has no usable id")
    name = headers.get(PRINCIPAL_NAME_HEADER) or next(iter(principal.values(principal.name_typ)), None)
    return Caller(
        "principal",
        frozenset(principal.values(principal.role_typ, ROLES_CLAIM)),
        id=caller_id,
        name=name[:MAX_NAME_LENGTH] if name else None,
        identity_provider=(headers.get(PRINCIPAL_IDP_HEADER) or principal.auth_typ or None),
    )


@lru_cache(maxsize=64)  # a caller's principal is the same on every call until its token is renewed
def _decode(blob: str) -> _ClientPrincipal:
    if len(blob) > MAX_PRINCIPAL_CHARS:
        raise InvalidPrincipal(f"X-MS-CLIENT-PRINCIPAL is longer than {MAX_PRINCIPAL_CHARS} characters")
    try:
        raw = base64.b64decode(blob.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPrincipal("X-MS-CLIENT-PRINCIPAL is not base64") from None
    try:
        return _ClientPrincipal.model_validate_json(raw)
    except ValidationError as exc:
        kinds = sorted({error["type"] for error in exc.errors(include_input=False, include_url=False)})
        raise InvalidPrincipal(
            "X-MS-CLIENT-PRINCIPAL is not the JSON App Service sends (" + ", ".join(kinds)[:200] + ")"
        ) from None


def reset_warnings() -> None:
    """Warn again about untrusted principal headers (tests)."""
    global _warned_untrusted
    _warned_untrusted = False
