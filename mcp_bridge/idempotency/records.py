"""What a key's record holds, and which answers are kept.

A record is one small JSON document: the claim while the call runs (who claimed it, the call's
fingerprint, its deadline), then the final answer (status, the headers that matter, the body
bytes). It never holds the arguments, the key itself, a token or a function key: the body is the
answer the bridge sent, which never carries one either.

Kept: every answer from a call that may have reached the Scheduler: 200, 422 `tool-error`, 502
(`outcome-unknown` included), 504. Not kept, so a retry may run the call: answers that provably
never reached it: 400 (`bad-request`, `invalid-arguments`), 403, 404, 413, 500 `misconfigured`, and
503 (the bridge answers 503 for a tool that is not idempotent only when nothing was sent).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import azure.functions as func

_LOGGER = logging.getLogger(__name__)

VERSION = 1
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("content-type", "cache-control", "retry-after", "operation-location", "preference-applied")
_NEVER_REACHED = frozenset({400, 403, 404, 413, 429, 503})
_MISCONFIGURED = b"urn:problem:scheduler-bridge:misconfigured"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as stored: replayed byte for byte."""

    status: int
    body: bytes
    mimetype: str
    charset: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, response: func.HttpResponse) -> Answer:
        kept = {name: value for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS}
        return cls(response.status_code, response.get_body(), response.mimetype, response.charset, kept)

    def response(self, *, replayed: bool) -> func.HttpResponse:
        headers = {**self.headers, REPLAYED_HEADER: "true"} if replayed else dict(self.headers)
        return func.HttpResponse(
            body=self.body,
            status_code=self.status,
            headers=headers,
            mimetype=self.mimetype,
            charset=self.charset,
        )

    @property
    def kept(self) -> bool:
        """Whether a repeat must get this answer (the call may have reached the Scheduler)."""
        if self.status in _NEVER_REACHED:
            return False
        return not (self.status == 500 and _MISCONFIGURED in self.body)


@dataclass(frozen=True)
class Record:
    """One key's state: `running` (claimed) or `done` (an answer to replay)."""

    state: Literal["running", "done"]
    fingerprint: str
    tool: str
    claim: str  # a random id of the request that claimed the key
    deadline: float  # epoch seconds: the claimed call gives up by then
    expires_at: float  # epoch seconds: after this the key is free again
    answer: Answer | None = None

    def finished(self, answer: Answer, *, expires_at: float) -> Record:
        return replace(self, state="done", answer=answer, expires_at=expires_at)

    def encode(self) -> bytes:
        # By hand: dataclasses.asdict deep-copies, and cost a third of a millisecond per call.
        answer = self.answer
        data: dict[str, Any] = {
            "v": VERSION,
            "state": self.state,
            "fingerprint": self.fingerprint,
            "tool": self.tool,
            "claim": self.claim,
            "deadline": self.deadline,
            "expires_at": self.expires_at,
            "answer": None
            if answer is None
            else {
                "status": answer.status,
                "body": base64.b64encode(answer.body).decode("ascii"),
                "mimetype": answer.mimetype,
                "charset": answer.charset,
                "headers": answer.headers,
            },
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Record:
        """Raises `ValueError` for anything that is not a record this version wrote."""
        try:
            raw = json.loads(data)
            if raw.pop("v") != VERSION:
                raise ValueError("another record version")
            answer = raw.pop("answer")
            if answer is not None:
                answer["body"] = base64.b64decode(answer["body"], validate=True)
                answer = Answer(**answer)
            record = cls(**raw, answer=answer)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an idempotency record ({type(exc).__name__})") from None
        if record.state not in ("running", "done") or (record.state == "done") != (answer is not None):
            raise ValueError("not an idempotency record (state)")
        return record
