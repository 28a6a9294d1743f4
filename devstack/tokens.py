"""HS256 access tokens shared by the identity stand-in (which mints) and the Scheduler (which verifies).

Real Entra ID tokens are RS256 with published keys; the devstack uses one
shared HMAC key instead so both sides agree without a key server. The claims
are the ones a resource server actually checks (aud, exp) plus the identity
claims Entra puts in managed-identity tokens (oid, appid, tid), so code that
logs "who called" has something realistic to show.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

TOKEN_ALGORITHM = "HS256"
DEVSTACK_ISSUER = "https://devstack.local/identity/"
DEVSTACK_TENANT_ID = "00000000-0000-4000-8000-000000000001"


def mint_access_token(
    signing_key: str,
    *,
    audience: str,
    client_id: str,
    object_id: str,
    lifetime_seconds: int,
    now: float | None = None,
) -> tuple[str, int]:
    """Return (token, expires_on epoch seconds) for a managed identity calling `audience`."""
    issued_at = int(now if now is not None else time.time())
    expires_on = issued_at + lifetime_seconds
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": DEVSTACK_ISSUER,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires_on,
        "oid": object_id,
        "sub": object_id,
        "appid": client_id,
        "azp": client_id,
        "tid": DEVSTACK_TENANT_ID,
        "idtyp": "app",
        "uti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, signing_key, algorithm=TOKEN_ALGORITHM), expires_on


def verify_access_token(token: str, signing_key: str, *, audience: str) -> dict[str, Any]:
    """Return the token's claims, or raise `jwt.InvalidTokenError` (bad signature, audience, or expired)."""
    return jwt.decode(
        token,
        signing_key,
        algorithms=[TOKEN_ALGORITHM],
        audience=audience,
        options={"require": ["exp", "aud"]},
    )
