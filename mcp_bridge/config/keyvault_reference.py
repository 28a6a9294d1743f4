"""Key Vault references left in app settings, `@Microsoft.KeyVault(...)`, parsed without any I/O.

App Service and Functions replace such a value with the secret before the app starts. Where that
does not happen (locally, or a reference the platform could not resolve) the literal text reaches
the app; sent as an API key or used as a URL it would fail in confusing ways, so the bridge resolves
it itself (`azure_services.settings_loader`). Both documented forms are understood:

    @Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/[version])
    @Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret[;SecretVersion=version])

Error messages never repeat the reference: they name the part that is wrong, and callers name the
setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

REFERENCE_PREFIX = "@microsoft.keyvault("
DEFAULT_URL_TEMPLATE = "https://{name}.vault.azure.net"
"""Where a vault named in `VaultName=` (or the MCP client configuration's `key_vault_name`) lives:
Azure's public cloud."""

SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
VAULT_NAME = re.compile(r"^[A-Za-z][0-9A-Za-z-]{1,22}[0-9A-Za-z]$")
_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")
_FORMS = (
    "expected @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>]) "
    "or @Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>])"
)


@dataclass(frozen=True)
class KeyVaultReference:
    """One secret, by vault URL (`SecretUri=`) or by vault name (`VaultName=`), optionally pinned."""

    secret_name: str
    version: str | None = None
    vault_url: str | None = None
    vault_name: str | None = None

    def resolve_vault_url(self, template: str) -> str:
        """The vault's URL; a `VaultName=` vault is placed with `template` (`KEYVAULT_URL_TEMPLATE`)."""
        if self.vault_url is not None:
            return self.vault_url
        assert self.vault_name is not None
        return vault_url_for_name(self.vault_name, template)


def is_reference(value: object) -> bool:
    """Whether a raw setting value is a Key Vault reference (well-formed or not)."""
    return isinstance(value, str) and value.strip().lower().startswith(REFERENCE_PREFIX)


def parse_reference(value: str) -> KeyVaultReference:
    """Parse a reference; `ValueError` says what is wrong without quoting the value."""
    text = value.strip()
    if not is_reference(text) or not text.endswith(")"):
        raise ValueError(f"malformed Key Vault reference; {_FORMS}")
    body = text[len(REFERENCE_PREFIX) : -1].strip()
    parts: dict[str, str] = {}
    for item in body.split(";"):
        if not item.strip():
            continue
        key, sep, part = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("secreturi", "vaultname", "secretname", "secretversion") or key in parts:
            raise ValueError(f"malformed Key Vault reference; {_FORMS}")
        parts[key] = part.strip()
    if "secreturi" in parts:
        if len(parts) != 1:
            raise ValueError(f"SecretUri goes alone, or VaultName with SecretName; {_FORMS}")
        return _from_secret_uri(parts["secreturi"])
    if "vaultname" not in parts or "secretname" not in parts:
        raise ValueError(f"malformed Key Vault reference; {_FORMS}")
    if not VAULT_NAME.fullmatch(parts["vaultname"]):
        raise ValueError("the Key Vault reference's VaultName is not a valid vault name")
    return KeyVaultReference(
        secret_name=_secret_name(parts["secretname"]),
        version=_version(parts.get("secretversion")),
        vault_name=parts["vaultname"],
    )


def vault_url_for_name(name: str, template: str) -> str:
    """`https://<name>.vault.azure.net` by default; `template` may place it elsewhere (sovereign
    clouds, or the devstack vault on 127.0.0.1, which ignores the name)."""
    return template.replace("{name}", name).rstrip("/")


def check_vault_url(url: str) -> str:
    """A vault URL without trailing slash; `ValueError` unless it is https with a host and nothing else."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https URL (Key Vault sends tokens over TLS only)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must be a plain vault URL, without credentials, query or fragment")
    return url.strip().rstrip("/")


def _from_secret_uri(uri: str) -> KeyVaultReference:
    try:
        parts = urlsplit(uri)
        check_vault_url(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        raise ValueError("the Key Vault reference's SecretUri must be the https URL of a secret") from None
    if parts.query or parts.fragment:
        raise ValueError("the Key Vault reference's SecretUri must not have a query or fragment")
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) not in (2, 3) or segments[0].lower() != "secrets":
        raise ValueError(
            "the Key Vault reference's SecretUri must look like https://<vault>/secrets/<name>[/<version>]"
        )
    return KeyVaultReference(
        secret_name=_secret_name(segments[1]),
        version=_version(segments[2] if len(segments) == 3 else None),
        vault_url=f"https://{parts.netloc}",
    )


def _secret_name(name: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise ValueError("the Key Vault reference's secret name is not valid (1-127 of 0-9, a-z, A-Z, '-')")
    return name


def _version(version: str | None) -> str | None:
    if not version:
        return None
    if not _VERSION.fullmatch(version):
        raise ValueError("the Key Vault reference's secret version is not valid")
    return version


@dataclass(frozen=True)
class Substitution:
    """Settings with resolved references put in; what still waits for the vault; what is wrong."""

    values: dict[str, str]
    pending: dict[str, tuple[str, KeyVaultReference]]
    problems: list[tuple[str, str]]
    substituted: dict[str, str]


def substitute_references(
    values: dict[str, str], resolved: dict[str, tuple[str, str]], *, protected: frozenset[str]
) -> Substitution:
    """Replace each reference in `values` (lower-case setting names) by its resolved value.

    `resolved` maps a setting name to `(reference text, value)`; a value is used only while the
    setting still holds that same reference. Settings in `protected` are needed to reach a vault
    and cannot themselves be references. Problems and pending references (`(text, reference)`) are
    keyed by setting name.
    """
    out = dict(values)
    pending: dict[str, tuple[str, KeyVaultReference]] = {}
    problems: list[tuple[str, str]] = []
    substituted: dict[str, str] = {}
    for name, raw in values.items():
        if not is_reference(raw):
            continue
        setting = name.upper()
        if name in protected:
            problems.append((setting, "cannot be a Key Vault reference: it is needed to reach Key Vault"))
            continue
        try:
            reference = parse_reference(raw)
        except ValueError as exc:
            problems.append((setting, str(exc)))
            continue
        hit = resolved.get(setting)
        if hit is not None and hit[0] == raw:
            out[name] = substituted[setting] = hit[1]
        else:
            pending[setting] = (raw, reference)
    return Substitution(values=out, pending=pending, problems=problems, substituted=substituted)
