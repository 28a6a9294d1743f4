"""Progress of tasks, as servers send it: `notifications/progress` for the token a task was started
with, kept per process so the status monitor can show `percentComplete`.

A 2025-11-25 task's `progressToken` stays valid for the task's lifetime, and the server sends its
progress on the session's standalone stream (the devstack Scheduler does; the SDK hands every such
notification to `UpstreamSession`'s message handler). Only the instance holding that session sees
them, so another instance's monitor shows `statusMessage` without a percentage. 2026-07-28 tasks
carry no progress (SEP-2663): there `statusMessage` is all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import mcp_types as types

TOKEN_PREFIX = "bridge-task-"
MAX_KEPT = 10_000

_latest: OrderedDict[str, dict[str, Any]] = OrderedDict()


def token_for(key: str) -> str:
    """The progress token of the operation whose key (digest) is `key`."""
    return TOKEN_PREFIX + key[:32]


def note(notification: types.ProgressNotification) -> None:
    token = notification.params.progress_token
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        return
    params = notification.params
    _latest[token] = {"progress": params.progress, "total": params.total, "message": params.message}
    _latest.move_to_end(token)
    while len(_latest) > MAX_KEPT:
        _latest.popitem(last=False)


def latest(token: str) -> dict[str, Any] | None:
    return _latest.get(token)


def forget(token: str) -> None:
    _latest.pop(token, None)
