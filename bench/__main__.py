"""`python -m bench [--quick]`: start the devstack, run every section, print the report.

Progress goes to stderr; the report to stdout, its last line `RESULT key=value ...`. Server logs
and the bench's own log (the bridge logs at INFO, as host.json sets it in Azure) go to a temporary
directory named at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import queue
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

from mcp_bridge.runtime import reset_bridge

from .cold_start import run_cold_start
from .concurrency import run_concurrency
from .failover import run_failover
from .http_load import run_http
from .idempotency import run_idempotency
from .instance_concurrency import InstanceResult, run_instance_concurrency
from .latency import run_latency
from .layers import run_layers
from .layers import table as layers_table
from .peers import PeersResult, run_peers
from .report import Report
from .rig import Rig, build_rig
from .stack import start_stack
from .streams import run_streams
from .tasks import run_tasks
from .upstreams import run_two_upstreams
from .wan import run_wan


@dataclass(frozen=True)
class Plan:
    rounds: int = 500
    naive_every: int = 5
    pairs: int = 8
    legacy_pairs: int = 5
    window: float = 0.5  # doubled at 100 callers
    burst: int = 100
    http_connections: tuple[int, ...] = (1, 32)
    http_seconds: float = 3.0
    http_rounds: int = 2
    import_runs: int = 11
    first_runs: int = 3
    idempotency_rounds: int = 200
    task_rounds: int = 30
    wan_delay: float = 0.035  # one way
    wan_dense_rounds: int = 30
    wan_slots: int = 6  # sparse clients of each kind at once
    wan_sparse_calls: int = 3  # counted calls per sparse client, one per period
    wan_period: float = 10.0
    upstream_pairs: int = 4
    upstream_seconds: float = 1.5
    instance_delay: float = 0.035  # one way, as section 6: a call waits ~70 ms on the network
    instance_seconds: float = 3.0
    peer_connections: tuple[int, ...] = (1, 16)
    peer_seconds: float = 3.0
    peer_rounds: int = 2
    layers_blocks: int = 16
    layers_calls: int = 40

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            rounds=150,
            pairs=2,
            legacy_pairs=1,
            http_seconds=1.0,
            http_rounds=1,
            import_runs=3,
            first_runs=1,
            idempotency_rounds=40,
            task_rounds=8,
            wan_dense_rounds=9,
            wan_slots=2,
            wan_sparse_calls=1,
            upstream_pairs=1,
            upstream_seconds=0.5,
            instance_seconds=1.0,
            peer_seconds=1.0,
            peer_rounds=1,
            layers_blocks=4,
            layers_calls=20,
        )


def _progress(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def _machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({model}), {platform.system()}, Python {platform.python_version()}, "
        f"mcp {version('mcp')}, httpx2 {version('httpx2')}; load average {load:.1f} at the start"
    )


def _log_like_the_worker(path: Path) -> QueueListener:
    """INFO for the bridge, as host.json sets it, queued the way the Python worker queues records
    for the host: the calling thread builds the record, another thread does the I/O."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = QueueListener(records, handler)
    listener.start()
    logging.basicConfig(level=logging.INFO, handlers=[QueueHandler(records)], force=True)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    return listener


async def _instance_and_peers(rig: Rig, plan: Plan, started: float) -> tuple[InstanceResult, PeersResult]:
    await rig.use_era("modern")  # the hosts inherit this environment: no setting of an earlier section
    _progress(f"one instance, concurrency 1-128, Scheduler {plan.instance_delay * 1000:.0f} ms away", started)
    instance = await asyncio.to_thread(
        run_instance_concurrency, rig, delay=plan.instance_delay, seconds=plan.instance_seconds
    )
    _progress("peers: the bridge, mcpo and LiteLLM, interleaved", started)
    return instance, await _peers(rig, plan)


async def _peers(rig: Rig, plan: Plan) -> PeersResult:
    return await asyncio.to_thread(
        run_peers, rig, connections=plan.peer_connections, seconds=plan.peer_seconds, rounds=plan.peer_rounds
    )


async def run_instance_only(plan: Plan, *, peers_only: bool = False) -> list[str]:
    """`--only instance`: sections 8 and 9 alone, for re-measuring the knee (docs/deployment.md);
    `--only peers`: section 9 alone."""
    started = time.perf_counter()
    stack = start_stack()
    listener = _log_like_the_worker(stack.log_dir / "bench.log")
    try:
        rig = await build_rig(stack)
        await reset_bridge()
        if peers_only:
            await rig.use_era("modern")
            _progress("peers: the bridge, mcpo and LiteLLM, interleaved", started)
            peers = await _peers(rig, plan)
            keys = Report.peer_keys(peers)
            return [*Report.peers_lines(peers), "RESULT " + " ".join(f"{k}={v}" for k, v in keys.items())]
        instance, peers = await _instance_and_peers(rig, plan, started)
    finally:
        await reset_bridge()
        stack.stop()
        listener.stop()
    return Report.instance_lines(instance, peers)


async def run_layers_only(plan: Plan) -> list[str]:
    """`--only layers`: section 10 alone, the per-layer CPU costs (docs/performance.md)."""
    stack = start_stack()
    listener = _log_like_the_worker(stack.log_dir / "bench.log")
    try:
        rig = await build_rig(stack)
        layers = await run_layers(rig, blocks=plan.layers_blocks, calls=plan.layers_calls)
    finally:
        await reset_bridge()
        stack.stop()
        listener.stop()
    load = os.getloadavg()[0]
    return [*layers_table(layers), f"(load average {load:.1f} at the end)"]


async def run(plan: Plan) -> Report:
    started = time.perf_counter()
    machine = _machine()
    stack = start_stack()
    listener = _log_like_the_worker(stack.log_dir / "bench.log")
    _progress(f"devstack up; logs in {stack.log_dir}", started)
    try:
        rig = await build_rig(stack)
        _progress("cold start (fresh interpreters)", started)
        cold = await asyncio.to_thread(run_cold_start, rig, runs=plan.import_runs, first_runs=plan.first_runs)
        latency = {}
        for era in ("modern", "legacy"):
            _progress(f"latency, {era}", started)
            latency[era] = await run_latency(rig, era, rounds=plan.rounds, naive_every=plan.naive_every)
        concurrency = []
        for era, levels, pairs in (
            ("modern", (1, 10, 100), plan.pairs),
            ("legacy", (100,), plan.legacy_pairs),
        ):
            _progress(f"concurrency, {era} {levels}", started)
            concurrency.append(
                await run_concurrency(
                    rig, era, levels=levels, pairs=pairs, window=plan.window, burst=plan.burst
                )
            )
        await reset_bridge()
        _progress("over HTTP", started)
        http = await asyncio.to_thread(
            run_http,
            rig,
            connections=plan.http_connections,
            seconds=plan.http_seconds,
            rounds=plan.http_rounds,
        )
        _progress("over HTTP, HTTP streams on vs off", started)
        streams = await asyncio.to_thread(
            run_streams,
            rig,
            connections=plan.http_connections,
            seconds=plan.http_seconds,
            rounds=plan.http_rounds,
        )
        _progress(f"WAN: TLS, {plan.wan_delay * 1000:.0f} ms each way, dense and sparse", started)
        wan = await run_wan(
            rig,
            delay=plan.wan_delay,
            dense_rounds=plan.wan_dense_rounds,
            slots=plan.wan_slots,
            sparse_calls=plan.wan_sparse_calls,
            period=plan.wan_period,
        )
        _progress("failover", started)
        failover = await run_failover(rig, callers=16, seconds=3.0, kill_after=1.0)
        await asyncio.to_thread(stack.east.restart)  # the failover section killed it
        _progress("idempotency keys", started)
        idempotency = await run_idempotency(rig, rounds=plan.idempotency_rounds)
        _progress("long-running operations", started)
        tasks = await run_tasks(rig, rounds=plan.task_rounds)
        _progress("a second upstream configured", started)
        upstreams = await run_two_upstreams(rig, pairs=plan.upstream_pairs, seconds=plan.upstream_seconds)
        _progress("client CPU, layer by layer", started)
        layers = await run_layers(rig, blocks=plan.layers_blocks, calls=plan.layers_calls)
        await reset_bridge()
        instance, peers = await _instance_and_peers(rig, plan, started)
    finally:
        await reset_bridge()
        stack.stop()
        listener.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return Report(
        machine=f"{machine}, {load:.1f} at the end",
        latency=latency,
        concurrency=concurrency,
        http=http,
        cold=cold,
        failover=failover,
        idempotency=idempotency,
        wan=wan,
        tasks=tasks,
        instance=instance,
        peers=peers,
        layers=layers,
        elapsed_seconds=time.perf_counter() - started,
        streams=streams,
        upstreams=upstreams,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke test, not a result")
    parser.add_argument(
        "--only",
        choices=["instance", "peers", "layers"],
        help="instance: one instance's concurrency and the peers; peers: the peers alone; "
        "layers: the CPU cost of each layer",
    )
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    if args.only in ("instance", "peers"):
        print("\n".join(asyncio.run(run_instance_only(plan, peers_only=args.only == "peers"))), flush=True)
        return
    if args.only == "layers":
        print("\n".join(asyncio.run(run_layers_only(plan))), flush=True)
        return
    report = asyncio.run(run(plan))
    print("\n".join(report.lines()), flush=True)


if __name__ == "__main__":
    main()
