"""The app settings that say whether and how the bridge reads Azure Key Vault.

They are a separate model because they are needed *before* the rest of the settings can be
validated: resolving a `@Microsoft.KeyVault(...)` reference in, say, `SCHEDULER_ENDPOINTS` takes
the vault settings and a credential first. `BridgeSettings` inherits every field, so there is one
definition of each setting.

`USE_AZURE_SERVICES` is the original integration guide's switch. Unset, Key Vault is used when
configured and the Scheduler auth mode follows `SCHEDULER_AUTH`. `false` turns Azure services off,
as that guide did for anything but "true": `KEYVAULT_URI` is ignored, a Key Vault reference is an
error, and managed identity for the Scheduler is refused rather than silently replaced.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from .keyvault_reference import DEFAULT_URL_TEMPLATE, check_vault_url

_SECRET_NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"


class KeyVaultSettings(BaseModel):
    """Key Vault and the Azure-services switch; field names are the lower-cased setting names."""

    use_azure_services: bool | None = None
    keyvault_uri: str | None = None
    keyvault_client_id_secret: str = Field(default="SCHEDULER-CLIENT-ID", pattern=_SECRET_NAME_PATTERN)
    keyvault_api_key_secret: str = Field(default="SCHEDULER-API-KEY", pattern=_SECRET_NAME_PATTERN)
    keyvault_url_template: str = DEFAULT_URL_TEMPLATE
    keyvault_ca_file: str | None = None

    # Validator names are distinct from BridgeSettings' own: a subclass method of the same name
    # would replace these.
    @field_validator("use_azure_services", "keyvault_uri", "keyvault_ca_file", mode="before")
    @classmethod
    def _blank_vault_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "keyvault_client_id_secret", "keyvault_api_key_secret", "keyvault_url_template", mode="before"
    )
    @classmethod
    def _blank_vault_setting_is_default(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and not value.strip() and info.field_name:
            return cls.model_fields[info.field_name].default
        return value

    @field_validator("keyvault_uri")
    @classmethod
    def _vault_uri_is_https(cls, value: str | None) -> str | None:
        return None if value is None else check_vault_url(value)

    @field_validator("keyvault_url_template")
    @classmethod
    def _vault_url_template_is_https(cls, value: str) -> str:
        check_vault_url(value.replace("{name}", "vault"))
        return value.strip()

    @field_validator("keyvault_ca_file")
    @classmethod
    def _vault_ca_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError("no such file (a PEM bundle of CA certificates to trust for Key Vault)")
        return value

    @property
    def keyvault_enabled(self) -> bool:
        """False only when `USE_AZURE_SERVICES=false`."""
        return self.use_azure_services is not False

    @property
    def secrets_vault_url(self) -> str | None:
        """The vault the Scheduler's client id and API key are read from, when there is one."""
        return self.keyvault_uri if self.keyvault_enabled else None


class VaultAccess(KeyVaultSettings):
    """What reaching a vault takes: the Key Vault settings and the identity (`AZURE_CLIENT_ID`)."""

    azure_client_id: str | None = None

    @field_validator("azure_client_id", mode="before")
    @classmethod
    def _blank_client_id(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
