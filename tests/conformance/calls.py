"""Small helpers the scenarios share: call a catalog tool through the functions, describe failures."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .peers import ToolCall


async def call(functions: Any, tool: ToolCall) -> Any:
    """POST /api/tools/{tool} through the registered function, as a caller would."""
    return await functions.call_tool(tool.tool, dict(tool.arguments))


def failures(replies: list[Any]) -> list[str]:
    """`status slug: detail` for every reply that is not a 200, for assertion messages."""
    out = []
    for reply in replies:
        if reply.status != 200:
            try:
                problem = reply.json
                out.append(
                    f"{reply.status} {problem.get('type', '').rsplit(':', 1)[-1]}: {problem.get('detail')}"
                )
            except ValueError:
                out.append(f"{reply.status}: {reply.body[:200]!r}")
    return out


def statuses(replies: list[Any]) -> str:
    counts = Counter(reply.status for reply in replies)
    return ", ".join(f"{count}×{status}" for status, count in sorted(counts.items()))
