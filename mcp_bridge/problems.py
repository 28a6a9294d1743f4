"""RFC 9457 problem details: every error the bridge answers with, and how it is rendered.

Each failure is an exception class that knows its HTTP status, so the request path raises and one
place renders. A problem never carries a stack trace, a token or a key: details are built from
what the bridge decided, not from upstream exception text.
"""

from __future__ import annotations

from typing import Any, ClassVar

import azure.functions as func

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "urn:problem:scheduler-bridge:"  # documented in docs/http-api.md, one per slug


class Problem(Exception):
    """An error answered as `application/problem+json` with a fixed status."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body

    def to_response(self, instance: str | None = None) -> func.HttpResponse:
        return func.HttpResponse(
            body=_render(self.to_dict(instance)),
            status_code=self.status,
            headers={"Content-Type": PROBLEM_CONTENT_TYPE, "Cache-Control": "no-store", **self.headers},
        )


class BadRequest(Problem):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class InvalidArguments(BadRequest):
    slug = "invalid-arguments"
    title = "Arguments do not match the tool's input schema"


class InvalidPrincipal(Problem):
    """App Service Authentication vouched for a caller whose principal cannot be read."""

    status = 401
    slug = "invalid-principal"
    title = "The caller's principal could not be read"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class CallerNotAllowed(Problem):
    """The caller holds no role that may call the tool (`SCHEDULER_TOOL_ROLES`)."""

    status = 403
    slug = "caller-not-allowed"
    title = "Caller not allowed"


class ToolNotAllowed(Problem):
    status = 403
    slug = "tool-not-allowed"
    title = "Tool not allowed"


class ToolNotFound(Problem):
    status = 404
    slug = "tool-not-found"
    title = "Unknown tool"


class UnknownServer(Problem):
    """`/api/servers/{server}/...` names no configured upstream; `servers` lists the known ones."""

    status = 404
    slug = "unknown-server"
    title = "Unknown server"


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class ToolFailed(Problem):
    status = 422
    slug = "tool-error"
    title = "The tool reported an error"


class InputRequired(Problem):
    status = 422
    slug = "input-required"
    title = "The tool asked for input the bridge cannot give"


class UpstreamFailed(Problem):
    status = 502
    slug = "upstream-error"
    title = "The Scheduler failed"


class UpstreamResponseTooLarge(UpstreamFailed):
    slug = "upstream-response-too-large"
    title = "The Scheduler's answer was too large"


class OutcomeUnknown(UpstreamFailed):
    slug = "outcome-unknown"
    title = "Outcome at the Scheduler unknown"


class Unavailable(Problem):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: float = 5, **extensions: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)}, **extensions)
        self.retry_after = seconds


class IdentityUnavailable(Unavailable):
    slug = "identity-unavailable"
    title = "Managed identity unavailable"


class DeadlineExceeded(Problem):
    status = 504
    slug = "deadline-exceeded"
    title = "Deadline exceeded"


class Misconfigured(Problem):
    status = 500
    slug = "misconfigured"
    title = "The bridge is misconfigured"


class RequestInProgress(Problem):
    """`Idempotency-Key`: the first request with this key is still running (mcp_bridge.idempotency)."""

    status = 409
    slug = "request-in-progress"
    title = "A request with this Idempotency-Key is in progress"

    def __init__(self, detail: str, *, retry_after: float = 1, **extensions: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)}, **extensions)


class IdempotencyKeyReused(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused for another call"


class IdempotencyStoreUnavailable(Unavailable):
    slug = "idempotency-store-unavailable"
    title = "Idempotency store unavailable"


class OperationNotFound(Problem):
    """Unknown, foreign, malformed and expired operation ids all get this one answer (operations/)."""

    status = 404
    slug = "operation-not-found"
    title = "No such operation"


class OperationFinished(Problem):
    status = 409
    slug = "operation-finished"
    title = "The operation has already finished"


class TooManyOperations(Problem):
    status = 429
    slug = "too-many-operations"
    title = "Too many operations in progress for this caller"

    def __init__(self, detail: str, *, retry_after: float = 5, **extensions: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)}, **extensions)


class RegionUnreachable(Unavailable):
    """The region that holds an operation's task cannot be reached now; the task may still run."""

    slug = "operation-region-unreachable"
    title = "The region holding the operation is unreachable"


class TaskLost(UpstreamFailed):
    """The server no longer knows the task (restarted, session gone, expired): the terminal error
    of an operation, never a reason to start the call again elsewhere."""

    slug = "task-lost"
    title = "The Scheduler lost the operation's task"


def _render(body: dict[str, Any]) -> str:
    # Imported on first use: pydantic is not needed to index the functions (cold start).
    from .models import ProblemDetails

    return ProblemDetails.render(body)
