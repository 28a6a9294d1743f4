"""The live OpenAPI document: rebuilt when the catalog changes, served with a content ETag.

The tools come from `SchedulerBridge.list_tools()`, the same listing (allowlist, failover, cache,
`tools/list_changed`) that calls use, so the document cannot promise a tool the bridge would not
call. While the listing is unchanged (the same `Tool` objects) the rendered bytes are reused; a
re-listing with the same content renders the same bytes and so the same ETag.

When no Scheduler answers, the last document this instance rendered is served as it was; an
instance that never listed the tools answers the listing's problem (503 `unavailable`, ...), so a
client generator fails loudly instead of producing a client without the tools.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..problems import Problem

if TYPE_CHECKING:
    from mcp_types import Tool

    from ..bridge import SchedulerBridge

_LOGGER = logging.getLogger(__name__)

CACHE_CONTROL = "private, no-cache"
"""Clients may keep the document but revalidate each use; the revalidation is a 304 with no body."""


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
    """The rendered document for the tools last listed, kept until the listing changes."""

    def __init__(self) -> None:
        self._tools: tuple[Tool, ...] = ()
        self._health_auth = ""
        self._rendered: Rendered | None = None
        self._bridge: weakref.ref[SchedulerBridge] | None = None

    async def current(self, bridge: SchedulerBridge, *, health_auth: str) -> Rendered:
        if self._bridge is None or self._bridge() is not bridge:  # a new bridge: new settings
            self._rendered, self._tools, self._bridge = None, (), weakref.ref(bridge)
        try:
            _, listed = await bridge.list_tools()
        except Problem as problem:
            if self._rendered is None:
                raise
            _LOGGER.warning("Serving the last OpenAPI document: listing the tools failed (%s)", problem.slug)
            return self._rendered
        return self.render([entry.tool for entry in listed], health_auth=health_auth)

    def render(self, tools: Sequence[Tool], *, health_auth: str) -> Rendered:
        key = tuple(tools)
        cached = self._rendered
        if cached is not None and health_auth == self._health_auth and _same(key, self._tools):
            return cached
        from ..openapi import document

        body = json.dumps(
            document(health_auth=health_auth, tools=key), separators=(",", ":"), ensure_ascii=False
        ).encode()
        rendered = Rendered(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', len(key))
        if cached is None or cached.etag != rendered.etag:
            _LOGGER.info("OpenAPI document rebuilt: %d tool operation(s), ETag %s", len(key), rendered.etag)
        self._tools, self._health_auth, self._rendered = key, health_auth, rendered
        return rendered


def _same(new: tuple[Tool, ...], old: tuple[Tool, ...]) -> bool:
    # Identity, not equality: comparing schemas would cost what rendering saves.
    return len(new) == len(old) and all(a is b for a, b in zip(new, old, strict=True))


live_document = LiveDocument()
"""The process's one document, like the process's one bridge."""
