"""The MCP client configuration format: the JSON file `MCP_CONFIG_FILE` names, mapped onto settings.

MCP hosts are configured with a file like

    {"mcp": {"mcp_servers": [{"name": "Scheduler",
                              "transport": {"type": "http", "url": "https://.../mcp",
                                            "auth": {"client_id": "...", "api_key": "..."}}}]},
     "azure": {"use_managed_identity": true, "key_vault_name": "mcp-scheduler-kv",
               "application_insights_connection_string": "InstrumentationKey=..."}}

Rather than a second configuration system, the file is translated into the same app settings the
bridge always reads, underneath them: an app setting that is set (not blank) wins over the file.

- Every server named "Scheduler" (any case) is one region, in file order: their URLs become
  `SCHEDULER_ENDPOINTS` (first = primary). The same goes for every other upstream `MCP_UPSTREAMS`
  names: the servers named "Rooms" (any case) become `ROOMS_ENDPOINTS`, their auth `ROOMS_AUTH`...
  (config/upstreams.py). Servers with other names belong to other MCP hosts' use of the same file
  and are skipped without being validated.
- `transport.auth` is `{"client_id", "api_key"}` (→ `SCHEDULER_AUTH=api_key`; either may be left
  out and come from app settings or Key Vault) or `{"use_managed_identity": true}`
  (→ `SCHEDULER_AUTH=managed_identity`; `SCHEDULER_TOKEN_SCOPE` must still be set: the original
  integration guide's ARM scope is not carried over). Every Scheduler server must use the same auth.
- `azure.use_managed_identity` → `USE_AZURE_SERVICES`; `azure.key_vault_name` → `KEYVAULT_URI`
  (placed with `KEYVAULT_URL_TEMPLATE`); `azure.application_insights_connection_string` →
  `APPLICATIONINSIGHTS_CONNECTION_STRING`.

Anything that cannot be mapped is an error naming its JSON path (`mcp.mcp_servers[0].transport.type`),
never its value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .keyvault_reference import DEFAULT_URL_TEMPLATE, VAULT_NAME, vault_url_for_name
from .upstreams import DEFAULT_UPSTREAM, UPSTREAMS_SETTING, setting_name, upstream_names

_LOGGER = logging.getLogger(__name__)

CONFIG_FILE_SETTING = "MCP_CONFIG_FILE"
SCHEDULER_SERVER_NAME = "scheduler"
APP_ROOT = Path(__file__).resolve().parents[2]
"""Relative `MCP_CONFIG_FILE` paths start here, the folder holding function_app.py."""


class McpClientConfigError(ValueError):
    """The file cannot be mapped; `problems` pairs a JSON path (or `MCP_CONFIG_FILE`) with a reason."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


class _Strict(BaseModel):
    # Strict: "true" is not a boolean and 5 is not a URL. Forbid: a field the bridge would silently
    # ignore (headers, timeouts, a typo) is better refused than half-honoured.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ServerAuth(_Strict):
    client_id: str | None = Field(default=None, min_length=1)
    api_key: SecretStr | None = None
    use_managed_identity: bool | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ServerAuth:
        keyed = self.client_id is not None or self.api_key is not None
        if self.use_managed_identity and keyed:
            raise ValueError("use client_id/api_key or use_managed_identity: true, not both")
        if not self.use_managed_identity and not keyed:
            raise ValueError(
                "needs client_id and api_key, or use_managed_identity: true "
                "(leave auth out to use SCHEDULER_AUTH)"
            )
        return self

    def app_settings(self, upstream: str = DEFAULT_UPSTREAM) -> dict[str, str]:
        if self.use_managed_identity:
            return {setting_name(upstream, "scheduler_auth"): "managed_identity"}
        values = {setting_name(upstream, "scheduler_auth"): "api_key"}
        if self.client_id is not None:
            values[setting_name(upstream, "scheduler_client_id")] = self.client_id
        if self.api_key is not None:
            values[setting_name(upstream, "scheduler_api_key")] = self.api_key.get_secret_value()
        return values


class ServerTransport(_Strict):
    type: str
    url: str
    auth: ServerAuth | None = None

    @field_validator("type")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if value.lower() != "http":
            raise ValueError('only "http" (MCP Streamable HTTP) can be bridged')
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value


class SchedulerServer(_Strict):
    name: str
    transport: ServerTransport


class _AnyServer(BaseModel):
    """Any entry of `mcp_servers`: only its name is read, to pick out the Scheduler's."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    name: str


class McpSection(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    mcp_servers: list[_AnyServer]


class AzureSection(_Strict):
    use_managed_identity: bool | None = None
    key_vault_name: str | None = Field(default=None, pattern=VAULT_NAME.pattern)
    application_insights_connection_string: SecretStr | None = Field(default=None, min_length=1)


class McpClientConfigFile(BaseModel):
    # Other top-level sections belong to the rest of the host application and are ignored.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    mcp: McpSection | None = None
    azure: AzureSection | None = None


@dataclass(frozen=True)
class ConfigFileLayer:
    """App settings taken from the file, and for each one the JSON path it came from."""

    values: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def attribute(self, problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Name a problem with a setting that came from the file by its JSON path."""
        named = []
        for name, message in problems:
            origin = self.origins.get(name)
            if origin is not None:
                name, message = origin, f"in {CONFIG_FILE_SETTING} (as {name}): {message}"
            named.append((name, message))
        return named


def layer_mcp_client_config(environ: Mapping[str, str]) -> tuple[dict[str, str], ConfigFileLayer]:
    """`environ` (app settings, any key case) over the file named by `MCP_CONFIG_FILE`, if any.

    An app setting that is present but blank does not hide the file's value: blank means unset.
    """
    by_upper = {key.upper(): value for key, value in environ.items()}
    path = (by_upper.get(CONFIG_FILE_SETTING) or "").strip()
    if not path:
        return dict(by_upper), ConfigFileLayer()
    template = (by_upper.get("KEYVAULT_URL_TEMPLATE") or "").strip() or DEFAULT_URL_TEMPLATE
    upstreams = upstream_names(by_upper.get(UPSTREAMS_SETTING))
    layer = map_mcp_client_config(read_mcp_client_config(path), url_template=template, upstreams=upstreams)
    overridden = sorted(name for name in layer.values if (by_upper.get(name) or "").strip())
    if overridden:
        _LOGGER.info("App settings override %s from %s", ", ".join(overridden), CONFIG_FILE_SETTING)
    merged = {**by_upper, **{name: value for name, value in layer.values.items() if name not in overridden}}
    origins = {name: origin for name, origin in layer.origins.items() if name not in overridden}
    return merged, ConfigFileLayer(values=layer.values, origins=origins)


def read_mcp_client_config(path: str) -> Any:
    """The file's JSON. Relative paths are relative to the app's folder, not the worker's cwd."""
    resolved = Path(path)
    if not resolved.is_absolute():
        resolved = APP_ROOT / resolved
    try:
        text = resolved.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise McpClientConfigError([(CONFIG_FILE_SETTING, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise McpClientConfigError(
            [(CONFIG_FILE_SETTING, f"cannot be read ({type(exc).__name__})")]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's complaint only ("Expecting value"), never the file's content.
        message = f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise McpClientConfigError([(CONFIG_FILE_SETTING, message)]) from None


def map_mcp_client_config(
    document: Any,
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    upstreams: tuple[str, ...] = (DEFAULT_UPSTREAM,),
) -> ConfigFileLayer:
    """Translate the parsed file into app settings; raises `McpClientConfigError` naming JSON paths,
    every upstream's problems at once."""
    if not isinstance(document, dict):
        raise McpClientConfigError([(CONFIG_FILE_SETTING, "must hold a JSON object")])
    parsed = _validate(McpClientConfigFile, document, ())
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    if parsed.mcp is not None:
        problems: list[tuple[str, str]] = []
        for upstream in upstreams:
            try:
                _map_servers(parsed.mcp, values, origins, upstream)
            except McpClientConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise McpClientConfigError(problems)
    if parsed.azure is not None:
        _map_azure(parsed.azure, url_template, values, origins)
    return ConfigFileLayer(values=values, origins=origins)


def _map_servers(mcp: McpSection, values: dict[str, str], origins: dict[str, str], upstream: str) -> None:
    """One upstream's servers (`upstream`, matched in any case) as its endpoints and auth. The
    Scheduler must be in the file; another upstream may take its settings from app settings."""
    servers: list[tuple[str, SchedulerServer]] = []
    for index, entry in enumerate(mcp.mcp_servers):
        if entry.name.strip().lower() != upstream:
            continue
        path = ("mcp", "mcp_servers", index)
        servers.append((_json_path(path), _validate(SchedulerServer, entry.model_dump(), path)))
    if not servers and upstream != SCHEDULER_SERVER_NAME:
        return
    if not servers:
        raise McpClientConfigError(
            [("mcp.mcp_servers", 'in MCP_CONFIG_FILE: no server is named "Scheduler"')]
        )
    urls: list[str] = []
    for path, server in servers:
        if server.transport.url in urls:
            raise McpClientConfigError(
                [(f"{path}.transport.url", "in MCP_CONFIG_FILE: this URL is listed twice")]
            )
        urls.append(server.transport.url)
    endpoints = setting_name(upstream, "scheduler_endpoints")
    values[endpoints] = ",".join(urls)
    origins[endpoints] = f"{servers[0][0]}.transport.url"

    first_path, first = servers[0]
    for path, server in servers[1:]:
        if server.transport.auth != first.transport.auth:
            raise McpClientConfigError(
                [
                    (
                        f"{path}.transport.auth",
                        f"in MCP_CONFIG_FILE: differs from {first_path}.transport.auth; "
                        f"the bridge uses one credential for every region of {upstream!r}",
                    )
                ]
            )
    if first.transport.auth is not None:
        for name, value in first.transport.auth.app_settings(upstream).items():
            values[name] = value
            origins[name] = f"{first_path}.transport.auth"


def _map_azure(
    azure: AzureSection, url_template: str, values: dict[str, str], origins: dict[str, str]
) -> None:
    if azure.use_managed_identity is not None:
        values["USE_AZURE_SERVICES"] = "true" if azure.use_managed_identity else "false"
        origins["USE_AZURE_SERVICES"] = "azure.use_managed_identity"
    if azure.key_vault_name is not None:
        values["KEYVAULT_URI"] = vault_url_for_name(azure.key_vault_name, url_template)
        origins["KEYVAULT_URI"] = "azure.key_vault_name"
    connection_string = azure.application_insights_connection_string
    if connection_string is not None:
        values["APPLICATIONINSIGHTS_CONNECTION_STRING"] = connection_string.get_secret_value()
        origins["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "azure.application_insights_connection_string"


_MESSAGES = {
    "extra_forbidden": "not something the bridge can map (remove it)",
    "missing": "required",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
}


def _validate(model: type[Any], data: Any, prefix: tuple[str | int, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            path = _json_path(prefix + tuple(error["loc"])) or CONFIG_FILE_SETTING
            message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
            problems.append((path, f"in {CONFIG_FILE_SETTING}: {message}"))
        raise McpClientConfigError(problems) from None


def _json_path(loc: tuple[str | int, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("function-after") and not part.startswith("function-"):
            path += f".{part}" if path else part
    return path
