"""What reached the reference Scheduler, counted so tests can prove it.

Tool calls are counted inside the tool functions, i.e. only when the tool
really executed - a request refused by auth, a fault, or argument validation
never counts. Everything runs on one event loop, so plain ints suffice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

_LOGGER = logging.getLogger(__name__)

SCHEDULER_TOOL_NAMES: tuple[str, ...] = (
    "scheduleConversation",
    "getConversationStatus",
    "cancelConversation",
    "listConversations",
    "findCommonSlot",
)


def _zeroed_tool_calls() -> dict[str, int]:
    return dict.fromkeys(SCHEDULER_TOOL_NAMES, 0)


@dataclass
class SchedulerCounters:
    """Counters behind `GET /_devstack/counters`."""

    region: str
    tool_calls: dict[str, int] = field(default_factory=_zeroed_tool_calls)
    mcp_requests: int = 0
    unauthorized: int = 0
    sessions_created: int = 0
    faults_injected: int = 0

    def record_tool_call(self, tool_name: str) -> None:
        self.tool_calls[tool_name] = self.tool_calls.get(tool_name, 0) + 1

    def reset(self) -> None:
        self.tool_calls = _zeroed_tool_calls()
        self.mcp_requests = 0
        self.unauthorized = 0
        self.sessions_created = 0
        self.faults_injected = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "tool_calls": dict(self.tool_calls),
            "mcp_requests": self.mcp_requests,
            "unauthorized": self.unauthorized,
            "sessions_created": self.sessions_created,
            "faults_injected": self.faults_injected,
        }
