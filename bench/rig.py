"""What every in-process section shares: the stack, a token, the call's arguments, the bridge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import reset_bridge

from .callers import BridgeCaller, Identity
from .stack import AUDIENCE, Stack, apply_env


@dataclass
class Rig:
    stack: Stack
    token: str
    arguments: dict[str, Any]
    bridge: BridgeCaller
    era: str = ""

    async def use_era(self, era: str) -> None:
        """Point a fresh shared bridge at `era`'s endpoints (nothing connected, no token yet)."""
        apply_env(self.stack.bridge_env(era))
        reset_settings()
        await reset_bridge()
        self.era = era

    def raw_url(self) -> str:
        return self.stack.primary(self.era).mcp_url

    def identity(self) -> Identity:
        return Identity(self.stack.identity.token_url, self.stack.identity_header, AUDIENCE)


async def build_rig(stack: Stack) -> Rig:
    """Schedule one conversation (all regions share the store) and read its status in every section."""
    caller = BridgeCaller()
    rig = Rig(stack, stack.fetch_token(), {}, caller)
    await rig.use_era("modern")
    start = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    args = {"participants": ["alice@example.com", "bob@example.com"], "start_time": start, "topic": "bench"}
    status, body = await caller.invoke(args, tool="scheduleConversation")
    if status != 200:
        raise RuntimeError(f"scheduling the bench conversation failed ({status}): {body[:500]!r}")
    rig.arguments = {"conversation_id": json.loads(body)["structuredContent"]["conversation_id"]}
    return rig
