"""What the HTTP functions ask about a caller: who it is, and whether it may call a tool.

    caller = caller_of(req, settings)          # 401 invalid-principal if the platform's is unreadable
    require(caller, name, settings)            # 403 caller-not-allowed, before the Scheduler is asked
    tools = [t for t in tools if may_call(caller, t.name, settings)]

With `SCHEDULER_TOOL_ROLES` unset every caller may call every tool the allowlist lets through, as
before roles existed. The allowlist (`SCHEDULER_ALLOWED_TOOLS`) is the bridge's own rule and is
checked on the call path; roles say which of those tools a caller may use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..config.tool_roles import ToolRoles
from ..problems import CallerNotAllowed
from .principal import Caller, read_caller


class BridgeSettings(Protocol):
    """What this module reads of `settings.BridgeSettings` (which imports this room, not back)."""

    @property
    def website_auth_enabled(self) -> bool: ...
    @property
    def key_caller_roles(self) -> frozenset[str]: ...
    @property
    def tool_roles(self) -> ToolRoles | None: ...


def caller_of(headers: Mapping[str, str], settings: BridgeSettings) -> Caller:
    """The caller of a request with these headers (`func.HttpRequest.headers`)."""
    return read_caller(headers, trusted=settings.website_auth_enabled, key_roles=settings.key_caller_roles)


def may_call(caller: Caller, tool: str, settings: BridgeSettings) -> bool:
    policy = settings.tool_roles
    return policy is None or policy.allows(caller.roles, tool)


def may_call_any(caller: Caller, settings: BridgeSettings) -> bool:
    """Whether `caller` may call at least one tool (the generic tool route is of use to it)."""
    policy = settings.tool_roles
    return policy is None or policy.allows_any(caller.roles)


def require(caller: Caller, tool: str, settings: BridgeSettings) -> None:
    """Raise `CallerNotAllowed` naming the roles that would do, unless `caller` may call `tool`."""
    policy = settings.tool_roles
    if policy is None or policy.allows(caller.roles, tool):
        return
    needed = sorted(policy.roles_for(tool))
    who = "this key caller" if not caller.is_principal else "this caller"
    if needed:
        detail = f"{who} holds no role that may call {tool!r}; any of these would: {', '.join(needed)}"
    else:
        detail = f"no role may call {tool!r} on this bridge (SCHEDULER_TOOL_ROLES names none)"
    raise CallerNotAllowed(detail, tool=tool, required_roles=needed)
