"""Long-running operations: what a task that ends within the synchronous wait costs beside an
ordinary call, and how many `tasks/get` one instance sends for 50 concurrent pollers.

`findCommonSlot` on the devstack Scheduler (taskSupport `optional`, so the same tool runs both ways)
reads two calendars in `SCAN_SECONDS`. The ordinary call and the task call (`Prefer:
respond-async, wait=10`: the answer itself when it is ready within 10 s) alternate round by round.
The handshake-era region waits on the blocking `tasks/result` (the key); the 2026-07-28 region has
no such method, and the bridge honours its `pollIntervalMs` (1 s), so there the task answers at
the first poll after it ends (shown beside the key).

Poll storms: one running operation, then waves of 50 concurrent `GET /api/operations/{id}` a poll
interval apart; the poller's count of `tasks/get` per wave is `task_polls_per_interval`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from mcp_bridge.config.loader import load_settings
from mcp_bridge.operations.service import operations_for
from mcp_bridge.runtime import get_bridge

from .callers import registered_function
from .rig import Rig
from .stats import median, ms

FIND = "findCommonSlot"
SCAN_SECONDS = 0.25
WARMUP = 3
POLLERS = 50
WAVES = 3
ARGUMENTS = {
    "calendars": ["ana@contoso.example", "bo@contoso.example"],
    "window_start": "2030-01-07T00:00:00Z",
    "scan_seconds": SCAN_SECONDS,
}
TASK_HEADERS = {"Prefer": "respond-async, wait=10"}


@dataclass
class EraCost:
    era: str
    plain: list[float] = field(default_factory=list)
    task: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def ratio(self) -> float:
        return median(self.task) / median(self.plain)


@dataclass
class TasksResult:
    eras: list[EraCost]
    polls_per_wave: list[int]

    @property
    def sync_over_plain(self) -> float:
        return self.ratio("legacy")

    def ratio(self, era: str) -> float:
        return next(cost for cost in self.eras if cost.era == era).ratio


async def run_tasks(rig: Rig, *, rounds: int) -> TasksResult:
    eras = [await _costs(rig, era, rounds) for era in ("legacy", "modern")]
    return TasksResult(eras, await _poll_storm(rig))


async def _costs(rig: Rig, era: str, rounds: int) -> EraCost:
    await rig.use_era(era)
    cost = EraCost(era)

    async def call(kind: str) -> float:
        started = time.perf_counter()
        status, body = await rig.bridge.invoke(
            ARGUMENTS, tool=FIND, headers=TASK_HEADERS if kind == "task" else None
        )
        elapsed = time.perf_counter() - started
        cost.failures += status != 200 or json.loads(body).get("tool") != FIND
        return elapsed

    for _ in range(WARMUP):
        await call("plain")
        await call("task")
    cost.failures = 0
    for number in range(rounds):
        for kind in ("plain", "task") if number % 2 == 0 else ("task", "plain"):
            getattr(cost, kind).append(await call(kind))
    return cost


async def _poll_storm(rig: Rig) -> list[int]:
    await rig.use_era("legacy")
    status, body = await rig.bridge.invoke(
        {**ARGUMENTS, "scan_seconds": 30.0}, tool=FIND, headers={"Prefer": "respond-async"}
    )
    if status != 202:
        raise RuntimeError(f"starting the operation failed ({status}): {body[:300]!r}")
    operation_id = json.loads(body)["id"]
    get = registered_function("get_operation")
    cancel = registered_function("cancel_operation")
    poller = (await operations_for(await get_bridge(), load_settings())).poller

    def request(method: str, suffix: str = "") -> func.HttpRequest:
        return func.HttpRequest(
            method=method,
            url=f"http://127.0.0.1:7071/api/operations/{operation_id}{suffix}",
            headers={},
            params={},
            route_params={"operation_id": operation_id},
            body=b"",
        )

    waves: list[int] = []
    await asyncio.sleep(1.1)  # the start's own reading has aged out
    for _ in range(WAVES):
        before = poller.gets
        replies: list[Any] = await asyncio.gather(*(get(request("GET")) for _ in range(POLLERS)))
        if {reply.status_code for reply in replies} != {200}:
            raise RuntimeError("a poll failed: " + str({reply.status_code for reply in replies}))
        waves.append(poller.gets - before)
        await asyncio.sleep(1.1)  # the devstack's poll interval is 1 s
    await cancel(request("POST", "/cancel"))
    return waves


def table(result: TasksResult) -> list[str]:
    out = [
        "| era | ordinary call | task, ended within the wait | ratio | rounds | failed |",
        "|---|---|---|---|---|---|",
    ]
    for cost in result.eras:
        out.append(
            f"| {cost.era} | {ms(median(cost.plain)):.1f} ms | {ms(median(cost.task)):.1f} ms | "
            f"{cost.ratio:.3f} | {len(cost.plain)} | {cost.failures} |"
        )
    out.append("")
    out.append(
        f"{POLLERS} concurrent pollers of one operation, {WAVES} waves a poll interval apart: "
        f"`tasks/get` sent per wave {result.polls_per_wave}."
    )
    return out
