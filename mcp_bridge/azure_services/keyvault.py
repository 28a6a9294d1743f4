"""Reading secrets from Azure Key Vault: the SDK's aio `SecretClient` over our httpx2 transport.

One `SecretClient` per vault URL, all sharing the credential they are given (the process's one
credential, so a managed identity's tokens are cached in one place). Failures are sorted into what
configuration decides (no such secret, access denied: `misconfigured`) and what waiting may fix
(vault or identity unreachable, throttled, 5xx: `keyvault-unavailable`, 503). Nothing here logs or
raises a secret value or a token; `VaultFailure.detail` is built from status codes and types only.

Challenge-resource verification (the SDK checks that the vault's 401 challenge names a resource
whose domain the vault URL is under, so a vault token never goes to another host) stays on, except
for a vault on a loopback address: that is the devstack vault, and 127.0.0.1 can never be a
subdomain of vault.azure.net.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from ..problems import Unavailable

_LOGGER = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 10.0
FailureKind = Literal["not-found", "denied", "rejected", "unavailable"]


class KeyVaultUnavailable(Unavailable):
    """503: a vault (or the identity it needs) did not answer usefully; waiting may fix it."""

    slug = "keyvault-unavailable"
    title = "Key Vault unavailable"


@dataclass
class VaultFailure(Exception):
    """A secret could not be read. `detail` is safe to show: no value, no token, no reference."""

    kind: FailureKind
    detail: str

    def __str__(self) -> str:
        return self.detail

    @property
    def transient(self) -> bool:
        return self.kind == "unavailable"


class VaultReader:
    """Reads secrets from any number of vaults with one credential; `aclose()` keeps the credential."""

    def __init__(self, credential: Any, *, ca_file: str | None = None) -> None:
        self._credential = credential
        self._ca_file = ca_file
        self._clients: dict[str, Any] = {}
        self.reads = 0

    async def read(self, vault_url: str, name: str, version: str | None = None) -> str:
        """The secret's value. Raises `VaultFailure`."""
        client = self._client_for(vault_url)
        options: dict[str, Any] = {}
        if self._ca_file is not None:
            # Httpx2Transport honours azure-core's per-request `connection_verify` with a TLS client
            # of its own; a client-level kwarg would be dropped because we supply the transport.
            options["connection_verify"] = self._ca_file
        self.reads += 1
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                secret = await client.get_secret(name, version, **options)
        except TimeoutError:
            raise VaultFailure(
                "unavailable", f"Key Vault did not answer within {READ_TIMEOUT_SECONDS:g} s"
            ) from None
        except Exception as exc:
            raise _classify(exc, vault_url) from None
        if secret.value is None:
            raise VaultFailure("not-found", "the secret has no value")
        _LOGGER.info("Read secret %s from %s", name, vault_url)
        return str(secret.value)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    def _client_for(self, vault_url: str) -> Any:
        client = self._clients.get(vault_url)
        if client is None:
            from azure.keyvault.secrets.aio import SecretClient

            from .http_client import azure_http_client
            from .transport import Httpx2Transport

            client = SecretClient(
                vault_url,
                self._credential,
                transport=Httpx2Transport(azure_http_client(), owns_client=True),
                verify_challenge_resource=not is_loopback(vault_url),
                # A request waits on this; a dead vault must become a quick 503.
                retry_total=2,
                retry_backoff_factor=0.2,
                retry_backoff_max=1,
            )
            self._clients[vault_url] = client
        return client


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _classify(exc: Exception, vault_url: str) -> VaultFailure:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    response = getattr(exc, "response", None)
    request_url = str(getattr(getattr(response, "request", None), "url", "") or "")
    if isinstance(exc, HttpResponseError) and response is not None and request_url.startswith(vault_url):
        status = response.status_code
        if status == 404:
            return VaultFailure("not-found", "the vault has no such secret (404)")
        if status in (401, 403):
            return VaultFailure("denied", f"the vault refused access ({status}); check the identity's access")
        if status == 429 or status >= 500:
            return VaultFailure("unavailable", f"the vault answered {status}")
        return VaultFailure("rejected", f"the vault rejected the request ({status})")
    if isinstance(exc, ValueError):
        # The SDK's challenge-resource check, or a malformed challenge: the URL is not a real vault's.
        return VaultFailure("rejected", "the vault's authentication challenge does not match its URL")
    if isinstance(exc, ClientAuthenticationError):
        return VaultFailure("unavailable", "no token for Key Vault: the identity did not issue one")
    return VaultFailure("unavailable", f"Key Vault is unreachable ({type(exc).__name__})")
