"""The HTTP API's bodies as pydantic models: what the handlers serialize and what OpenAPI describes.

One definition serves both, so the published document cannot drift from the wire. Field order is
the wire's key order; camelCase names are aliases of snake_case fields.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_LOGGER = logging.getLogger(__name__)


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def to_json(self) -> str:
        """The body as the bridge sends it: compact separators, every member, wire names.

        pydantic's own serializer is four times as fast as `json.dumps` of a dump (about 20 µs a
        call saved); it refuses a lone surrogate, which a Scheduler's JSON can carry as `\\ud800`,
        and then `json.dumps` writes it escaped as before."""
        try:
            return self.model_dump_json(by_alias=True)
        except ValueError:  # PydanticSerializationError
            return json.dumps(self.model_dump(mode="json", by_alias=True), separators=(",", ":"))


ContentBlock = dict[str, Any]
"""An MCP content block, passed through as the Scheduler sent it (`type` plus its fields)."""


class ToolCallResult(_Body):
    """200 from `POST /api/tools/{tool_name}`."""

    tool: str = Field(description="The tool that was called.")
    endpoint: str = Field(description="The Scheduler endpoint that answered.")
    content: list[ContentBlock] = Field(description="The tool's MCP content blocks.")
    structured_content: dict[str, Any] | None = Field(
        alias="structuredContent", description="The tool's structured result, if it gave one."
    )
    is_error: Literal[False] = Field(default=False, alias="isError")


OperationStatus = Literal["NotStarted", "Running", "Succeeded", "Failed", "Canceled"]


class OperationProgress(_Body):
    percent_complete: float | None = Field(
        default=None, alias="percentComplete", description="0-100, when the server gives a total."
    )
    status_message: str | None = Field(
        default=None, alias="statusMessage", description="The server's words on where the task is."
    )


class InputRequest(_Body):
    """A request for input the task is waiting on; the bridge cannot answer it yet (cancel it)."""

    kind: str = Field(description="`elicitation`, `sampling`, `roots` or `unknown`.")
    message: str | None = Field(default=None, description="What the server asked, in its words.")


class OperationMonitor(_Body):
    """The status monitor of a long-running operation (Azure REST API guidelines): the body of
    `GET /api/operations/{operation_id}`, and of a 202 that started one."""

    id: str = Field(description="The operation's id: opaque, unguessable, only its caller may read it.")
    status: OperationStatus
    tool: str
    created_date_time: str = Field(alias="createdDateTime", description="ISO 8601, UTC.")
    last_updated_date_time: str = Field(alias="lastUpdatedDateTime", description="ISO 8601, UTC.")
    progress: OperationProgress | None = None
    input_required: list[InputRequest] | None = Field(
        default=None,
        alias="inputRequired",
        description="Set while the task waits for input (MCP `input_required`); status stays Running.",
    )
    result: ToolCallResult | None = Field(
        default=None, description="With Succeeded: the body a synchronous 200 would have carried."
    )
    error: ProblemDetails | None = Field(
        default=None, description="With Failed: the problem a synchronous call would have answered."
    )

    def to_json(self) -> str:
        """Members that do not apply are left out (the Azure guidelines' monitors), not sent as null;
        `result` stays byte for byte the body of a synchronous 200 (its nulls included)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.result is not None:
            body["result"] = self.result.model_dump(mode="json", by_alias=True)
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


class ToolDescription(_Body):
    """One tool as `tools/list` described it."""

    name: str
    title: str | None
    description: str | None
    input_schema: dict[str, Any] = Field(alias="inputSchema", description="The tool's JSON Schema.")
    annotations: dict[str, Any] = Field(description="MCP tool annotations (readOnlyHint, ...).")


class ToolList(_Body):
    """200 from `GET /api/tools`: the answering endpoint's tools, allowlist applied."""

    endpoint: str
    tools: list[ToolDescription]


class ConversationStatus(_Body):
    """200 from the two status routes."""

    conversation_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    status: dict[str, Any] | str = Field(
        description="The status tool's structuredContent, else its text content."
    )
    endpoint: str


class Violation(_Body):
    pointer: str = Field(description="JSON pointer into the arguments; '/' is the object itself.")
    message: str
    suggestion: str | None = Field(
        default=None, description="With an unknown argument: the closest name the schema declares."
    )


class SettingProblem(_Body):
    name: str = Field(description="The app setting's name.")
    problem: str


class AttemptCause(_Body):
    """One failed attempt: where, and what went wrong there, in a few words."""

    endpoint: str
    cause: str


class ProblemDetails(_Body):
    """An RFC 9457 problem (`application/problem+json`). Members beyond the standard five depend
    on the `type`; unknown members may appear and should be ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    type: str = Field(description="`urn:problem:scheduler-bridge:<slug>`, one per kind of failure.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = Field(default=None, description="The request path, never its query string.")
    tool: str | None = None
    endpoint: str | None = None
    violations: list[Violation] | None = Field(default=None, description="With invalid-arguments.")
    settings: list[SettingProblem] | None = Field(default=None, description="With misconfigured.")
    content: list[ContentBlock] | None = Field(default=None, description="With tool-error.")
    max_bytes: int | None = Field(
        default=None, description="With payload-too-large and upstream-response-too-large."
    )
    timeout_seconds: int | float | None = Field(default=None, description="With deadline-exceeded.")
    jsonrpc_code: int | None = Field(default=None, description="With upstream-error from a JSON-RPC error.")
    server_message: str | None = Field(
        default=None, description="With input-required: what the Scheduler asked for, in its words."
    )
    attempts: list[AttemptCause] | None = Field(
        default=None, description="With 502/503 after failed attempts: each attempt's endpoint and cause."
    )

    @classmethod
    def render(cls, body: dict[str, Any]) -> str:
        """A problem body as the bridge sends it: only the members set, in order."""
        try:
            problem = cls.model_validate(body)
        except ValueError:  # never let rendering an error fail the error path itself
            _LOGGER.warning("A problem body did not match ProblemDetails; sent as built")
            return json.dumps(body)
        return json.dumps(problem.model_dump(mode="json", by_alias=True, exclude_unset=True))


class HealthView(_Body):
    """200 (usable) or 503 (no endpoint usable) from `GET /api/health`."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    status: Literal["ok", "unavailable"]
    active_endpoint: str | None
    panic: bool = Field(description="True when no endpoint is healthy and all are tried in order.")
    endpoints: list[dict[str, Any]] = Field(description="Each endpoint's probe and passive health.")


OperationMonitor.model_rebuild()  # its error member is a ProblemDetails, defined below it
