"""The bridge's settings: parsed and validated once, named exactly as the app settings are.

A missing or invalid setting must never stop the Functions host from indexing the app, so nothing
here runs at import time. `load_settings()` parses on first use and remembers either the settings
or the `SettingsError` that every request then reports as a 500 problem naming the setting.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_LOGGER = logging.getLogger(__name__)

AuthMode = Literal["managed_identity", "api_key", "none"]

# Audiences whose tokens must never leave for a third party: an ARM token grants control of the
# subscription the identity can touch. The seeds sent exactly such a token to the Scheduler.
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
    MAX_REQUEST_BYTES = "MAX_REQUEST_BYTES"
    AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
    # Telemetry (mcp_bridge.telemetry); the Functions worker and the Azure Monitor distro read them too
    APPINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
    WORKER_TELEMETRY = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
    TELEMETRY_LOGGER_NAME = "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"
    OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BridgeSettings(BaseSettings):
    """Every app setting the bridge reads; field names map 1:1 to upper-case setting names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

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
    tools_cache_ttl_seconds: float = Field(default=300.0, gt=0)

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

    @field_validator(
        "scheduler_token_scope", "azure_client_id", "scheduler_client_id", "scheduler_api_key", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # App settings cannot be deleted from a template, only blanked: "" means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "azurewebjobsstorage",
        "azurewebjobsstorage__blobserviceuri",
        "azurewebjobsstorage__accountname",
        mode="before",
    )
    @classmethod
    def _blank_storage_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("scheduler_endpoints", mode="before")
    @classmethod
    def _endpoints_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("scheduler_endpoints")
    @classmethod
    def _endpoints_are_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.username or parts.password:
                raise ValueError("endpoint URLs must not carry credentials")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL")
        if len(set(value)) != len(value):
            raise ValueError("an endpoint is listed twice")
        return value

    @field_validator("scheduler_allowed_tools", mode="before")
    @classmethod
    def _allowed_from_csv(cls, value: object) -> object:
        split = _split_csv(value)
        return frozenset(split) if isinstance(split, list) and split else None

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
        if self.scheduler_auth == "api_key":
            if not self.scheduler_client_id:
                raise _setting_missing(EnvVar.CLIENT_ID, "required when SCHEDULER_AUTH=api_key")
            if self.scheduler_api_key is None or not self.scheduler_api_key.get_secret_value():
                raise _setting_missing(EnvVar.API_KEY, "required when SCHEDULER_AUTH=api_key")
        return self

    @cached_property
    def primary_endpoint(self) -> str:
        return self.scheduler_endpoints[0]

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


class _MissingSetting(ValueError):
    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def _setting_missing(setting: str, message: str) -> _MissingSetting:
    return _MissingSetting(setting, message)


class SettingsError(Exception):
    """A setting is missing or invalid. The message names the setting and never echoes its value."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


def parse_settings(environ: dict[str, str] | None = None) -> BridgeSettings:
    """Parse settings from `environ` (default: the process environment), raising `SettingsError`."""
    try:
        if environ is None:
            return BridgeSettings()  # type: ignore[call-arg]
        lowered = {key.lower(): value for key, value in environ.items()}
        return BridgeSettings.model_validate(
            {name: lowered[name] for name in BridgeSettings.model_fields if name in lowered}
        )
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _MissingSetting):
            problems.append((ctx_error.setting, str(ctx_error)))
            continue
        loc = error.get("loc") or ()
        name = str(loc[0]).upper() if loc else "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required but not set"
        problems.append((name, message))
    return problems


_cached: BridgeSettings | SettingsError | None = None


def load_settings() -> BridgeSettings:
    """The process-wide settings, parsed once. Raises the same `SettingsError` on every call."""
    global _cached
    if _cached is None:
        try:
            _cached = parse_settings()
        except SettingsError as exc:
            _LOGGER.error("Invalid configuration: %s", exc)
            _cached = exc
    if isinstance(_cached, SettingsError):
        raise _cached
    return _cached


def reset_settings() -> None:
    """Forget the parsed settings (tests, and hosts that change app settings in place)."""
    global _cached
    _cached = None
