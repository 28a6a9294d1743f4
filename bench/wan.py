"""Section 6: a realistic network. TLS, a production keep-alive, and a delay proxy between the
client and the Scheduler, at dense and at sparse traffic.

The WAN Scheduler is one more devstack region (the same conversation store) serving HTTPS with a
certificate of the devstack CA and keeping idle connections 120 s, as a production front end does.
`bench.delay_proxy`, in its own process, adds `delay` seconds each way (35 ms: a round trip
between two Azure regions on one continent) and one round trip per new connection.

- **Dense**: one bridge and one raw client, calls back to back, interleaved (a naive call every
  third round).
- **Sparse**: one call every `period` seconds (10 s) per client. Rather than one client for many
  minutes, `slots` clients of each kind run at once, each on its own connections (a bridge of its
  own, built like the shared one, or an `mcp.Client` of its own) and each warmed by one call it does
  not count; their calls are staggered across the period so that they never overlap. Besides
  the bridge as configured, a second set of bridges runs with `SCHEDULER_IDLE_CONNECTION_SECONDS=4`,
  the old default, to show what dropping idle connections early costs.

The sparse bridges call `SchedulerBridge.call_tool` directly (the function layer costs microseconds
and needs the one shared bridge). Every failure is counted: the keep-alive race must cause none.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.processes import REPO_ROOT, free_port
from mcp_bridge.config.settings import BridgeSettings
from mcp_bridge.runtime import build_bridge

from .callers import RawClient, naive_call
from .rig import Rig
from .stack import STATUS_TOOL, apply_env
from .stats import median, ms, percentile, ratio

VARIANTS = ("bridge", "bridge_idle_4s", "raw", "naive")


@dataclass
class WanResult:
    delay_ms: float
    period: float
    dense: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VARIANTS})
    sparse: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VARIANTS})
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VARIANTS, 0))
    failure_kinds: list[str] = field(default_factory=list)

    def p50(self, traffic: str, variant: str) -> float:
        return ms(median(getattr(self, traffic)[variant]))

    def p90(self, traffic: str, variant: str) -> float:
        return ms(percentile(getattr(self, traffic)[variant], 90))

    @property
    def sparse_over_dense(self) -> float:
        return ratio(self.p50("sparse", "bridge"), self.p50("dense", "bridge"))

    @property
    def naive_over_bridge(self) -> float:
        return ratio(self.p50("dense", "naive"), self.p50("dense", "bridge"))


class WanProxy:
    """The delay proxy process, killed with the bench."""

    def __init__(self, target: int, delay: float, log_path: Any) -> None:
        self.port = free_port()
        self._log = open(log_path, "ab")  # closed in stop()
        self._process = subprocess.Popen(  # noqa: S603 (our own module, our own arguments)
            [sys.executable, "-m", "bench.delay_proxy", "--port", str(self.port), "--target", str(target),
             "--delay", str(delay)],
            cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the delay proxy did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()


def _settings(rig: Rig, url: str, ca_file: str, **overrides: Any) -> BridgeSettings:
    apply_env({**rig.stack.bridge_env("modern"), "SCHEDULER_ENDPOINTS": url, "SCHEDULER_CA_FILE": ca_file})
    return BridgeSettings(**overrides)


async def _timed(call: Callable[[], Awaitable[bool]]) -> tuple[float, bool, str]:
    started = time.perf_counter()
    try:
        ok, kind = await call(), ""
    except Exception as exc:  # a Problem from the bridge, a transport error from the others
        ok, kind = False, getattr(exc, "slug", type(exc).__name__)
    return time.perf_counter() - started, ok, kind


def _bridge_call(bridge: Any, arguments: dict[str, Any]) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        outcome = await bridge.call_tool(STATUS_TOOL, arguments)
        return not outcome.result.is_error

    return call


async def run_wan(
    rig: Rig, *, delay: float, dense_rounds: int, slots: int, sparse_calls: int, period: float
) -> WanResult:
    stack = rig.stack
    wan = stack.wan
    assert wan is not None and wan.ca_file is not None
    ca_file = str(wan.ca_file)
    proxy = WanProxy(wan.port, delay, stack.log_dir / "delay-proxy.log")
    url = f"https://127.0.0.1:{proxy.port}/mcp"
    verify = ssl.create_default_context(cafile=ca_file)
    identity = rig.identity()
    arguments = rig.arguments
    result = WanResult(delay_ms=ms(delay), period=period)

    def record(traffic: str, variant: str, outcome: tuple[float, bool, str]) -> None:
        elapsed, ok, kind = outcome
        if ok:
            getattr(result, traffic)[variant].append(elapsed)
        else:
            result.failures[variant] += 1
            result.failure_kinds.append(f"{traffic} {variant}: {kind or 'tool error'}")

    def naive() -> Awaitable[bool]:
        return naive_call(url, rig.token, arguments, identity=identity, verify=verify)

    bridges = []
    try:
        dense_bridge = build_bridge(_settings(rig, url, ca_file))
        old_bridge = build_bridge(_settings(rig, url, ca_file, scheduler_idle_connection_seconds=4))
        bridges += [dense_bridge, old_bridge]
        async with RawClient(url, rig.token, verify=verify) as raw:
            calls = {
                "bridge": _bridge_call(dense_bridge, arguments),
                "bridge_idle_4s": _bridge_call(old_bridge, arguments),
                "raw": lambda: raw(arguments),
                "naive": naive,
            }
            for variant in ("bridge", "bridge_idle_4s", "raw"):
                await calls[variant]()
            for number in range(dense_rounds):
                order = ["bridge", "raw", "bridge_idle_4s"]
                order = order[number % 3 :] + order[: number % 3]
                if number % 3 == 0:
                    order.append("naive")
                for variant in order:
                    record("dense", variant, await _timed(calls[variant]))

        plan = [v for v in ("bridge", "bridge_idle_4s", "raw") for _ in range(slots)]
        plan += ["naive"] * max(1, slots // 2)
        spacing = period / len(plan)
        loop = asyncio.get_running_loop()
        begins = loop.time() + 0.5

        async def calls_of(number: int, variant: str, call: Callable[[], Awaitable[bool]]) -> None:
            for turn in range(1, sparse_calls + 1):  # turn 0 was the warm-up
                await asyncio.sleep(max(0.0, begins + number * spacing + turn * period - loop.time()))
                record("sparse", variant, await _timed(call))

        async def slot(number: int, variant: str) -> None:
            await asyncio.sleep(max(0.0, begins + number * spacing - loop.time()))
            if variant == "raw":
                async with RawClient(url, rig.token, verify=verify) as client:  # its warm-up: list_tools
                    await calls_of(number, variant, lambda: client(arguments))
                return
            call = naive
            if variant != "naive":
                overrides = {"scheduler_idle_connection_seconds": 4} if variant == "bridge_idle_4s" else {}
                bridge = build_bridge(_settings(rig, url, ca_file, **overrides))
                bridges.append(bridge)
                call = _bridge_call(bridge, arguments)
                await _timed(call)  # warm: token, session, listing
            await calls_of(number, variant, call)

        await asyncio.gather(*(slot(number, variant) for number, variant in enumerate(plan)))
    finally:
        for bridge in bridges:
            await bridge.aclose()
        proxy.stop()
    return result
