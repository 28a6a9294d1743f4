"""The App Service managed-identity endpoint, as azure-identity talks to it.

    python -m devstack.identity --port 5148 --header-secret SECRET --signing-key KEY [--lifetime-seconds 3600]

In App Service, `ManagedIdentityCredential` sees `IDENTITY_ENDPOINT` and
`IDENTITY_HEADER` and sends

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<scope minus /.default>[&client_id=...]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

(azure/identity/_credentials/app_service.py). The answer is JSON with
`access_token` and `expires_on` as epoch seconds *in a string*
(_internal/managed_identity_client.py parses it with int()). The tokens are
HS256 JWTs the devstack Scheduler verifies with the same signing key.

Control API (loopback only, no auth): `GET /_devstack/counters`,
`POST /_devstack/reset`, `POST /_devstack/config` with any of
`{"lifetime_seconds", "fail", "fail_status", "delay_seconds"}`.

`GET /_devstack/caller-token?name=NAME&roles=R1,R2[&resource=URI][&lifetime_seconds=N]` answers,
as text, a token for another service's identity calling the bridge: what that service's own
managed-identity endpoint would issue it once the bridge's app roles R1, R2 are assigned to it.
The devstack host validates it when App Service Authentication is on (devstack.easyauth).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import uuid
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devstack.easyauth import DEFAULT_AUDIENCE, mint_caller_token
from devstack.serving import configure_logging, serve
from devstack.tokens import mint_access_token

_LOGGER = logging.getLogger(__name__)

TOKEN_PATH = "/msi/token"
SUPPORTED_API_VERSION = "2019-08-01"
IDENTITY_HEADER_NAME = "x-identity-header"
DEFAULT_CLIENT_ID = "7e57c11e-0000-4000-8000-000000000001"
DEFAULT_OBJECT_ID = "0b1ec7d0-0000-4000-8000-000000000002"
_USER_ASSIGNED_SELECTORS = ("client_id", "object_id", "principal_id", "mi_res_id", "resource_id")


class IdentityBehaviour(BaseModel):
    """How the endpoint behaves right now; `POST /_devstack/config` changes any subset of it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    lifetime_seconds: int = Field(default=3600, ge=1, le=86_400)
    fail: bool = False
    fail_status: int = Field(default=500, ge=400, le=599)
    delay_seconds: float = Field(default=0.0, ge=0, le=600)


class CallerTokenQuery(BaseModel):
    """`GET /_devstack/caller-token`: which calling identity, with which of the bridge's app roles."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    roles: str = Field(default="", max_length=1024)
    resource: str = Field(default=DEFAULT_AUDIENCE, min_length=1, max_length=256)
    lifetime_seconds: int = Field(default=3600, ge=-86_400, le=86_400)  # negative: already expired


@dataclass(frozen=True)
class IdentityConfig:
    """The fixed part: the header secret callers must send and the key tokens are signed with."""

    header_secret: str
    signing_key: str
    lifetime_seconds: int = 3600
    client_id: str = DEFAULT_CLIENT_ID
    object_id: str = DEFAULT_OBJECT_ID


@dataclass
class IdentityCounters:
    """`token_requests` counts every request to the token path, refused or not."""

    token_requests: int = 0
    tokens_issued: int = 0
    last_resource: str | None = None
    by_resource: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, object]:
        return {
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "last_resource": self.last_resource,
            "by_resource": dict(self.by_resource),
        }


def build_app(config: IdentityConfig) -> Starlette:
    """The ASGI app serving `GET /msi/token` and the control API."""
    behaviour = IdentityBehaviour(lifetime_seconds=config.lifetime_seconds)
    counters = IdentityCounters()

    async def issue_token(request: Request) -> Response:
        counters.token_requests += 1
        if behaviour.delay_seconds:
            await asyncio.sleep(behaviour.delay_seconds)
        refusal = _refusal(request, config)
        if refusal is not None:
            return refusal
        resource = request.query_params["resource"]
        counters.last_resource = resource
        counters.by_resource[resource] = counters.by_resource.get(resource, 0) + 1
        if behaviour.fail:
            _LOGGER.warning("configured to fail: answering %d", behaviour.fail_status)
            return _error(behaviour.fail_status, "devstack identity endpoint configured to fail")
        client_id = request.query_params.get("client_id") or config.client_id
        object_id = request.query_params.get("object_id") or request.query_params.get("principal_id")
        token, expires_on = mint_access_token(
            config.signing_key,
            audience=resource,
            client_id=client_id,
            object_id=object_id or config.object_id,
            lifetime_seconds=behaviour.lifetime_seconds,
        )
        counters.tokens_issued += 1
        _LOGGER.info("issued token for %s (client %s, %ds)", resource, client_id, behaviour.lifetime_seconds)
        return JSONResponse(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id,
            }
        )

    async def issue_caller_token(request: Request) -> Response:
        try:
            query = CallerTokenQuery.model_validate(dict(request.query_params))
        except ValidationError as exc:
            return JSONResponse({"error": "invalid query", "details": exc.errors(include_context=False)}, 400)
        roles = [role.strip() for role in query.roles.split(",") if role.strip()]
        token = mint_caller_token(
            config.signing_key,
            name=query.name,
            roles=roles,
            audience=query.resource,
            lifetime_seconds=query.lifetime_seconds,
        )
        _LOGGER.info("issued a caller token for %s with roles %s", query.name, roles)
        return PlainTextResponse(token)

    async def read_counters(_request: Request) -> Response:
        return JSONResponse(counters.snapshot())

    async def reset(_request: Request) -> Response:
        counters.token_requests = 0
        counters.tokens_issued = 0
        counters.last_resource = None
        counters.by_resource.clear()
        return JSONResponse(counters.snapshot())

    async def configure(request: Request) -> Response:
        try:
            changes = IdentityBehaviour.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse(
                {"error": "invalid config", "details": exc.errors(include_context=False)}, 400
            )
        for name in changes.model_fields_set:
            setattr(behaviour, name, getattr(changes, name))
        _LOGGER.info("behaviour now %s", behaviour.model_dump())
        return JSONResponse(behaviour.model_dump())

    async def read_config(_request: Request) -> Response:
        return JSONResponse(behaviour.model_dump())

    return Starlette(
        routes=[
            Route(TOKEN_PATH, issue_token, methods=["GET"]),
            Route("/_devstack/caller-token", issue_caller_token, methods=["GET"]),
            Route("/_devstack/counters", read_counters, methods=["GET"]),
            Route("/_devstack/reset", reset, methods=["POST"]),
            Route("/_devstack/config", read_config, methods=["GET"]),
            Route("/_devstack/config", configure, methods=["POST"]),
        ]
    )


def _refusal(request: Request, config: IdentityConfig) -> Response | None:
    """The checks App Service makes, in its order: the secret header, then the query."""
    secret = request.headers.get(IDENTITY_HEADER_NAME)
    if secret is None:
        return _error(400, "The request is missing the X-IDENTITY-HEADER header")
    if not hmac.compare_digest(secret.encode(), config.header_secret.encode()):
        return _error(401, "The X-IDENTITY-HEADER header value is not valid")
    api_version = request.query_params.get("api-version")
    if api_version != SUPPORTED_API_VERSION:
        return _error(400, f"api-version must be {SUPPORTED_API_VERSION}, got {api_version!r}")
    if not request.query_params.get("resource"):
        return _error(400, "The resource query parameter is required")
    selectors = [name for name in _USER_ASSIGNED_SELECTORS if request.query_params.get(name)]
    if len(selectors) > 1:
        return _error(400, f"Specify at most one user-assigned identity selector, got {selectors}")
    return None


def _error(status: int, message: str) -> Response:
    return JSONResponse(
        {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}, status
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.identity", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5148)
    parser.add_argument("--header-secret", required=True)
    parser.add_argument("--signing-key", required=True)
    parser.add_argument("--lifetime-seconds", type=int, default=3600)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging()
    config = IdentityConfig(
        header_secret=args.header_secret,
        signing_key=args.signing_key,
        lifetime_seconds=args.lifetime_seconds,
        client_id=args.client_id,
    )
    serve(build_app(config), port=args.port)


if __name__ == "__main__":
    main()
