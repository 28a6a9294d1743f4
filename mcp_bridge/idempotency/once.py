"""The one flow for a tool call with an `Idempotency-Key`, whichever store holds the records.

1. Claim the key: create its record (`running`, with the call's fingerprint and deadline) only if
   none exists. Exactly one request wins, on any instance.
2. A request that loses finds the record and answers from it: the stored answer byte for byte with
   `Idempotent-Replayed: true` (`done`, same fingerprint); `409 request-in-progress` with
   `Retry-After` (`running`); `422 idempotency-key-reused` (another tool or other arguments).
3. The winner runs the call and stores the answer, unless the answer proves the Scheduler was never
   reached (`records.Answer.kept`): then it deletes its claim and a retry may run the call.

A claim whose instance died never finishes. Once its deadline plus `CLAIM_MARGIN_SECONDS` has
passed it is turned into a stored `502 outcome-unknown`: the call is never run a second time.
A record past its expiry (`IDEMPOTENCY_TTL_SECONDS` after it finished) is free to claim again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import azure.functions as func

from ..problems import (
    IdempotencyKeyReused,
    IdempotencyStoreUnavailable,
    OutcomeUnknown,
    Problem,
    RequestInProgress,
)
from ..redaction import printable
from .keys import fingerprint, storage_name
from .records import Answer, Record
from .stores import Changed, Exists, Store, StoreUnavailable

_LOGGER = logging.getLogger(__name__)

CLAIM_MARGIN_SECONDS = 10.0
"""Past a claim's deadline: clock skew between instances, plus the time to store the answer."""
_CLAIM_ROUNDS = 4


@dataclass(frozen=True)
class Policy:
    """What a call's record needs to know: how long the call may take, how long answers are kept."""

    timeout_seconds: float
    ttl_seconds: float


async def call_once(
    store: Store,
    *,
    key: str,
    tool: str,
    arguments: dict[str, object],
    policy: Policy,
    call: Callable[[], Awaitable[func.HttpResponse]],
    instance: str,
    scope: str = "key",
) -> func.HttpResponse:
    """Run `call` at most once for `key` within the caller's `scope`; every other request with the
    key is answered from the record. Raises `IdempotencyStoreUnavailable` (503) when the store
    cannot be asked."""
    name = storage_name(key, scope=scope)
    now = time.time()
    mine = Record(
        state="running",
        fingerprint=fingerprint(tool, arguments),
        tool=tool,
        claim=uuid.uuid4().hex,
        deadline=now + policy.timeout_seconds,
        expires_at=max(now + policy.ttl_seconds, now + policy.timeout_seconds + CLAIM_MARGIN_SECONDS),
    )
    try:
        outcome = await _claim(store, name, mine, instance)
    except StoreUnavailable as exc:
        _LOGGER.warning("Idempotency store unavailable (%s); the call was not made", exc)
        raise IdempotencyStoreUnavailable(
            "the idempotency store did not answer; the call was not made, retry with the same key"
        ) from None
    if isinstance(outcome, _Claimed):
        return await _run(store, name, outcome, policy, call, instance)
    _LOGGER.info("Idempotency-Key for %s: %s", printable(tool), _describe(outcome))
    if isinstance(outcome, Answer):
        return outcome.response(replayed=True)
    if isinstance(outcome, _Reused):
        return IdempotencyKeyReused(
            "this Idempotency-Key was used for another call (a different tool or other arguments); "
            "use a new key for a new operation",
            tool=tool,
        ).to_response(instance)
    return RequestInProgress(
        "a request with this Idempotency-Key is still running; retry after the time given",
        retry_after=outcome.retry_after,
        tool=tool,
    ).to_response(instance)


@dataclass(frozen=True)
class _Claimed:
    record: Record
    etag: str


@dataclass(frozen=True)
class _Running:
    retry_after: float


class _Reused:
    """The key's record is for another tool or other arguments."""


async def _claim(
    store: Store, name: str, mine: Record, instance: str
) -> _Claimed | _Running | _Reused | Answer:
    for _ in range(_CLAIM_ROUNDS):
        try:
            return _Claimed(mine, await store.create(name, mine.encode(), expires_at=mine.expires_at))
        except Exists:
            pass
        found = await store.read(name)
        if found is None:
            continue  # released between our create and our read
        try:
            return await _answer_from(store, name, mine, *found, instance=instance)
        except Changed:
            continue  # someone else wrote first: look again
    raise StoreUnavailable("the record kept changing under us")


async def _answer_from(
    store: Store, name: str, mine: Record, data: bytes, etag: str, *, instance: str
) -> _Claimed | _Running | _Reused | Answer:
    """What the existing record (`data` at `etag`) means for this request. Raises `Changed`."""
    try:
        record = Record.decode(data)
    except ValueError as exc:
        raise StoreUnavailable(f"the record is unreadable ({exc})") from None
    now = time.time()
    if record.claim == mine.claim:  # our own create: its answer was lost, and the SDK retried it
        return _Claimed(record, etag)
    if record.expires_at <= now:
        return _Claimed(mine, await store.replace(name, mine.encode(), etag=etag, expires_at=mine.expires_at))
    if record.fingerprint != mine.fingerprint:
        return _Reused()
    if record.answer is not None:
        return record.answer
    abandoned_at = record.deadline + CLAIM_MARGIN_SECONDS
    if now < abandoned_at:
        until = record.deadline if now < record.deadline else abandoned_at
        return _Running(retry_after=min(max(until - now, 1.0), 5.0))
    answer = _abandoned(record, instance)
    done = record.finished(answer, expires_at=record.expires_at)
    await store.replace(name, done.encode(), etag=etag, expires_at=done.expires_at)
    _LOGGER.warning("An Idempotency-Key claim for %s outlived its deadline: outcome unknown", record.tool)
    return answer


async def _run(
    store: Store,
    name: str,
    claimed: _Claimed,
    policy: Policy,
    call: Callable[[], Awaitable[func.HttpResponse]],
    instance: str,
) -> func.HttpResponse:
    record, tool = claimed.record, claimed.record.tool
    try:
        response = await call()
    except Problem as problem:
        response = problem.to_response(instance)
    except Exception:
        # Where it failed is unknown, so whether the Scheduler ran the call is unknown too.
        _LOGGER.exception("Unexpected error in a call with an Idempotency-Key (tool %s)", printable(tool))
        response = _abandoned(record, instance, unexpected=True).response(replayed=False)
    answer = Answer.of(response)
    try:
        if not answer.kept:
            await store.delete(name, etag=claimed.etag)
        else:
            done = record.finished(answer, expires_at=time.time() + policy.ttl_seconds)
            await store.replace(name, done.encode(), etag=claimed.etag, expires_at=done.expires_at)
    except Changed:
        _LOGGER.warning(
            "The record of a call with an Idempotency-Key changed while it ran (tool %s): it outlived "
            "its deadline plus %g s, and repeats answer outcome-unknown",
            printable(tool),
            CLAIM_MARGIN_SECONDS,
        )
    except StoreUnavailable as exc:
        _LOGGER.error(
            "The answer of a call with an Idempotency-Key was not stored (%s, tool %s); repeats answer "
            "409, then outcome-unknown after the call's deadline plus %g s",
            exc,
            printable(tool),
            CLAIM_MARGIN_SECONDS,
        )
    return response


def _describe(outcome: _Running | _Reused | Answer) -> str:
    if isinstance(outcome, Answer):
        return f"replayed the stored {outcome.status}"
    return "reused for another call (422)" if isinstance(outcome, _Reused) else "still running (409)"


def _abandoned(record: Record, instance: str, *, unexpected: bool = False) -> Answer:
    why = (
        "failed unexpectedly in the bridge"
        if unexpected
        else "never finished (the instance running it stopped before storing its answer)"
    )
    problem = OutcomeUnknown(
        f"the first request with this Idempotency-Key for {record.tool!r} {why}; the outcome at the "
        "Scheduler is unknown, and the call is not repeated for this key",
        tool=record.tool,
    )
    return Answer.of(problem.to_response(instance))
