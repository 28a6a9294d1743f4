"""The chaos run's callers and its driver.

Callers: each of `callers` tasks loops, with a short random pause, over three kinds of call to the
peer's tools, each with arguments of its own so the server's log can count its runs:

- safe: `lookup` (annotated readOnlyHint), key `s<n>`;
- unkeyed: `add(a=n, b=0)`, not read-only, not idempotent, no `Idempotency-Key`;
- keyed: `add(a=n, b=1)` with an `Idempotency-Key`, repeated with the same key on 409, 502, 503
  and 504 (up to `KEYED_RETRIES` times), as a client following docs/calling-from-code.md does.

Driver: from a seeded `random.Random`, again and again: a healthy pause, then one region (now and
then both) is killed, restarted, hung or fronted (502 or 503), and restored a few seconds later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .chaos_regions import Region
from .soak_load import Functions, _slug

_LOGGER = logging.getLogger("reliability.chaos")
KEYED_RETRIES = 4
RETRY_STATUSES = frozenset({409, 502, 503, 504})
WEIGHTS = {"safe": 60, "unkeyed": 20, "keyed": 20}
BOTH_REGIONS_CHANCE = 0.1


@dataclass(frozen=True)
class Call:
    kind: str
    ident: str
    """The arguments as the server logs them: `lookup s17`, `add 18 0`."""
    started: float
    ended: float
    status: int
    slug: str
    tries: int = 1
    attempts: tuple[str, ...] = ()
    """A failed call's attempts as its problem names them: `endpoint cause`, first to last."""


@dataclass
class Driven:
    actions: Counter[str] = field(default_factory=Counter)


class ChaosCallers:
    def __init__(self, functions: Functions, *, run_id: str, seed: int) -> None:
        self.functions = functions
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.calls: list[Call] = []
        self.stop = asyncio.Event()
        self._n = 0

    async def run(self, callers: int) -> None:
        await asyncio.gather(*(self._caller() for _ in range(callers)))

    async def _caller(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(self.rng.uniform(0.0, 0.2))
            self._n += 1
            kind = self.rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
            await getattr(self, "_" + kind)(self._n)

    async def _tool(self, tool: str, arguments: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return await self.functions(
            "call_tool",
            method="POST",
            path=f"/api/tools/{tool}",
            route_params={"tool_name": tool},
            body=arguments,
            headers=headers,
        )

    async def _safe(self, n: int) -> None:
        started = time.monotonic()
        status, body = await self._tool("lookup", {"key": f"s{n}"})
        self._record("safe", f"lookup s{n}", started, status, body)

    async def _unkeyed(self, n: int) -> None:
        started = time.monotonic()
        status, body = await self._tool("add", {"a": n, "b": 0})
        self._record("unkeyed", f"add {n} 0", started, status, body)

    async def _keyed(self, n: int) -> None:
        started = time.monotonic()
        headers = {"idempotency-key": f"{self.run_id}-{n}"}
        for attempt in range(KEYED_RETRIES + 1):
            status, body = await self._tool("add", {"a": n, "b": 1}, headers)
            if status not in RETRY_STATUSES or attempt == KEYED_RETRIES:
                break
            await asyncio.sleep(0.5 * (attempt + 1))
        self._record("keyed", f"add {n} 1", started, status, body, tries=attempt + 1)

    def _record(
        self, kind: str, ident: str, started: float, status: int, body: bytes, tries: int = 1
    ) -> None:
        slug = "" if status == 200 else _slug(body)
        attempts = () if status == 200 else _attempts(body)
        self.calls.append(Call(kind, ident, started, time.monotonic(), status, slug, tries, attempts))


def _attempts(body: bytes) -> tuple[str, ...]:
    try:
        return tuple(f"{a['endpoint']} {a['cause']}" for a in json.loads(body).get("attempts", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()


async def drive(regions: list[Region], rng: random.Random, stop: asyncio.Event, driven: Driven) -> None:
    """Break and restore regions at random until `stop` is set; every region is up when it returns."""
    try:
        while not stop.is_set():
            await _pause(stop, rng.uniform(2.0, 8.0))
            if stop.is_set():
                break
            victims = list(regions) if rng.random() < BOTH_REGIONS_CHANCE else [rng.choice(regions)]
            for region in victims:
                action = rng.choice(("kill", "restart", "hang", "front 502", "front 503"))
                driven.actions[action] += 1
                _LOGGER.info("chaos: region %s (%s): %s", region.name, region.url, action)
                if action == "kill":
                    await region.kill()
                elif action == "restart":
                    await region.restart()
                elif action == "hang":
                    region.hang()
                else:
                    await region.front_with(int(action.split()[1]))  # type: ignore[arg-type]
            await _pause(stop, rng.uniform(2.0, 8.0))
            for region in victims:
                await region.restore()
                _LOGGER.info("chaos: region %s (%s): restored", region.name, region.url)
    finally:
        for region in regions:
            if region.state != "up":
                await region.restore()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
