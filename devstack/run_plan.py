"""What `make run` will start, derived from local.settings.json and the environment, or why it cannot.

Every setting is checked before anything starts, and every problem is collected, so a newcomer
sees all of them at once, one line each, instead of a traceback that names only the first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from devstack.easyauth import EasyAuth

DEFAULT_AUDIENCE = "api://scheduler-devstack"
AZURITE_BLOB_PORT = 10000
SCHEDULER_PATH = "/mcp"
IDENTITY_PATH = "/msi/token"
AUTH_MODES = ("managed_identity", "api_key", "none")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
SERVABLE_ENDPOINTS = (
    f"http://127.0.0.1:<port>{SCHEDULER_PATH} (one region per URL, each on its own port), "
    f"e.g. http://127.0.0.1:5146{SCHEDULER_PATH},http://127.0.0.1:5147{SCHEDULER_PATH}"
)
"""What the devstack can serve as SCHEDULER_ENDPOINTS, for error messages."""


class DevstackConfigError(ValueError):
    """Settings `make run` cannot work with; `problems` holds one line per bad setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DevstackPlan:
    """Ports and secrets for one `make run`, all derived from local.settings.json and the environment."""

    scheduler_ports: tuple[int, ...]
    identity_port: int
    host_port: int
    audience: str
    signing_key: str
    identity_header: str
    scheduler_client_id: str
    scheduler_api_key: str
    function_key: str
    master_key: str
    azurite_port: int | None = None
    """Set when AzureWebJobsStorage is `UseDevelopmentStorage=true`: Azurite's blob port."""
    with_host: bool = True
    easyauth_audience: str | None = None
    """Set when the host plays App Service Authentication (`DEVSTACK_EASYAUTH`): the app's audience."""
    other_upstreams: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """Each upstream of `MCP_UPSTREAMS` beside the Scheduler, and the ports of its regions: the
    devstack serves each region with server-everything (`devstack.processes.start_everything`)."""


def _easyauth_audience(values: Mapping[str, str], problems: list[str]) -> str | None:
    try:
        easyauth = EasyAuth.from_environment({**values, **{k: v for k, v in os.environ.items() if v}})
    except ValueError as exc:
        problems.append(str(exc))
        return None
    return None if easyauth is None else easyauth.audience


def plan_from_settings(values: Mapping[str, str], *, host_port: int) -> DevstackPlan:
    """Derive the plan; environment variables override file values, like app settings do.

    Raises `DevstackConfigError` naming every bad setting. What a setting is needed for depends on
    `SCHEDULER_AUTH`, as in the bridge: the token scope only for `managed_identity`, the client id
    and API key only for `api_key` (the Scheduler stand-in gets generated ones otherwise).
    """
    problems: list[str] = []

    def value(name: str) -> str:
        return (os.environ.get(name) or values.get(name, "")).strip()

    def required(name: str, why: str = "") -> str:
        found = value(name)
        if not found:
            problems.append(f"{name}: not set{why}")
        return found

    auth = value("SCHEDULER_AUTH") or "managed_identity"
    if auth not in AUTH_MODES:
        problems.append(f"SCHEDULER_AUTH: {auth!r} is not one of {', '.join(AUTH_MODES)}")
    elif auth == "none":
        problems.append(
            "SCHEDULER_AUTH: 'none' cannot work against the devstack, whose Scheduler always checks "
            "credentials; use managed_identity or api_key"
        )

    def needed_for(mode: str, name: str) -> str:
        return required(name, f" (needed for SCHEDULER_AUTH={mode})") if auth == mode else value(name)

    scope = needed_for("managed_identity", "SCHEDULER_TOKEN_SCOPE")
    client_id = needed_for("api_key", "SCHEDULER_CLIENT_ID")
    api_key = needed_for("api_key", "SCHEDULER_API_KEY")
    scheduler_ports = _scheduler_ports(required("SCHEDULER_ENDPOINTS"), problems)
    identity_port = _identity_port(required("IDENTITY_ENDPOINT"), problems)
    signing_key = required("DEVSTACK_SIGNING_KEY")
    identity_header = required("IDENTITY_HEADER")
    easyauth_audience = _easyauth_audience(values, problems)
    other_upstreams = _other_upstreams(value, problems)
    if problems:
        raise DevstackConfigError(problems)
    return DevstackPlan(
        scheduler_ports=scheduler_ports,
        identity_port=identity_port or 0,
        host_port=host_port,
        audience=scope.removesuffix("/.default") if scope else DEFAULT_AUDIENCE,
        signing_key=signing_key,
        identity_header=identity_header,
        scheduler_client_id=client_id or "devstack-client",
        scheduler_api_key=api_key or secrets.token_urlsafe(24),
        function_key=value("DEVSTACK_FUNCTION_KEY"),
        master_key=value("DEVSTACK_MASTER_KEY"),
        azurite_port=AZURITE_BLOB_PORT if _uses_development_storage(value("AzureWebJobsStorage")) else None,
        easyauth_audience=easyauth_audience,
        other_upstreams=other_upstreams,
    )


def _other_upstreams(
    value: Callable[[str], str], problems: list[str]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """`MCP_UPSTREAMS` beside the Scheduler: each one's `<NAME>_ENDPOINTS` on loopback ports, and
    `<NAME>_AUTH=none`, since server-everything checks no credentials."""
    found = []
    names = [part.strip().lower() for part in value("MCP_UPSTREAMS").split(",") if part.strip()]
    for name in dict.fromkeys(names):
        if name == "scheduler":
            continue
        prefix = name.upper()
        endpoints = value(f"{prefix}_ENDPOINTS")
        if not endpoints:
            problems.append(
                f"{prefix}_ENDPOINTS: not set (needed for the upstream {name!r} in MCP_UPSTREAMS)"
            )
            continue
        found_problems: list[str] = []
        ports = _scheduler_ports(endpoints, found_problems)
        problems.extend(line.replace("SCHEDULER_ENDPOINTS", f"{prefix}_ENDPOINTS") for line in found_problems)
        if (value(f"{prefix}_AUTH") or "managed_identity") != "none":
            problems.append(
                f"{prefix}_AUTH: the devstack serves {name!r} with server-everything, which checks no "
                "credentials; set none"
            )
        found.append((name, ports))
    return tuple(found)


def _scheduler_ports(raw: str, problems: list[str]) -> tuple[int, ...]:
    endpoints = [endpoint.strip() for endpoint in raw.split(",") if endpoint.strip()]
    ports: list[int] = []
    unservable = []
    for endpoint in endpoints:
        port = _loopback_port(endpoint, SCHEDULER_PATH)
        if port is None:
            unservable.append(endpoint)
        else:
            ports.append(port)
    if unservable:
        problems.append(
            f"SCHEDULER_ENDPOINTS: the devstack cannot serve {', '.join(unservable)}; "
            f"it serves {SERVABLE_ENDPOINTS}"
        )
    elif len(set(ports)) != len(ports):
        problems.append("SCHEDULER_ENDPOINTS: two regions on one port; give each its own port")
    return tuple(ports)


def _identity_port(raw: str, problems: list[str]) -> int | None:
    if not raw:
        return None
    port = _loopback_port(raw, IDENTITY_PATH)
    if port is None:
        problems.append(
            f"IDENTITY_ENDPOINT: the devstack cannot serve {raw}; "
            f"it serves http://127.0.0.1:<port>{IDENTITY_PATH}, e.g. http://127.0.0.1:5148{IDENTITY_PATH}"
        )
    return port


def _loopback_port(url: str, path: str) -> int | None:
    """The port of an http URL on loopback with an explicit port and `path`, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS or port is None:
        return None
    return port if parts.path.rstrip("/") == path else None


def _uses_development_storage(storage: str) -> bool:
    return storage.replace(" ", "").lower() == "usedevelopmentstorage=true"
