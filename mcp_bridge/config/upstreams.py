"""Named upstreams: which MCP servers the bridge fronts, and how each one's app settings are named.

`MCP_UPSTREAMS` lists the upstreams by name, case-insensitive (default `scheduler`). The Scheduler
is always one of them, and always the default: the routes that exist without a server name are its.

Every other upstream is configured by the Scheduler's own settings with its name in place of
`SCHEDULER`: `ROOMS_ENDPOINTS`, `ROOMS_AUTH`, `ROOMS_TOKEN_SCOPE`, ... and, for the two Key Vault
secret names (unprefixed for the Scheduler), `ROOMS_KEYVAULT_CLIENT_ID_SECRET` and
`ROOMS_KEYVAULT_API_KEY_SECRET` (default `ROOMS-CLIENT-ID`, `ROOMS-API-KEY`). Flat upper-case
names, not `UPSTREAM__rooms__ENDPOINTS`: they read the same in the portal, in Bicep and in
`local.settings.json`, one rule covers the Scheduler's existing names too, and an upstream name is
letters and digits only so that no name's settings can be mistaken for another's.

Everything else (storage, telemetry, Key Vault's address, request size limits, the probe
schedule) is the process's and shared by every upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_UPSTREAM = "scheduler"
UPSTREAMS_SETTING = "MCP_UPSTREAMS"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,31}$")

# Names whose settings would collide with the process's own (`HEALTH_...`, `KEYVAULT_...`), or that
# would read as something else on a route.
RESERVED_NAMES = frozenset(
    {
        "azure",
        "azurewebjobsstorage",
        "applicationinsights",
        "functions",
        "health",
        "idempotency",
        "keyvault",
        "max",
        "mcp",
        "otel",
        "python",
        "tools",
        "use",
        "website",
        "websites",
    }
)

# BridgeSettings field → the setting's name after the upstream's prefix. For the Scheduler the
# setting is the field's own upper-case name (SCHEDULER_ENDPOINTS, KEYVAULT_API_KEY_SECRET).
PER_UPSTREAM_FIELDS: dict[str, str] = {
    "scheduler_allow_private_endpoints": "ALLOW_PRIVATE_ENDPOINTS",
    "scheduler_endpoints": "ENDPOINTS",
    "scheduler_auth": "AUTH",
    "scheduler_token_scope": "TOKEN_SCOPE",
    "scheduler_client_id": "CLIENT_ID",
    "scheduler_api_key": "API_KEY",
    "scheduler_client_id_header": "CLIENT_ID_HEADER",
    "scheduler_api_key_header": "API_KEY_HEADER",
    "scheduler_allowed_tools": "ALLOWED_TOOLS",
    "scheduler_timeout_seconds": "TIMEOUT_SECONDS",
    "scheduler_idle_connection_seconds": "IDLE_CONNECTION_SECONDS",
    "scheduler_ca_file": "CA_FILE",
    "scheduler_tool_roles": "TOOL_ROLES",
    "scheduler_key_caller_roles": "KEY_CALLER_ROLES",
    "scheduler_ping_path": "PING_PATH",
    "scheduler_strict_arguments": "STRICT_ARGUMENTS",
    "keyvault_client_id_secret": "KEYVAULT_CLIENT_ID_SECRET",
    "keyvault_api_key_secret": "KEYVAULT_API_KEY_SECRET",
}

_SCHEDULER_NAMES = {field.upper(): field for field in PER_UPSTREAM_FIELDS}
_SCHEDULER_NAME_IN_TEXT = re.compile(
    r"\b(" + "|".join(sorted(_SCHEDULER_NAMES, key=len, reverse=True)) + r")\b"
)


def setting_name(upstream: str, field: str) -> str:
    """The app setting that holds `field` for `upstream` (`rooms`, `scheduler_auth` → `ROOMS_AUTH`)."""
    if upstream == DEFAULT_UPSTREAM or field not in PER_UPSTREAM_FIELDS:
        return field.upper()
    return f"{upstream.upper()}_{PER_UPSTREAM_FIELDS[field]}"


def rename_for(upstream: str, text: str) -> str:
    """`text` (a setting's name, or a message naming Scheduler settings) with every per-upstream
    Scheduler setting name replaced by `upstream`'s."""
    if upstream == DEFAULT_UPSTREAM:
        return text
    return _SCHEDULER_NAME_IN_TEXT.sub(lambda match: setting_name(upstream, _SCHEDULER_NAMES[match[1]]), text)


def default_secret_names(upstream: str) -> dict[str, str]:
    """Key Vault secret names an upstream's credentials have unless its settings name others."""
    prefix = upstream.upper()
    return {
        "keyvault_client_id_secret": f"{prefix}-CLIENT-ID",
        "keyvault_api_key_secret": f"{prefix}-API-KEY",
    }


def name_problems(raw: str | None) -> list[str]:
    """What is wrong with `MCP_UPSTREAMS`, one message per problem; [] when it is fine."""
    problems: list[str] = []
    seen: set[str] = set()
    for part in _parts(raw):
        name = part.lower()
        if not NAME_PATTERN.fullmatch(name):
            problems.append(f"{part!r} is not an upstream name (a letter, then up to 31 letters or digits)")
        elif name in RESERVED_NAMES:
            problems.append(f"{name!r} is reserved: its settings would collide with the bridge's own")
        elif name in seen:
            problems.append(f"{name!r} is listed twice (names are case-insensitive)")
        seen.add(name)
    return problems


def upstream_names(raw: str | None) -> tuple[str, ...]:
    """The valid names in `MCP_UPSTREAMS`, lower case, the Scheduler first whether listed or not.
    Lenient: invalid entries are left out here and reported by `name_problems`."""
    names = [DEFAULT_UPSTREAM]
    for part in _parts(raw):
        name = part.lower()
        if NAME_PATTERN.fullmatch(name) and name not in RESERVED_NAMES and name not in names:
            names.append(name)
    return tuple(names)


def upstream_values(upstream: str, values: dict[str, str], fields: Iterable[str]) -> dict[str, str]:
    """The settings model's input for `upstream`, from every setting (lower-case names): its own
    per-upstream settings in the Scheduler's fields, the shared ones as they are."""
    if upstream == DEFAULT_UPSTREAM:
        return {name: values[name] for name in fields if name in values}
    own = {**default_secret_names(upstream)}
    shared: dict[str, str] = {}
    for field in fields:
        if field in PER_UPSTREAM_FIELDS:
            value = values.get(setting_name(upstream, field).lower())
            if value is not None:
                own[field] = value
        elif field in values:
            shared[field] = values[field]
    return {**shared, **own}


def per_upstream_setting_names(upstreams: Iterable[str]) -> set[str]:
    """Every lower-case setting name the non-default upstreams read."""
    return {
        setting_name(upstream, field).lower()
        for upstream in upstreams
        if upstream != DEFAULT_UPSTREAM
        for field in PER_UPSTREAM_FIELDS
    }


def _parts(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]
