"""The bridge's settings: every app setting it reads, named exactly as the app settings are, and
the rules each one must satisfy.

This module says what a valid configuration is; `loader.py` says where it comes from (environment,
MCP client configuration file, Key Vault references) and when it is read (on first use, never at
import, so a bad setting cannot stop the Functions host from indexing the app).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import endpoint_policy
from .keyvault_settings import KeyVaultSettings
from .tool_roles import ToolRoles, parse_role_list, parse_tool_roles
from .upstreams import DEFAULT_UPSTREAM, name_problems, setting_name, upstream_names

AuthMode = Literal["managed_identity", "api_key", "none"]

# Audiences whose tokens must never leave for a third party: an ARM token grants control of the
# subscription the identity can touch. The original integration guide sent exactly such a token to
# the Scheduler.
_ARM_HOSTS = ("management.azure.com", "management.core.windows.net")


class EnvVar:
    """App-setting names in one place, so code and messages never disagree on spelling."""

    ENDPOINTS = "SCHEDULER_ENDPOINTS"
    AUTH = "SCHEDULER_AUTH"
    TOKEN_SCOPE = "SCHEDULER_TOKEN_SCOPE"
    CLIENT_ID = "SCHEDULER_CLIENT_ID"
    API_KEY = "SCHEDULER_API_KEY"
    CLIENT_ID_HEADER = "SCHEDULER_CLIENT_ID_HEADER"
    API_KEY_HEADER = "SCHEDULER_API_KEY_HEADER"
    STATUS_TOOL = "SCHEDULER_STATUS_TOOL"
    STATUS_ARGUMENT = "SCHEDULER_STATUS_ARGUMENT"
    ALLOWED_TOOLS = "SCHEDULER_ALLOWED_TOOLS"
    TIMEOUT_SECONDS = "SCHEDULER_TIMEOUT_SECONDS"
    IDLE_CONNECTION_SECONDS = "SCHEDULER_IDLE_CONNECTION_SECONDS"
    CA_FILE = "SCHEDULER_CA_FILE"
    MAX_REQUEST_BYTES = "MAX_REQUEST_BYTES"
    ALLOW_PRIVATE_ENDPOINTS = "SCHEDULER_ALLOW_PRIVATE_ENDPOINTS"
    MAX_UPSTREAM_RESPONSE_BYTES = "MAX_UPSTREAM_RESPONSE_BYTES"
    # Callers and their roles (mcp_bridge.callers); App Service sets WEBSITE_AUTH_ENABLED itself
    TOOL_ROLES = "SCHEDULER_TOOL_ROLES"
    KEY_CALLER_ROLES = "SCHEDULER_KEY_CALLER_ROLES"
    WEBSITE_AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"
    AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
    # Key Vault, the Azure-services switch and the MCP client configuration file
    # (keyvault_settings, mcp_client_config)
    USE_AZURE_SERVICES = "USE_AZURE_SERVICES"
    KEYVAULT_URI = "KEYVAULT_URI"
    KEYVAULT_CLIENT_ID_SECRET = "KEYVAULT_CLIENT_ID_SECRET"
    KEYVAULT_API_KEY_SECRET = "KEYVAULT_API_KEY_SECRET"
    KEYVAULT_URL_TEMPLATE = "KEYVAULT_URL_TEMPLATE"
    KEYVAULT_CA_FILE = "KEYVAULT_CA_FILE"
    MCP_CONFIG_FILE = "MCP_CONFIG_FILE"
    MCP_UPSTREAMS = "MCP_UPSTREAMS"  # named upstreams beside the Scheduler (config/upstreams.py)
    # Telemetry (mcp_bridge.telemetry); the Functions worker and the Azure Monitor distro read them too
    APPINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
    WORKER_TELEMETRY = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
    TELEMETRY_LOGGER_NAME = "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"
    OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
    # The HTTP contract (mcp_bridge.arguments, mcp_bridge.idempotency)
    STRICT_ARGUMENTS = "SCHEDULER_STRICT_ARGUMENTS"
    IDEMPOTENCY_TTL_SECONDS = "IDEMPOTENCY_TTL_SECONDS"
    IDEMPOTENCY_CONTAINER = "IDEMPOTENCY_CONTAINER"
    # Long-running operations (mcp_bridge.operations)
    OPERATIONS_RETENTION_SECONDS = "OPERATIONS_RETENTION_SECONDS"
    OPERATIONS_MAX_PER_CALLER = "OPERATIONS_MAX_PER_CALLER"
    # HTTP streams (Server-Sent Events), read at indexing by mcp_bridge.functions.http_streams
    HTTP_STREAMS = "HTTP_STREAMS"
    INIT_INDEXING = "PYTHON_ENABLE_INIT_INDEXING"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BridgeSettings(BaseSettings, KeyVaultSettings):
    """Every app setting the bridge reads; field names map 1:1 to upper-case setting names.

    The Key Vault settings are inherited from `KeyVaultSettings`."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # The upstreams' names (config/upstreams.py); each upstream gets a `BridgeSettings` of its own,
    # its settings in the Scheduler's fields, and the loader fills these two in on every one.
    mcp_upstreams: Annotated[tuple[str, ...], NoDecode] = (DEFAULT_UPSTREAM,)
    _upstream_name: str = PrivateAttr(default=DEFAULT_UPSTREAM)
    _upstreams: dict[str, BridgeSettings] = PrivateAttr(default_factory=dict)

    # Declared before the endpoints: their validator reads it.
    scheduler_allow_private_endpoints: bool = False
    scheduler_endpoints: Annotated[list[str], NoDecode] = Field(min_length=1)
    scheduler_auth: AuthMode = "managed_identity"
    scheduler_token_scope: str | None = None
    azure_client_id: str | None = None
    scheduler_client_id: str | None = None
    scheduler_api_key: SecretStr | None = None
    scheduler_client_id_header: str = Field(default="X-Client-Id", pattern=r"^[A-Za-z0-9-]+$")
    scheduler_api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    scheduler_status_tool: str = Field(default="getConversationStatus", min_length=1)
    scheduler_status_argument: str = Field(default="conversation_id", min_length=1)
    scheduler_allowed_tools: Annotated[frozenset[str] | None, NoDecode] = None
    scheduler_timeout_seconds: float = Field(default=30.0, gt=0, le=230)
    max_request_bytes: int = Field(default=1_048_576, gt=0)
    max_upstream_response_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    tools_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    scheduler_idle_connection_seconds: float = Field(default=60.0, ge=0, le=200)
    scheduler_ca_file: str | None = None
    scheduler_tool_roles: Annotated[tuple[tuple[str, str], ...] | None, NoDecode] = None
    scheduler_key_caller_roles: Annotated[frozenset[str] | None, NoDecode] = None
    website_auth_enabled: Annotated[bool, NoDecode] = False

    # Health probes and the shared snapshot
    health_probe_schedule: str = "*/30 * * * * *"
    health_probe_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    scheduler_ping_path: str = Field(default="/ping", pattern=r"^(/[^?#]*)?$")
    health_snapshot_container: str = Field(
        default="scheduler-bridge", pattern=r"^[a-z0-9](-?[a-z0-9]){2,62}$"
    )
    health_snapshot_blob: str = Field(default="health.json", min_length=1, max_length=1024)
    health_snapshot_ttl_seconds: float = Field(default=10.0, gt=0)
    health_auth_level: Literal["anonymous", "function", "admin"] = "function"
    azurewebjobsstorage: SecretStr | None = None
    azurewebjobsstorage__blobserviceuri: str | None = None
    azurewebjobsstorage__accountname: str | None = None
    applicationinsights_connection_string: SecretStr | None = None

    # The HTTP contract: unknown argument names refused; Idempotency-Key records (idempotency/)
    scheduler_strict_arguments: bool = True
    idempotency_ttl_seconds: float = Field(default=86_400.0, gt=0, le=30 * 86_400)
    idempotency_container: str = Field(
        default="scheduler-bridge-idempotency", pattern=r"^[a-z0-9](-?[a-z0-9]){2,62}$"
    )
    # Long-running operations: how long one is kept (and its task asked to live), live ones per caller
    operations_retention_seconds: float = Field(default=86_400.0, ge=60, le=30 * 86_400)
    operations_max_per_caller: int = Field(default=20, ge=1, le=10_000)
    # The process: how often the C allocator's free heap is handed back (process_memory.py); 0: never
    memory_trim_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator(
        "scheduler_token_scope",
        "azure_client_id",
        "scheduler_client_id",
        "scheduler_api_key",
        "scheduler_ca_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # App settings cannot be deleted from a template, only blanked: "" means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "azurewebjobsstorage",
        "azurewebjobsstorage__blobserviceuri",
        "azurewebjobsstorage__accountname",
        "applicationinsights_connection_string",
        mode="before",
    )
    @classmethod
    def _blank_storage_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("scheduler_ca_file")
    @classmethod
    def _scheduler_ca_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError("no such file (a PEM bundle of CA certificates to trust for the Scheduler)")
        return value

    @field_validator("scheduler_endpoints", mode="before")
    @classmethod
    def _endpoints_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("scheduler_endpoints")
    @classmethod
    def _endpoints_are_urls(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # The endpoint address policy lives in endpoint_policy; the same rules run again at connect time.
        allow_private = info.data.get("scheduler_allow_private_endpoints") is True
        for position, url in enumerate(value, start=1):
            parts = urlsplit(url)
            if parts.username or parts.password:
                raise ValueError("endpoint URLs must not carry credentials")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"endpoint {position} is not an http(s) URL")
            host = parts.hostname
            if parts.scheme != "https" and not endpoint_policy.is_loopback_host(host):
                raise ValueError(
                    f"endpoint {position} ({host}) must use https; plain http is allowed only for loopback"
                )
            literal = endpoint_policy.literal_address(host)
            reason = (
                None if literal is None else endpoint_policy.refusal(literal, allow_private=allow_private)
            )
            if reason is not None:
                raise ValueError(f"endpoint {position} ({host}) is refused: {reason}")
        if len(set(value)) != len(value):
            raise ValueError("an endpoint is listed twice")
        return value

    @field_validator("mcp_upstreams", mode="before")
    @classmethod
    def _upstreams_from_csv(cls, value: object) -> object:
        if isinstance(value, str):
            problems = name_problems(value)
            if problems:
                raise ValueError("; ".join(problems))
            return upstream_names(value)
        return value

    @field_validator("scheduler_allowed_tools", mode="before")
    @classmethod
    def _allowed_from_csv(cls, value: object) -> object:
        split = _split_csv(value)
        return frozenset(split) if isinstance(split, list) and split else None

    @field_validator("scheduler_tool_roles", mode="before")
    @classmethod
    def _tool_roles_from_pairs(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_tool_roles(value) if value.strip() else None
        return value

    @field_validator("scheduler_key_caller_roles", mode="before")
    @classmethod
    def _key_roles_from_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_role_list(value) if value.strip() else None
        return value

    @field_validator("website_auth_enabled", mode="before")
    @classmethod
    def _platform_true(cls, value: object) -> object:
        # App Service writes exactly "True"; anything else (unset, "1", "yes") is not its word.
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return value

    @field_validator("scheduler_token_scope")
    @classmethod
    def _scope_is_not_arm(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        host = urlsplit(value).hostname or ""
        if host in _ARM_HOSTS or any(arm in value.lower() for arm in _ARM_HOSTS):
            raise ValueError(
                "refused: a scope on Azure Resource Manager would hand an ARM token to a third party; "
                "use the Scheduler's own application ID URI, e.g. api://<scheduler-app-id>/.default"
            )
        return value

    @model_validator(mode="after")
    def _auth_mode_has_what_it_needs(self) -> BridgeSettings:
        if self.scheduler_auth == "managed_identity" and not self.scheduler_token_scope:
            raise _setting_missing(EnvVar.TOKEN_SCOPE, "required when SCHEDULER_AUTH=managed_identity")
        if self.scheduler_auth == "managed_identity" and self.use_azure_services is False:
            raise _setting_missing(
                EnvVar.USE_AZURE_SERVICES,
                "false turns managed identity off, but SCHEDULER_AUTH is managed_identity (the default)",
            )
        # With a vault (KEYVAULT_URI), it supplies whichever of the two app settings leave unset.
        if self.scheduler_auth == "api_key" and self.secrets_vault_url is None:
            why = "required when SCHEDULER_AUTH=api_key"
            if self.keyvault_uri is not None:
                why += " (KEYVAULT_URI is not read: USE_AZURE_SERVICES=false)"
            if not self.scheduler_client_id:
                raise _setting_missing(EnvVar.CLIENT_ID, why)
            if self.scheduler_api_key is None or not self.scheduler_api_key.get_secret_value():
                raise _setting_missing(EnvVar.API_KEY, why)
        if self.scheduler_key_caller_roles is not None and self.scheduler_tool_roles is None:
            # Left alone it would read as "key callers are limited", while every caller may call all.
            why = f"has no effect unless {EnvVar.TOOL_ROLES} is set; set both or neither"
            raise _setting_missing(EnvVar.KEY_CALLER_ROLES, why)
        return self

    @property
    def upstream_name(self) -> str:
        """Which upstream these settings are for: `scheduler` (the default) or a name from MCP_UPSTREAMS."""
        return self._upstream_name

    @property
    def upstreams(self) -> dict[str, BridgeSettings]:
        """Every upstream's settings by name, the default first (`{"scheduler": self}` alone)."""
        return self._upstreams or {self._upstream_name: self}

    def setting_name(self, field: str) -> str:
        """The app setting behind `field` for this upstream (`scheduler_auth` → `ROOMS_AUTH`)."""
        return setting_name(self._upstream_name, field)

    @cached_property
    def primary_endpoint(self) -> str:
        return self.scheduler_endpoints[0]

    @cached_property
    def tool_roles(self) -> ToolRoles | None:
        """`SCHEDULER_TOOL_ROLES` as a policy; None: every caller may call every allowed tool."""
        return None if self.scheduler_tool_roles is None else ToolRoles.from_pairs(self.scheduler_tool_roles)

    @property
    def key_caller_roles(self) -> frozenset[str]:
        return self.scheduler_key_caller_roles or frozenset()

    @property
    def storage_connection_string(self) -> str | None:
        return self.azurewebjobsstorage.get_secret_value() if self.azurewebjobsstorage else None

    @property
    def storage_blob_url(self) -> str | None:
        """Identity-based storage (`AzureWebJobsStorage__blobServiceUri` or `__accountName`)."""
        if self.azurewebjobsstorage__blobserviceuri:
            return self.azurewebjobsstorage__blobserviceuri
        if self.azurewebjobsstorage__accountname:
            return f"https://{self.azurewebjobsstorage__accountname}.blob.core.windows.net"
        return None

    @property
    def has_shared_storage(self) -> bool:
        return bool(self.storage_connection_string or self.storage_blob_url)

    def tool_is_allowed(self, name: str) -> bool:
        return self.scheduler_allowed_tools is None or name in self.scheduler_allowed_tools


class MissingSetting(ValueError):
    """A validator's verdict that names the setting at fault, which may not be the field it runs on
    (a model validator finds SCHEDULER_API_KEY missing); `loader` reports it under that name."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def _setting_missing(setting: str, message: str) -> MissingSetting:
    return MissingSetting(setting, message)
