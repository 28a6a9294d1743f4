"""Authentication in front of the Scheduler's MCP endpoint, as the real service enforces it.

Two credentials are accepted: an Entra-style bearer token for the Scheduler's
audience (what a managed identity obtains), or the client-id/API-key header
pair issued to partners. Anything else gets 401 with `WWW-Authenticate:
Bearer`. This is pure ASGI middleware so it never buffers or wraps a
streaming (SSE) response: it either refuses up front or passes the call on
untouched.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

import jwt
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_observer import is_mcp_path
from devstack.tokens import verify_access_token

_LOGGER = logging.getLogger(__name__)

_REALM = "scheduler-devstack"


@dataclass(frozen=True)
class SchedulerCredentials:
    """What a caller must present: a token for `audience` signed with `signing_key`, or the header pair."""

    audience: str
    signing_key: str
    client_id: str
    api_key: str


@dataclass(frozen=True)
class AuthDecision:
    """Who got in (`principal`), or why not (`error`, an OAuth error code, plus a safe description)."""

    principal: str | None
    error: str | None = None
    description: str | None = None


def authenticate(headers: Headers, credentials: SchedulerCredentials) -> AuthDecision:
    """Accept a valid bearer token or a matching client-id/API-key pair; anything else is refused."""
    authorization = headers.get("authorization")
    bearer_failure: AuthDecision | None = None
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                claims = verify_access_token(
                    token.strip(), credentials.signing_key, audience=credentials.audience
                )
            except jwt.ExpiredSignatureError:
                bearer_failure = AuthDecision(None, "invalid_token", "The access token expired")
            except jwt.InvalidAudienceError:
                bearer_failure = AuthDecision(
                    None, "invalid_token", "The access token is for another audience"
                )
            except jwt.InvalidTokenError:
                bearer_failure = AuthDecision(None, "invalid_token", "The access token is not valid")
            else:
                return AuthDecision(principal=f"token:{claims.get('appid') or claims.get('sub')}")
        else:
            bearer_failure = AuthDecision(None, "invalid_request", "Authorization must use the Bearer scheme")

    client_id = headers.get("x-client-id")
    api_key = headers.get("x-api-key")
    if client_id is not None and api_key is not None:
        id_ok = hmac.compare_digest(client_id.encode(), credentials.client_id.encode())
        key_ok = hmac.compare_digest(api_key.encode(), credentials.api_key.encode())
        if id_ok and key_ok:
            return AuthDecision(principal=f"client:{client_id}")
        return AuthDecision(None, "invalid_client", "Unknown client id or API key")
    if bearer_failure is not None:
        return bearer_failure
    return AuthDecision(None, None, "Authentication required")


class SchedulerAuthMiddleware:
    """Refuses unauthenticated requests to the MCP path with 401; other paths pass untouched."""

    def __init__(
        self, app: ASGIApp, *, credentials: SchedulerCredentials, counters: SchedulerCounters, mcp_path: str
    ) -> None:
        self._app = app
        self._credentials = credentials
        self._counters = counters
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_mcp_path(scope, self._mcp_path):
            await self._app(scope, receive, send)
            return
        decision = authenticate(Headers(scope=scope), self._credentials)
        if decision.principal is not None:
            await self._app(scope, receive, send)
            return
        self._counters.unauthorized += 1
        _LOGGER.info("refused %s %s: %s", scope["method"], scope["path"], decision.description)
        await _send_unauthorized(send, decision)


async def _send_unauthorized(send: Send, decision: AuthDecision) -> None:
    challenge = f'Bearer realm="{_REALM}"'
    body: dict[str, str] = {"error": decision.error or "unauthorized"}
    if decision.error:
        challenge += f', error="{decision.error}"'
    if decision.description:
        challenge += f', error_description="{decision.description}"'
        body["error_description"] = decision.description
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
