"""Azure Key Vault's secrets API over HTTPS, as `azure-keyvault-secrets` talks to it.

    python -m devstack.keyvault --port 5149 --signing-key KEY --tls-dir .devstack/keyvault-tls

What the real SDK expects (azure/keyvault/secrets/_shared/async_challenge_auth_policy.py):

- TLS: the challenge policy refuses to send a token to a non-`https` URL. The CA and server
  certificate are generated into `--tls-dir` (`devstack.tls`); clients trust `ca.pem`.
- The first request carries no token. The vault answers `401` with
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"`; the SDK then asks its credential for a token for
  `https://vault.azure.net/.default` (tenant from the authorization URL) and resends.
  A request host of 127.0.0.1 is not a subdomain of `vault.azure.net`, so clients must pass
  `verify_challenge_resource=False` for this vault (the bridge does so for loopback vaults only).
- `GET /secrets/{name}[/{version}]?api-version=...` returns `{"value", "id", "attributes", "tags"}`
  with `id` = `<vault url>/secrets/<name>/<version>`; an unknown secret is `404 SecretNotFound`.

Tokens are the devstack identity endpoint's HS256 JWTs, checked for audience
`https://vault.azure.net` with the shared signing key (`devstack.tokens`).

Control API (loopback only, no auth, never returns a value): `PUT /_devstack/secrets/{name}` with
`{"value": ..., "enabled": true}` adds a version (rotation); `DELETE /_devstack/secrets` forgets
every secret; `GET /_devstack/counters`; `POST /_devstack/reset` zeroes the counters;
`POST /_devstack/config` with `{"fail_status": 503}` (or null) makes authorized reads fail.
Nothing here logs a secret value or a token.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.serving import configure_logging, serve
from devstack.tls import ensure_tls_files
from devstack.tokens import DEVSTACK_TENANT_ID, verify_access_token

_LOGGER = logging.getLogger(__name__)

VAULT_RESOURCE = "https://vault.azure.net"
AUTHORITY = "https://login.microsoftonline.com"
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class SecretWrite(BaseModel):
    """Body of `PUT /_devstack/secrets/{name}`."""

    model_config = ConfigDict(extra="forbid")

    value: str
    enabled: bool = True
    content_type: str | None = None


class VaultBehaviour(BaseModel):
    """`POST /_devstack/config`: `fail_status` makes every authorized secret read answer that status."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    fail_status: int | None = Field(default=None, ge=400, le=599)


@dataclass
class SecretVersion:
    version: str
    value: str
    enabled: bool
    content_type: str | None
    created: int


@dataclass
class VaultCounters:
    """`requests`: every request to `/secrets/...`; `reads`: secrets actually returned."""

    requests: int = 0
    unauthorized: int = 0
    reads: int = 0
    not_found: int = 0
    by_secret: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "unauthorized": self.unauthorized,
            "reads": self.reads,
            "not_found": self.not_found,
            "by_secret": dict(self.by_secret),
        }

    def reset(self) -> None:
        self.requests = self.unauthorized = self.reads = self.not_found = 0
        self.by_secret.clear()


@dataclass(frozen=True)
class VaultConfig:
    signing_key: str
    tenant_id: str = DEVSTACK_TENANT_ID


def build_app(config: VaultConfig) -> Starlette:
    """The ASGI app: the secrets API and the control API."""
    secrets: dict[str, list[SecretVersion]] = {}
    counters = VaultCounters()
    behaviour = VaultBehaviour()

    async def get_secret(request: Request) -> Response:
        counters.requests += 1
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if not request.query_params.get("api-version"):
            return _error(400, "BadParameter", "The api-version query parameter is required.")
        refusal = _unauthorized(request, config)
        if refusal is not None:
            counters.unauthorized += 1
            return refusal
        if behaviour.fail_status is not None:
            return _error(behaviour.fail_status, "ServiceUnavailable", "devstack vault configured to fail")
        found = _find(secrets, name, version)
        if found is None:
            counters.not_found += 1
            wanted = f"{name}/{version}" if version else name
            return _error(
                404, "SecretNotFound", f"A secret with (name/id) {wanted} was not found in this key vault."
            )
        if not found.enabled:
            return _error(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
        counters.reads += 1
        counters.by_secret[name] = counters.by_secret.get(name, 0) + 1
        _LOGGER.info("read secret %s (version %s)", name, found.version)
        base = str(request.base_url).rstrip("/")
        body: dict[str, object] = {
            "value": found.value,
            "id": f"{base}/secrets/{name}/{found.version}",
            "attributes": {
                "enabled": found.enabled,
                "created": found.created,
                "updated": found.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return JSONResponse(body)

    async def put_secret(request: Request) -> Response:
        name = request.path_params["name"]
        if not _SECRET_NAME.fullmatch(name):
            return JSONResponse({"error": "secret names are 1-127 of 0-9, a-z, A-Z and '-'"}, 400)
        try:
            write = SecretWrite.model_validate_json(await request.body())
        except ValidationError as exc:
            return _invalid("invalid secret", exc)
        version = SecretVersion(
            version=uuid.uuid4().hex,
            value=write.value,
            enabled=write.enabled,
            content_type=write.content_type,
            created=int(time.time()),
        )
        secrets.setdefault(name.lower(), []).append(version)
        _LOGGER.info("secret %s now at version %s", name, version.version)
        return JSONResponse({"name": name, "version": version.version})

    async def clear_secrets(_request: Request) -> Response:
        secrets.clear()
        return JSONResponse({"secrets": 0})

    async def read_counters(_request: Request) -> Response:
        return JSONResponse(counters.snapshot())

    async def reset(_request: Request) -> Response:
        counters.reset()
        return JSONResponse(counters.snapshot())

    async def configure(request: Request) -> Response:
        try:
            changes = VaultBehaviour.model_validate_json(await request.body())
        except ValidationError as exc:
            return _invalid("invalid config", exc)
        for name in changes.model_fields_set:
            setattr(behaviour, name, getattr(changes, name))
        return JSONResponse(behaviour.model_dump())

    return Starlette(
        routes=[
            Route("/secrets/{name}", get_secret, methods=["GET"]),
            Route("/secrets/{name}/", get_secret, methods=["GET"]),
            Route("/secrets/{name}/{version}", get_secret, methods=["GET"]),
            Route("/_devstack/secrets/{name}", put_secret, methods=["PUT"]),
            Route("/_devstack/secrets", clear_secrets, methods=["DELETE"]),
            Route("/_devstack/counters", read_counters, methods=["GET"]),
            Route("/_devstack/reset", reset, methods=["POST"]),
            Route("/_devstack/config", configure, methods=["POST"]),
        ]
    )


def _find(secrets: dict[str, list[SecretVersion]], name: str, version: str | None) -> SecretVersion | None:
    versions = secrets.get(name.lower())  # Key Vault secret names are case-insensitive
    if not versions:
        return None
    if not version:
        return versions[-1]
    return next((candidate for candidate in versions if candidate.version == version.lower()), None)


def _unauthorized(request: Request, config: VaultConfig) -> Response | None:
    """None when the bearer token is valid for the vault; else the 401 challenge Key Vault sends."""
    authorization = request.headers.get("authorization")
    if not authorization:
        return _challenge(config, "AKV10000: Request is missing a Bearer or PoP token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge(config, "AKV10001: Authorization must use the Bearer scheme.")
    try:
        verify_access_token(token.strip(), config.signing_key, audience=VAULT_RESOURCE)
    except jwt.InvalidAudienceError:
        return _challenge(config, "AKV10022: Invalid audience.")
    except jwt.InvalidTokenError:
        return _challenge(config, "AKV10032: Invalid token.")
    return None


def _challenge(config: VaultConfig, message: str) -> Response:
    response = _error(401, "Unauthorized", message)
    response.headers["WWW-Authenticate"] = (
        f'Bearer authorization="{AUTHORITY}/{config.tenant_id}", resource="{VAULT_RESOURCE}"'
    )
    return response


def _invalid(error: str, exc: ValidationError) -> Response:
    # include_input=False: a rejected body may hold a secret value.
    return JSONResponse({"error": error, "details": exc.errors(include_input=False, include_url=False)}, 400)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.keyvault", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5149)
    parser.add_argument("--signing-key", required=True)
    parser.add_argument("--tls-dir", type=Path, required=True, help="where ca.pem and the server cert live")
    parser.add_argument("--tenant-id", default=DEVSTACK_TENANT_ID)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging()
    tls = ensure_tls_files(args.tls_dir)
    config = VaultConfig(signing_key=args.signing_key, tenant_id=args.tenant_id)
    serve(build_app(config), port=args.port, ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file)


if __name__ == "__main__":
    main()
