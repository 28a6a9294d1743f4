"""Where the settings come from and when they are read: parsed once, on first use.

A missing or invalid setting must never stop the Functions host from indexing the app, so nothing
here runs at import time. `load_settings()` layers the process environment over the MCP client
configuration file (`MCP_CONFIG_FILE`), puts resolved Key Vault references in place, validates the
result against `settings.BridgeSettings`, and remembers either the settings or the `SettingsError`
that every request then reports as a 500 problem naming the setting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .keyvault_reference import KeyVaultReference, substitute_references
from .keyvault_settings import VaultAccess
from .mcp_client_config import ConfigFileLayer, McpClientConfigError, layer_mcp_client_config
from .settings import BridgeSettings, MissingSetting
from .upstreams import (
    DEFAULT_UPSTREAM,
    UPSTREAMS_SETTING,
    per_upstream_setting_names,
    rename_for,
    upstream_names,
    upstream_values,
)

_LOGGER = logging.getLogger(__name__)


class SettingsError(Exception):
    """A setting is missing or invalid. The message names the setting and never echoes its value."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class UnresolvedReferences(SettingsError):
    """Settings hold Key Vault references not resolved yet. Never cached: resolving is async and
    happens on first use (`azure_services.settings_loader.ensure_settings`); `pending` maps each
    setting to its `(reference text, reference)`, `access` says how to reach the vaults."""

    def __init__(
        self,
        pending: dict[str, tuple[str, KeyVaultReference]],
        access: VaultAccess,
        file_layer: ConfigFileLayer,
    ) -> None:
        message = "holds a Key Vault reference that is resolved on first use"
        super().__init__([(name, message) for name in pending])
        self.pending = pending
        self.access = access
        self.attribute = file_layer.attribute  # names a setting from MCP_CONFIG_FILE by its JSON path


# Needed to reach a vault, so they cannot be references themselves.
_VAULT_ACCESS_FIELDS = frozenset(VaultAccess.model_fields)


def parse_settings(
    environ: Mapping[str, str] | None = None, *, resolved: dict[str, tuple[str, str]] | None = None
) -> BridgeSettings:
    """Parse settings from `environ` (default: the process environment) layered over the MCP client
    configuration file (`MCP_CONFIG_FILE`), with Key Vault references replaced from `resolved`
    (setting name → `(reference text, value)`). Raises `SettingsError`, or `UnresolvedReferences`."""
    try:
        layered, file_layer = layer_mcp_client_config(os.environ if environ is None else environ)
    except McpClientConfigError as exc:
        raise SettingsError(exc.problems) from None
    names = upstream_names(layered.get(UPSTREAMS_SETTING))
    wanted = set(BridgeSettings.model_fields) | per_upstream_setting_names(names)
    values = {name.lower(): value for name, value in layered.items() if name.lower() in wanted}
    substitution = substitute_references(values, resolved or {}, protected=_VAULT_ACCESS_FIELDS)
    if substitution.problems:
        raise SettingsError(file_layer.attribute(substitution.problems))
    if substitution.pending:
        access = _validated(VaultAccess, substitution.values, file_layer, {})
        if not access.keyvault_enabled:
            message = "holds a Key Vault reference, but USE_AZURE_SERVICES=false turns Key Vault off"
            raise SettingsError(file_layer.attribute([(name, message) for name in substitution.pending]))
        raise UnresolvedReferences(substitution.pending, access, file_layer)
    return _validated_upstreams(names, substitution.values, file_layer, substitution.substituted)


def _validated_upstreams(
    names: tuple[str, ...], values: dict[str, str], file_layer: ConfigFileLayer, from_vault: dict[str, str]
) -> BridgeSettings:
    """Every upstream's settings, validated side by side so that one `SettingsError` reports every
    upstream's problems at once; the default's settings, which hold the others (`upstreams`)."""
    validated: dict[str, BridgeSettings] = {}
    problems: list[tuple[str, str]] = []
    for upstream in names:
        try:
            validated[upstream] = _validated(
                BridgeSettings,
                upstream_values(upstream, values, BridgeSettings.model_fields),
                file_layer,
                from_vault,
                rename=lambda text, upstream=upstream: rename_for(upstream, text),
            )
        except SettingsError as exc:
            # A shared setting's problem is found once per upstream: report it once.
            problems.extend(problem for problem in exc.problems if problem not in problems)
    if problems:
        raise SettingsError(problems)
    for upstream, settings in validated.items():
        settings._upstream_name = upstream
        settings._upstreams = validated
    return validated[DEFAULT_UPSTREAM]


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(
    model: type[_Model],
    values: dict[str, str],
    file_layer: ConfigFileLayer,
    from_vault: dict[str, str],
    *,
    rename: Callable[[str], str] = str,
) -> _Model:
    try:
        return model.model_validate({name: values[name] for name in model.model_fields if name in values})
    except ValidationError as exc:
        problems = [(rename(name), rename(message)) for name, message in _describe(exc)]
        problems = [(name, _redact(message, from_vault.get(name))) for name, message in problems]
        raise SettingsError(file_layer.attribute(problems)) from None


def _redact(message: str, secret: str | None) -> str:
    """A validator may quote the value; one that came from Key Vault must not reach a response."""
    if secret:
        for part in sorted({secret, *secret.split(",")}, key=len, reverse=True):
            if len(part.strip()) >= 3:
                message = message.replace(part.strip(), "<from Key Vault>")
    return message


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, MissingSetting):
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
_resolved: dict[str, tuple[str, str]] = {}


def load_settings() -> BridgeSettings:
    """The process-wide settings, parsed once. Raises the same `SettingsError` on every call."""
    global _cached
    if _cached is None:
        try:
            _cached = parse_settings(resolved=_resolved)
        except UnresolvedReferences:
            raise
        except SettingsError as exc:
            _LOGGER.error("Invalid configuration: %s", exc)
            _cached = exc
    if isinstance(_cached, SettingsError):
        raise _cached
    return _cached


def use_resolved_references(resolved: dict[str, tuple[str, str]]) -> None:
    """Key Vault references resolved by `settings_loader`; the next `load_settings()` uses them."""
    global _cached, _resolved
    _resolved, _cached = {**_resolved, **resolved}, None


def reset_settings() -> None:
    """Forget the parsed settings (tests, and hosts that change app settings in place)."""
    global _cached, _resolved
    _cached, _resolved = None, {}
