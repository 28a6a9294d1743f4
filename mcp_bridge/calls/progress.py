"""Progress of a running `tools/call`: the bridge asks for it on every call, and hands it to a watcher.

Every `tools/call` carries a `progressToken` (the SDK sends one whenever a progress callback is
given), so a server that follows the spec reports progress. Most callers do not watch: their
notifications are counted and dropped. A caller that asked for Server-Sent Events watches the call
(`watching`): each `notifications/progress` becomes a `Progress` handed to its sink, in order.

The sink is picked when the call starts, in the caller's task: the SDK runs progress callbacks in
its own receive loop, where the caller's context variables are not visible.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Progress:
    """One `notifications/progress`: how far, of how much (when the server knows), and what it says."""

    progress: float
    total: float | None = None
    message: str | None = None

    @property
    def percent_complete(self) -> float | None:
        if not self.total or self.total <= 0:
            return None
        return round(min(100.0, max(0.0, 100.0 * self.progress / self.total)), 1)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"progress": self.progress}
        if self.total is not None:
            body["total"] = self.total
            body["percentComplete"] = self.percent_complete
        if self.message is not None:
            body["message"] = self.message
        return body


ProgressSink = Callable[[Progress], None]
_sink: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar(
    "bridge_progress_sink", default=None
)


@contextlib.contextmanager
def watching(sink: ProgressSink) -> Iterator[None]:
    """Send the progress of every `tools/call` made inside this block (in this task) to `sink`."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


async def _unwatched(progress: float, total: float | None, message: str | None) -> None:
    """Nobody watches this call: the notification is dropped (the token was still sent)."""


def progress_callback() -> ProgressCallback:
    """The callback for a `tools/call` starting now: its watcher's, or the shared one that drops."""
    sink = _sink.get()
    if sink is None:
        return _unwatched

    async def deliver(progress: float, total: float | None, message: str | None) -> None:
        sink(Progress(progress, total, message))

    return deliver
