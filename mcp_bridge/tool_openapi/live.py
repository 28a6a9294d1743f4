"""The live OpenAPI document: the tools as the bridge lists them now, rendered once per variant.

The tools come from `SchedulerBridge.list_tools()`, the same listing (allowlist, failover, cache,
`tools/list_changed`) that calls use, so the document cannot promise a tool the bridge would not
call. Each variant (what the caller may see: `SCHEDULER_TOOL_ROLES`) keeps its rendered bytes while
its tools are the same `Tool` objects; a re-listing with the same content renders the same bytes
and so the same ETag.

When no Scheduler answers, the last listing this instance got is used as it was; an instance that
never listed the tools answers the listing's problem (503 `unavailable`, ...), so a client
generator fails loudly instead of producing a client without the tools.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..problems import Problem

if TYPE_CHECKING:
    from mcp_types import Tool

    from ..calls.bridge import SchedulerBridge

_LOGGER = logging.getLogger(__name__)

CACHE_CONTROL = "private, no-cache"
"""Clients may keep the document but revalidate each use; the revalidation is a 304 with no body."""
MAX_VARIANTS = 16


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str  # a strong validator, quoted
    operations: int  # per-tool operations in the document

    def matches(self, if_none_match: str | None) -> bool:
        """RFC 9110 §13.1.2: weak comparison; `*` matches any current representation."""
        if not if_none_match:
            return False
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or any(tag.removeprefix("W/") == self.etag for tag in tags)


class LiveDocument:
    """The last listing, and the rendered document of each variant for the tools it had."""

    def __init__(self) -> None:
        self._listing: tuple[Tool, ...] | None = None
        self._bridge: weakref.ref[SchedulerBridge] | None = None
        self._rendered: OrderedDict[Hashable, tuple[tuple[Tool, ...], Rendered]] = OrderedDict()

    async def tools(self, bridge: SchedulerBridge) -> tuple[Tool, ...]:
        """The callable tools (allowlist applied); the last listing while the Scheduler is away."""
        if self._bridge is None or self._bridge() is not bridge:  # a new bridge: new settings
            self._listing, self._bridge = None, weakref.ref(bridge)
            self._rendered.clear()
        try:
            _, listed = await bridge.list_tools()
        except Problem as problem:
            if self._listing is None:
                raise
            _LOGGER.warning(
                "Serving the OpenAPI document from the last listing: listing failed (%s)", problem.slug
            )
            return self._listing
        self._listing = tuple(as_callable(bridge, entry.tool) for entry in listed)
        return self._listing

    def render(
        self,
        tools: tuple[Tool, ...],
        *,
        variant: Hashable,
        build: Callable[[tuple[Tool, ...]], dict[str, Any]],
    ) -> Rendered:
        """The document `build` makes for `tools`, rendered again only when the tools changed."""
        cached = self._rendered.get(variant)
        if cached is not None and _same(tools, cached[0]):
            self._rendered.move_to_end(variant)
            return cached[1]
        body = json.dumps(build(tools), separators=(",", ":"), ensure_ascii=False).encode()
        rendered = Rendered(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', len(tools))
        if cached is None or cached[1].etag != rendered.etag:
            _LOGGER.info(
                "OpenAPI document rendered: %d tool operation(s), ETag %s", len(tools), rendered.etag
            )
        self._rendered[variant] = (tools, rendered)
        self._rendered.move_to_end(variant)
        while len(self._rendered) > MAX_VARIANTS:
            self._rendered.popitem(last=False)
        return rendered


def _same(new: tuple[Tool, ...], old: tuple[Tool, ...]) -> bool:
    # Identity, not equality: comparing schemas would cost what rendering saves.
    return len(new) == len(old) and all(a is b for a, b in zip(new, old, strict=True))


live_document = LiveDocument()
"""The process's one document cache, like the process's one bridge: its listing is the default
upstream's, its rendered documents hold every upstream's tools."""

_listings: dict[str, LiveDocument] = {}


def listing_for(upstream: str, *, default: bool) -> LiveDocument:
    """Whose `tools()` keeps `upstream`'s last listing: the default's is `live_document` itself."""
    if default:
        return live_document
    return _listings.setdefault(upstream, LiveDocument())


def as_callable(bridge: SchedulerBridge, tool: Tool) -> Tool:
    """The tool with the task support a caller meets: a 2026-07-28 server that serves the tasks
    extension lists none, yet may make any call a task (`calls.tasks.effective_support`)."""
    from mcp_types import ToolExecution

    from ..calls.tasks import task_support

    support = task_support(bridge, tool.name)
    listed = tool.execution.task_support if tool.execution is not None else None
    if support in (None, "forbidden") or support == listed:
        return tool
    return tool.model_copy(update={"execution": ToolExecution(task_support=support)})
