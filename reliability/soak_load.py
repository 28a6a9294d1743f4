"""The soak's callers: a steady mix of read-only calls, listings and keyed non-idempotent calls.

Each call goes through the registered HTTP functions in process, with a real `func.HttpRequest`,
as the Python worker invokes them. What the callers keep is bounded (counters, a fixed latency
histogram, at most `MAX_FAILURES` failure records), so the load itself cannot grow the process.

A keyed call books a conversation under a topic of its own with an `Idempotency-Key`, and is
retried with the same key on 409, 502, 503 and 504, as docs/calling-from-code.md tells a client to
do. The Scheduler's store then holds at most one conversation per topic if no keyed call ran twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

MAX_FAILURES = 10_000
KEYED_RETRIES = 4
RETRY_STATUSES = frozenset({409, 502, 503, 504})
TOPIC_PREFIX = "soak-"
_BUCKETS_PER_DECADE = 20
_HISTOGRAM_SIZE = 6 * _BUCKETS_PER_DECADE  # 0.1 ms .. 100 s


class Histogram:
    """Latencies in log-spaced buckets: fixed memory, percentiles to within ~12 %."""

    def __init__(self) -> None:
        self.counts = [0] * (_HISTOGRAM_SIZE + 1)
        self.total = 0

    def add(self, seconds: float) -> None:
        import math

        index = int(math.log10(max(seconds, 1e-4) / 1e-4) * _BUCKETS_PER_DECADE)
        self.counts[min(index, _HISTOGRAM_SIZE)] += 1
        self.total += 1

    def percentile(self, pct: float) -> float:
        """Upper edge of the bucket holding the pct-th latency, in milliseconds."""
        if not self.total:
            return float("nan")
        rank, seen = self.total * pct / 100, 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return 1e-4 * 10 ** ((index + 1) / _BUCKETS_PER_DECADE) * 1000
        return float("inf")


@dataclass(frozen=True)
class Failure:
    at: float
    """time.monotonic() when the call ended."""
    kind: str
    status: int
    slug: str


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    """By `kind status slug` of the final answer."""
    failures: list[Failure] = field(default_factory=list)
    keyed: Counter[str] = field(default_factory=Counter)
    """Keyed calls by how they ended: ok, ok-after-retry, replayed, failed."""
    latency: Histogram = field(default_factory=Histogram)

    def record_failure(self, kind: str, status: int, body: bytes) -> None:
        slug = _slug(body)
        self.failed[f"{kind} {status} {slug}"] += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(time.monotonic(), kind, status, slug))


def _slug(body: bytes) -> str:
    try:
        return str(json.loads(body)["type"]).rsplit(":", 1)[-1]
    except (ValueError, KeyError, TypeError):
        return "?"


class Functions:
    """The app's registered functions, called the way the worker calls them."""

    def __init__(self) -> None:
        import function_app

        self._by_name = {
            f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()
        }

    def user_function(self, name: str) -> Any:
        return self._by_name[name]

    async def __call__(
        self,
        name: str,
        *,
        method: str,
        path: str,
        route_params: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        request = func.HttpRequest(
            method=method,
            url=f"http://127.0.0.1:7071{path}",
            headers={"content-type": "application/json", **(headers or {})},
            params={},
            route_params=route_params or {},
            body=b"" if body is None else json.dumps(body).encode(),
        )
        response = await self._by_name[name](request)
        return response.status_code, response.get_body()


def schedule_arguments(topic: str) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    return {"participants": ["alice@example.com", "bob@example.com"], "start_time": start, "topic": topic}


@dataclass
class Mix:
    """Weights of the three kinds of call (read-only, listing, keyed)."""

    read: int = 60
    listing: int = 25
    keyed: int = 15

    def choose(self, rng: random.Random) -> str:
        return rng.choices(("read", "listing", "keyed"), (self.read, self.listing, self.keyed))[0]


class Callers:
    """`workers` callers, each pacing itself to `rate / workers` calls a second, until `stop` is set.

    `gate` is cleared to pause them (for a quiet sample); `in_flight` says how many calls are out."""

    def __init__(
        self, functions: Functions, conversation_ids: list[str], *, run_id: str, rate: float, seed: int
    ) -> None:
        self.functions = functions
        self.conversation_ids = conversation_ids
        self.run_id = run_id
        self.rate = rate
        self.rng = random.Random(seed)
        self.mix = Mix()
        self.tally = Tally()
        self.gate = asyncio.Event()
        self.gate.set()
        self.stop = asyncio.Event()
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._keys = 0

    async def run(self, workers: int) -> None:
        await asyncio.gather(*(self._worker(workers) for _ in range(workers)))

    async def pause(self) -> None:
        """Stop starting calls and wait until none is in flight."""
        self.gate.clear()
        await self.idle.wait()

    def resume(self) -> None:
        self.gate.set()

    async def _worker(self, workers: int) -> None:
        period = workers / self.rate
        loop = asyncio.get_running_loop()
        next_start = loop.time() + self.rng.uniform(0, period)
        while not self.stop.is_set():
            await asyncio.sleep(max(0.0, next_start - loop.time()))
            await self.gate.wait()
            next_start = max(next_start + period, loop.time() - period)  # no catch-up bursts
            kind = self.mix.choose(self.rng)
            self.in_flight += 1
            self.idle.clear()
            started = time.perf_counter()
            try:
                await getattr(self, "_" + kind)()
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self.idle.set()
                self.tally.latency.add(time.perf_counter() - started)
                self.tally.calls[kind] += 1

    async def _read(self) -> None:
        conversation_id = self.rng.choice(self.conversation_ids)
        status, body = await self.functions(
            "conversation_status",
            method="GET",
            path=f"/api/conversations/{conversation_id}/status",
            route_params={"conversation_id": conversation_id},
        )
        if status != 200:
            self.tally.record_failure("read", status, body)

    async def _listing(self) -> None:
        if self.rng.random() < 0.5:
            status, body = await self.functions("list_tools", method="GET", path="/api/tools")
        else:
            status, body = await self.functions(
                "call_tool",
                method="POST",
                path="/api/tools/listConversations",
                route_params={"tool_name": "listConversations"},
                body={"limit": 5},
            )
        if status != 200:
            self.tally.record_failure("listing", status, body)

    async def _keyed(self) -> None:
        self._keys += 1
        topic = f"{TOPIC_PREFIX}{self.run_id}-{self._keys}"
        headers = {"idempotency-key": f"{self.run_id}-{self._keys}"}
        arguments = schedule_arguments(topic)
        for attempt in range(KEYED_RETRIES + 1):
            status, body = await self.functions(
                "call_tool",
                method="POST",
                path="/api/tools/scheduleConversation",
                route_params={"tool_name": "scheduleConversation"},
                body=arguments,
                headers=headers,
            )
            if status == 200:
                self.tally.keyed["ok" if attempt == 0 else "ok-after-retry"] += 1
                return
            if status not in RETRY_STATUSES or attempt == KEYED_RETRIES:
                break
            await asyncio.sleep(0.5 * (attempt + 1))
        self.tally.keyed["failed"] += 1
        self.tally.record_failure("keyed", status, body)
