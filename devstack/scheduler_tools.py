"""The Scheduler's four MCP tools, with the input schemas and annotations the real service publishes.

The bridge builds its HTTP surface from what `tools/list` returns, so these
schemas are deliberately rich (types, required, lengths, patterns, bounds,
enums) and the annotations are honest: scheduling is neither read-only nor
idempotent (a retry books a second conversation), cancelling is destructive
but idempotent, and the two readers are read-only.

Every result carries `region`: the region that served the call. With several
regions sharing one store that is how a test sees which region answered.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from devstack.conversations import Conversation, ConversationStore
from devstack.scheduler_counters import SchedulerCounters

_LOGGER = logging.getLogger(__name__)

ISO_DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$"
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

Participant = Annotated[
    str, Field(min_length=1, max_length=320, description="Participant e-mail or user id.")
]
ConversationId = Annotated[
    str, Field(pattern=CONVERSATION_ID_PATTERN, description="Id returned by scheduleConversation.")
]


class ScheduledConversation(BaseModel):
    """Result of scheduleConversation."""

    conversation_id: str
    status: Literal["scheduled"]
    participants: list[str]
    start_time: str
    topic: str
    duration_minutes: int
    region: str


class ConversationStatusResult(BaseModel):
    """Result of getConversationStatus."""

    conversation_id: str
    status: Literal["scheduled", "cancelled"]
    start_time: str
    topic: str
    region: str
    created_in_region: str


class CancelledConversation(BaseModel):
    """Result of cancelConversation (the same for a repeat cancel: the call is idempotent)."""

    conversation_id: str
    status: Literal["cancelled"]
    reason: str | None
    region: str


class ConversationSummary(BaseModel):
    """One row of listConversations."""

    conversation_id: str
    status: Literal["scheduled", "cancelled"]
    start_time: str
    topic: str
    participants: list[str]


class ConversationList(BaseModel):
    """Result of listConversations."""

    conversations: list[ConversationSummary]
    count: int
    region: str


def register_scheduler_tools(
    server: MCPServer, *, store: ConversationStore, counters: SchedulerCounters, region: str
) -> None:
    """Register the four Scheduler tools on `server`, sharing one store and one set of counters."""

    @server.tool(
        name="scheduleConversation",
        title="Schedule a conversation",
        annotations=ToolAnnotations(
            title="Schedule a conversation",
            readOnlyHint=False,
            destructiveHint=False,
            idempotentHint=False,
            openWorldHint=False,
        ),
    )
    async def schedule_conversation(
        participants: Annotated[list[Participant], Field(min_length=1, max_length=50)],
        start_time: Annotated[
            str,
            Field(
                pattern=ISO_DATE_TIME_PATTERN,
                description="ISO-8601 date-time with a UTC offset, in the future.",
                json_schema_extra={"format": "date-time"},
            ),
        ],
        topic: Annotated[str, Field(min_length=1, max_length=200)],
        duration_minutes: Annotated[int, Field(ge=5, le=480)] = 30,
    ) -> ScheduledConversation:
        """Schedule a conversation between participants. Not idempotent: each call books a new one."""
        counters.record_tool_call("scheduleConversation")
        starts_at = _parse_future_start(start_time)
        conversation = Conversation(
            conversation_id=f"conv-{uuid.uuid4().hex}",
            status="scheduled",
            participants=tuple(participants),
            start_time=starts_at.isoformat(),
            topic=topic,
            duration_minutes=duration_minutes,
            region=region,
            created_at=datetime.now(UTC).isoformat(),
        )
        await store.add(conversation)
        _LOGGER.info("scheduled %s in %s", conversation.conversation_id, region)
        return ScheduledConversation(
            conversation_id=conversation.conversation_id,
            status="scheduled",
            participants=list(conversation.participants),
            start_time=conversation.start_time,
            topic=conversation.topic,
            duration_minutes=conversation.duration_minutes,
            region=region,
        )

    @server.tool(
        name="getConversationStatus",
        title="Get conversation status",
        annotations=ToolAnnotations(
            title="Get conversation status",
            readOnlyHint=True,
            destructiveHint=False,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def get_conversation_status(conversation_id: ConversationId) -> ConversationStatusResult:
        """Return the current status of a scheduled conversation."""
        counters.record_tool_call("getConversationStatus")
        conversation = await _require(store, conversation_id)
        return ConversationStatusResult(
            conversation_id=conversation.conversation_id,
            status=conversation.status,
            start_time=conversation.start_time,
            topic=conversation.topic,
            region=region,
            created_in_region=conversation.region,
        )

    @server.tool(
        name="cancelConversation",
        title="Cancel a conversation",
        annotations=ToolAnnotations(
            title="Cancel a conversation",
            readOnlyHint=False,
            destructiveHint=True,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def cancel_conversation(
        conversation_id: ConversationId,
        reason: Annotated[str | None, Field(max_length=500, description="Why it was cancelled.")] = None,
    ) -> CancelledConversation:
        """Cancel a scheduled conversation. Cancelling an already cancelled one changes nothing."""
        counters.record_tool_call("cancelConversation")
        cancelled = await store.cancel(conversation_id, reason)
        if cancelled is None:
            raise ToolError(f"conversation {conversation_id} not found")
        return CancelledConversation(
            conversation_id=cancelled.conversation_id,
            status="cancelled",
            reason=cancelled.cancel_reason,
            region=region,
        )

    @server.tool(
        name="listConversations",
        title="List conversations",
        annotations=ToolAnnotations(
            title="List conversations",
            readOnlyHint=True,
            destructiveHint=False,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def list_conversations(
        status: Literal["scheduled", "cancelled"] | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> ConversationList:
        """List conversations, oldest first, optionally only those with one status."""
        counters.record_tool_call("listConversations")
        conversations = await store.list_by_status(status, limit)
        summaries = [
            ConversationSummary(
                conversation_id=c.conversation_id,
                status=c.status,
                start_time=c.start_time,
                topic=c.topic,
                participants=list(c.participants),
            )
            for c in conversations
        ]
        return ConversationList(conversations=summaries, count=len(summaries), region=region)


def _parse_future_start(start_time: str) -> datetime:
    try:
        starts_at = datetime.fromisoformat(start_time)
    except ValueError as exc:
        raise ToolError(f"start_time {start_time!r} is not an ISO-8601 date-time") from exc
    if starts_at.tzinfo is None:
        raise ToolError("start_time must include a UTC offset (e.g. 'Z' or '+02:00')")
    if starts_at <= datetime.now(UTC):
        raise ToolError(f"start_time {start_time} is in the past")
    return starts_at


async def _require(store: ConversationStore, conversation_id: str) -> Conversation:
    conversation = await store.get(conversation_id)
    if conversation is None:
        raise ToolError(f"conversation {conversation_id} not found")
    return conversation
