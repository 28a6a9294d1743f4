"""Which roles may call which tool: `SCHEDULER_TOOL_ROLES` and `SCHEDULER_KEY_CALLER_ROLES` as values.

    SCHEDULER_TOOL_ROLES=getConversationStatus:Scheduler.Read,listConversations:Scheduler.Read,*:Scheduler.Write

Each `tool:role` pair lets one role call one tool; a tool may appear in several pairs, and `*`
lets a role call every tool. So the roles that may call a tool are its own plus those of `*`: in
the example a writer may call everything, a reader the two read tools, and a tool nobody named is
closed to every caller without `Scheduler.Write`. Roles compare exactly, case included, as Entra
ID issues them.

The parsers raise `ValueError` with a message that names a pair by its position, never by its
value (a setting may come from Key Vault), and `settings` turns that into `500 misconfigured`.
This module imports nothing from the bridge: `settings` imports it while parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

ANY_TOOL = "*"
MAX_ROLE_LENGTH = 256
MAX_TOOL_LENGTH = 128

# A role is one visible token without commas (they separate entries); Entra ID refuses spaces in
# app role values. A tool name has no ':' either, which is what splits a pair.
_ROLE = re.compile(rf"[^\s,]{{1,{MAX_ROLE_LENGTH}}}")
_TOOL = re.compile(rf"[^\s,:]{{1,{MAX_TOOL_LENGTH}}}")


@dataclass(frozen=True, slots=True)
class ToolRoles:
    """The parsed `SCHEDULER_TOOL_ROLES`: roles per tool, and the roles that may call any tool."""

    by_tool: Mapping[str, frozenset[str]]
    any_tool: frozenset[str]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> ToolRoles:
        by_tool: dict[str, set[str]] = {}
        for tool, role in pairs:
            by_tool.setdefault(tool, set()).add(role)
        any_tool = frozenset(by_tool.pop(ANY_TOOL, ()))
        return cls(MappingProxyType({t: frozenset(r) for t, r in by_tool.items()}), any_tool)

    def roles_for(self, tool: str) -> frozenset[str]:
        """Every role that may call `tool` (its own and `*`'s); empty when nobody may."""
        own = self.by_tool.get(tool)
        return self.any_tool if own is None else own | self.any_tool

    def allows(self, roles: frozenset[str], tool: str) -> bool:
        """Whether a caller holding `roles` may call `tool`."""
        if not roles:
            return False
        if not roles.isdisjoint(self.any_tool):
            return True
        own = self.by_tool.get(tool)
        return own is not None and not roles.isdisjoint(own)

    def allows_any(self, roles: frozenset[str]) -> bool:
        """Whether a caller holding `roles` may call at least one tool."""
        return bool(roles) and any(not roles.isdisjoint(r) for r in (self.any_tool, *self.by_tool.values()))


def parse_tool_roles(value: str) -> tuple[tuple[str, str], ...]:
    """`tool:role` pairs from the setting's text, in order, duplicates dropped.

    Raises `ValueError` naming the first bad pair by position; an empty setting is not parsed here
    (blank means unset, and the caller decides that)."""
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        tool, colon, role = entry.partition(":")
        tool, role = tool.strip(), role.strip()
        if not colon:
            raise ValueError(f"entry {position} is not tool:role (no ':')")
        if not _TOOL.fullmatch(tool):
            raise ValueError(
                f"entry {position}: the tool must be '*' or a name of 1 to {MAX_TOOL_LENGTH} "
                "characters without spaces or ':'"
            )
        if not _ROLE.fullmatch(role):
            raise ValueError(
                f"entry {position}: the role must be 1 to {MAX_ROLE_LENGTH} characters without spaces"
            )
        if (tool, role) not in pairs:
            pairs.append((tool, role))
    if not pairs:
        raise ValueError("no tool:role pair in the setting")
    return tuple(pairs)


def parse_role_list(value: str) -> frozenset[str]:
    """Comma-separated roles; raises `ValueError` naming a bad one by position."""
    roles: set[str] = set()
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        if not _ROLE.fullmatch(entry):
            raise ValueError(f"role {position} must be 1 to {MAX_ROLE_LENGTH} characters without spaces")
        roles.add(entry)
    if not roles:
        raise ValueError("no role in the setting")
    return frozenset(roles)
