"""Where the reference Scheduler keeps conversations: in memory, or in a sqlite file several regions share.

Real Scheduler regions sit on one geo-replicated database, so a conversation
scheduled through eastus can be read or cancelled through westus. The sqlite
store stands in for that: each region process opens the same file. sqlite
calls block, so the store runs them in a worker thread and opens a short-lived
connection per operation (sqlite connections must not hop threads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

_LOGGER = logging.getLogger(__name__)

ConversationStatus = Literal["scheduled", "cancelled"]


@dataclass(frozen=True)
class Conversation:
    """One scheduled conversation as the Scheduler records it."""

    conversation_id: str
    status: ConversationStatus
    participants: tuple[str, ...]
    start_time: str
    topic: str
    duration_minutes: int
    region: str
    created_at: str
    cancel_reason: str | None = None


class ConversationStore(Protocol):
    """The storage the Scheduler's tools need; both implementations are safe to share across requests."""

    async def add(self, conversation: Conversation) -> None: ...

    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def cancel(self, conversation_id: str, reason: str | None) -> Conversation | None: ...

    async def list_by_status(self, status: ConversationStatus | None, limit: int) -> list[Conversation]: ...


class InMemoryConversationStore:
    """A dict behind a lock: state that lives as long as one Scheduler process."""

    def __init__(self) -> None:
        self._conversations: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    async def add(self, conversation: Conversation) -> None:
        with self._lock:
            self._conversations[conversation.conversation_id] = conversation

    async def get(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            return self._conversations.get(conversation_id)

    async def cancel(self, conversation_id: str, reason: str | None) -> Conversation | None:
        with self._lock:
            existing = self._conversations.get(conversation_id)
            if existing is None or existing.status == "cancelled":
                return existing
            cancelled = replace(existing, status="cancelled", cancel_reason=reason)
            self._conversations[conversation_id] = cancelled
            return cancelled

    async def list_by_status(self, status: ConversationStatus | None, limit: int) -> list[Conversation]:
        with self._lock:
            matching = [c for c in self._conversations.values() if status is None or c.status == status]
        return sorted(matching, key=lambda c: c.created_at)[:limit]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    participants TEXT NOT NULL,
    start_time TEXT NOT NULL,
    topic TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    cancel_reason TEXT
)
"""
_COLUMNS = (
    "conversation_id, status, participants, start_time, topic, duration_minutes, region, created_at, "
    "cancel_reason"
)
_BUSY_TIMEOUT_SECONDS = 10.0


class SqliteConversationStore:
    """Conversations in a sqlite file that every region process of one devstack opens."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(_SCHEMA)
        return connection

    async def add(self, conversation: Conversation) -> None:
        await asyncio.to_thread(self._add, conversation)

    async def get(self, conversation_id: str) -> Conversation | None:
        return await asyncio.to_thread(self._get, conversation_id)

    async def cancel(self, conversation_id: str, reason: str | None) -> Conversation | None:
        return await asyncio.to_thread(self._cancel, conversation_id, reason)

    async def list_by_status(self, status: ConversationStatus | None, limit: int) -> list[Conversation]:
        return await asyncio.to_thread(self._list_by_status, status, limit)

    def _add(self, conversation: Conversation) -> None:
        with closing(self._connect()) as db:
            db.execute(
                f"INSERT INTO conversations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    conversation.conversation_id,
                    conversation.status,
                    json.dumps(list(conversation.participants)),
                    conversation.start_time,
                    conversation.topic,
                    conversation.duration_minutes,
                    conversation.region,
                    conversation.created_at,
                    conversation.cancel_reason,
                ),
            )

    def _get(self, conversation_id: str) -> Conversation | None:
        with closing(self._connect()) as db:
            return _fetch_one(db, conversation_id)

    def _cancel(self, conversation_id: str, reason: str | None) -> Conversation | None:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "UPDATE conversations SET status = 'cancelled', cancel_reason = ? "
                    "WHERE conversation_id = ? AND status != 'cancelled'",
                    (reason, conversation_id),
                )
                found = _fetch_one(db, conversation_id)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return found

    def _list_by_status(self, status: ConversationStatus | None, limit: int) -> list[Conversation]:
        with closing(self._connect()) as db:
            if status is None:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM conversations ORDER BY created_at LIMIT ?",  # noqa: S608
                    (limit,),
                ).fetchall()
            else:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM conversations WHERE status = ? ORDER BY created_at LIMIT ?",  # noqa: S608
                    (status, limit),
                ).fetchall()
        return [_row_to_conversation(row) for row in rows]


def _fetch_one(db: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = ?",  # noqa: S608
        (conversation_id,),
    ).fetchone()
    return None if row is None else _row_to_conversation(row)


def _row_to_conversation(row: tuple[object, ...]) -> Conversation:
    (conversation_id, status, participants, start_time, topic, duration, region, created_at, reason) = row
    return Conversation(
        conversation_id=str(conversation_id),
        status="cancelled" if status == "cancelled" else "scheduled",
        participants=tuple(json.loads(str(participants))),
        start_time=str(start_time),
        topic=str(topic),
        duration_minutes=int(str(duration)),
        region=str(region),
        created_at=str(created_at),
        cancel_reason=None if reason is None else str(reason),
    )
