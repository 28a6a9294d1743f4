"""The printed report: Markdown tables (they paste into docs/performance.md as they are), then `RESULT`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .cold_start import BASELINE, ColdStartResult
from .concurrency import ConcurrencyResult
from .failover import FailoverResult
from .http_load import HttpResult
from .idempotency import StoreCost
from .instance_concurrency import InstanceResult
from .instance_concurrency import table as instance_table
from .latency import LatencyResult
from .layers import LayersResult
from .layers import table as layers_table
from .peers import NOT_RUN, SIDES, PeersResult
from .peers import table as peers_table
from .stats import median
from .streams import StreamsResult
from .tasks import TasksResult
from .tasks import table as tasks_table
from .upstreams import UpstreamsResult
from .wan import WanResult

PEER_NAMES = SIDES[1:]

RESULT_KEYS = (
    "cpu_per_call_ratio_1",
    "cpu_per_call_ratio_100",
    "p1_bridge_over_raw_modern",
    "p1_bridge_over_raw_legacy",
    "p3_naive_over_bridge_modern",
    "p3_naive_over_bridge_legacy",
    "p2_throughput_ratio_100",
    "p4_identity_requests",
    "p5_import_ratio",
    "p6_failed_safe_requests",
    "failover_ms",
    "idempotency_blob_extra_ms",
    "task_sync_over_plain",
    "task_sync_over_plain_modern",
    "task_polls_per_interval",
    "first_request_after_warmup_ms",
    "wan_sparse_over_dense",
    "wan_naive_over_bridge",
    "instance_knee",
    "bridge_over_mcpo_rps_1",
    "bridge_over_mcpo_rps_16",
    "bridge_over_litellm_rps_1",
    "bridge_over_litellm_rps_16",
    "bridge_p50_ms_1",
    "mcpo_p50_ms_1",
    "litellm_p50_ms_1",
    "bridge_p50_ms_16",
    "mcpo_p50_ms_16",
    "litellm_p50_ms_16",
    "http_streams_p50_over_classic",
    "two_upstreams_overhead",
)


@dataclass
class Report:
    machine: str
    latency: dict[str, LatencyResult]
    concurrency: list[ConcurrencyResult]
    http: HttpResult
    cold: ColdStartResult
    failover: FailoverResult
    idempotency: list[StoreCost]
    wan: WanResult
    instance: InstanceResult
    peers: PeersResult
    layers: LayersResult
    tasks: TasksResult
    elapsed_seconds: float
    streams: StreamsResult | None = None
    upstreams: UpstreamsResult | None = None

    def result(self) -> dict[str, float | int]:
        modern = next(c for c in self.concurrency if c.era == "modern")
        at_100 = next(level for level in modern.levels if level.callers == 100)
        return {
            "cpu_per_call_ratio_1": round(self.latency["modern"].cpu_ratio, 3),
            "cpu_per_call_ratio_100": round(at_100.cpu_ratio, 3),
            "p1_bridge_over_raw_modern": round(self.latency["modern"].bridge_over_raw, 3),
            "p1_bridge_over_raw_legacy": round(self.latency["legacy"].bridge_over_raw, 3),
            "p3_naive_over_bridge_modern": round(self.latency["modern"].naive_over_bridge, 2),
            "p3_naive_over_bridge_legacy": round(self.latency["legacy"].naive_over_bridge, 2),
            "p2_throughput_ratio_100": round(at_100.throughput_ratio, 3),
            "p4_identity_requests": max(c.cold.identity_requests for c in self.concurrency),
            "p5_import_ratio": round(self.cold.import_ratio, 3),
            "p6_failed_safe_requests": self.failover.failed,
            "failover_ms": round(self.failover.failover_ms)
            if math.isfinite(self.failover.failover_ms)
            else -1,
            "idempotency_blob_extra_ms": round(self.idempotency[-1].extra_ms, 2),
            "task_sync_over_plain": round(self.tasks.sync_over_plain, 3),
            "task_sync_over_plain_modern": round(self.tasks.ratio("modern"), 3),
            "task_polls_per_interval": max(self.tasks.polls_per_wave),
            "first_request_after_warmup_ms": round(median(self.cold.after_warmup_ms), 1),
            "wan_sparse_over_dense": round(self.wan.sparse_over_dense, 3),
            "wan_naive_over_bridge": round(self.wan.naive_over_bridge, 2),
            **self.instance_keys(self.instance, self.peers),
            "http_streams_p50_over_classic": round(self.streams.p50_ratio, 3) if self.streams else -1,
            "two_upstreams_overhead": round(self.upstreams.overhead_ratio, 3) if self.upstreams else -1,
        }

    @staticmethod
    def instance_keys(instance: InstanceResult, peers: PeersResult) -> dict[str, float | int]:
        return {"instance_knee": instance.knee, **Report.peer_keys(peers)}

    @staticmethod
    def peer_keys(peers: PeersResult) -> dict[str, float | int]:
        keys: dict[str, float | int] = {}
        for level in peers.levels:
            n = level.connections
            for peer in PEER_NAMES:
                keys[f"bridge_over_{peer}_rps_{n}"] = round(level.rps_ratio(peer), 2)
        for level in peers.levels:
            for side in SIDES:
                keys[f"{side}_p50_ms_{level.connections}"] = round(level.p50_ms(side), 1)
        return keys

    @staticmethod
    def instance_lines(instance: InstanceResult, peers: PeersResult) -> list[str]:
        """Sections 8 and 9 (also printed alone by `python -m bench --only instance`)."""
        out = [
            "### 8. One instance: one worker process through the devstack host, concurrency 1–128 "
            "(`getConversationStatus`)",
            "",
            *instance_table(instance),
            "",
            *Report.peers_lines(peers),
        ]
        keys = Report.instance_keys(instance, peers)
        out.append("RESULT " + " ".join(f"{key}={value}" for key, value in keys.items()))
        return out

    @staticmethod
    def peers_lines(peers: PeersResult) -> list[str]:
        """Section 9 (`python -m bench --only peers` prints it with its own `RESULT` line)."""
        not_run = "; ".join(f"{name}: {why}" for name, why in NOT_RUN.items()) or "none"
        return [
            "### 9. Peers: the bridge, mcpo and LiteLLM in front of the same Scheduler",
            "",
            *peers_table(peers),
            "",
            f"Not run: {not_run}.",
            "",
        ]

    def _wan_lines(self) -> list[str]:
        wan = self.wan
        names = {
            "bridge": "bridge",
            "bridge_idle_4s": "bridge, idle connections dropped after 4 s (the old default)",
            "raw": "raw: one persistent `mcp.Client`",
            "naive": "naive: new client, session and token per call",
        }
        out = [
            f"### 6. Over a network (modern era; TLS, {wan.delay_ms:.0f} ms each way, Scheduler keep-alive "
            f"120 s; ms)",
            "",
            f"| variant | dense p50 | dense p90 | dense calls | sparse (a call per {wan.period:.0f} s) p50 "
            "| sparse p90 | sparse calls | failed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for variant, name in names.items():
            out.append(
                f"| {name} | {wan.p50('dense', variant):.0f} | {wan.p90('dense', variant):.0f} | "
                f"{len(wan.dense[variant])} | {wan.p50('sparse', variant):.0f} | "
                f"{wan.p90('sparse', variant):.0f} | {len(wan.sparse[variant])} | {wan.failures[variant]} |"
            )
        out += [
            f"| **bridge sparse/dense {wan.sparse_over_dense:.3f}; naive/bridge (dense) "
            f"{wan.naive_over_bridge:.1f}** | | | | | | | |",
            "",
        ]
        if wan.failure_kinds:
            out += ["Failures: " + "; ".join(wan.failure_kinds), ""]
        return out

    def lines(self) -> list[str]:
        out = [
            "## Scheduler Bridge benchmark",
            "",
            f"{self.machine}; {self.elapsed_seconds:.0f} s.",
            "Every ratio is from this run, the variants interleaved.",
            "",
            "### 1. Latency, one caller (`getConversationStatus`, ms)",
            "",
            "| era | variant | median | p99 | calls | failed | client CPU per call |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        names = {
            "raw": "raw: one persistent `mcp.Client`",
            "bridge": "bridge: `call_tool` function in-process",
            "naive": "naive: new client, session and token per call",
            "naive_reused_token": "naive, but one token reused",
        }
        for era, result in self.latency.items():
            for variant in names:
                out.append(
                    f"| {era} | {names[variant]} | {result.median_ms(variant):.2f} | "
                    f"{result.p99_ms(variant):.1f} | {len(result.samples[variant])} | "
                    f"{result.failures[variant]} | {result.cpu_ms(variant):.2f} |"
                )
            out.append(
                f"| {era} | **bridge/raw {result.bridge_over_raw:.3f}; naive/bridge "
                f"{result.naive_over_bridge:.1f} ({result.reused_token_naive_over_bridge:.1f} "
                "with the token reused)** | | | | | |"
            )
            low, high = result.cpu_ratio_spread
            out.append(
                f"| {era} | **client CPU per call, bridge/raw: {result.cpu_ratio:.3f} "
                f"({low:.2f}–{high:.2f}), median (IQR) of "
                f"{len(result.cpu_block_ratios)} blocks of interleaved rounds** | | | | | |"
            )
        out += [
            "",
            "### 2. Concurrency (`getConversationStatus`; steady-state calls/s)",
            "",
            "| era | callers | raw/s | bridge/s | bridge/raw: median of pairs (IQR) | p99 ms raw / bridge "
            "| errors raw / bridge | client CPU ms per call raw / bridge "
            "| CPU per call bridge/raw: median of pairs (IQR) | client CPU busy raw / bridge |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for conc in self.concurrency:
            for level in conc.levels:
                out.append(
                    f"| {conc.era} | {level.callers} | {level.throughput('raw'):.0f} | "
                    f"{level.throughput('bridge'):.0f} | {level.throughput_ratio:.3f} "
                    f"({level.ratio_spread[0]:.2f}–{level.ratio_spread[1]:.2f}) | "
                    f"{level.p99_ms('raw'):.0f} / {level.p99_ms('bridge'):.0f} | "
                    f"{level.errors['raw']} / {level.errors['bridge']} | "
                    f"{level.cpu_per_call_ms('raw'):.2f} / {level.cpu_per_call_ms('bridge'):.2f} | "
                    f"{level.cpu_ratio:.3f} "
                    f"({level.cpu_ratio_spread[0]:.2f}–{level.cpu_ratio_spread[1]:.2f}) | "
                    f"{level.cpu_busy('raw'):.2f} / {level.cpu_busy('bridge'):.2f} |"
                )
        out += [
            "",
            "Cold start under a burst: a fresh bridge (no token, no session) takes that many calls at once.",
            "",
            "| era | callers | errors | identity requests | MCP sessions opened by the bridge "
            "(per endpoint) | sessions created at the Scheduler | slowest call ms | new sessions "
            "during the load above |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for conc in self.concurrency:
            cold = conc.cold
            opened = ", ".join(str(n) for n in conc.connections_opened)
            out.append(
                f"| {conc.era} | {cold.callers} | {cold.errors} | {cold.identity_requests} | "
                f"{', '.join(str(n) for n in cold.connections_opened)} (after all the load: {opened}) | "
                f"{cold.sessions_created} | {cold.slowest_ms:.0f} | {conc.sessions_during_load} |"
            )
        out += [
            "",
            f"### 3. Over HTTP (modern era; load: {self.http.tool}, closed loop, median of runs)",
            "",
            "| connections | Scheduler direct (raw MCP) req/s | via the Functions host req/s | "
            "host/direct | p50 ms direct / host | p99 ms direct / host | errors direct / host |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for level in self.http.levels:
            out.append(
                f"| {level.connections} | {level.rps('raw'):.0f} | {level.rps('host'):.0f} | "
                f"{level.rps_ratio:.2f} | {level.p50_ms('raw'):.1f} / {level.p50_ms('host'):.1f} | "
                f"{level.p99_ms('raw'):.1f} / {level.p99_ms('host'):.1f} | "
                f"{level.errors('raw')} / {level.errors('host')} |"
            )
        if self.streams is not None:
            out += ["", *[line for line in self.streams.lines() if not line.startswith("RESULT")]]
        cold = self.cold
        out += [
            "",
            "### 4. Cold start (fresh interpreters, telemetry off; medians, ms unless a ratio)",
            "",
            "From `make package`'s tree with `PYTHONDONTWRITEBYTECODE=1`, as Azure runs it (checked-hash "
            "bytecode)."
            if cold.packaged
            else "From the source tree (no `build/package`: run `make package`).",
            "",
            "| what | median | runs |",
            "|---|---:|---:|",
            f"| `import function_app` | {median(cold.app_import_ms):.1f} | {len(cold.app_import_ms)} |",
            f"| `import {', '.join(BASELINE)}` (what indexing needs) | "
            f"{median(cold.baseline_import_ms):.1f} | {len(cold.baseline_import_ms)} |",
            f"| **ratio** | **{cold.import_ratio:.3f}** | |",
            f"| cross-check: `function_app` over `azure.functions` within one import (`-X importtime`) "
            f"| {cold.paired_ratio:.3f} | {len(cold.paired_ratios)} |",
            f"| imports deferred to the first request | {median(cold.deferred_import_ms):.0f} | "
            f"{len(cold.deferred_import_ms)} |",
            f"| first request after import (imports, token, MCP session, tool list, call) | "
            f"{median(cold.first_ms):.0f} | {len(cold.first_ms)} |",
            f"| second request | {median(cold.second_ms):.1f} | {len(cold.second_ms)} |",
            f"| the warm-up function (imports, token, a session and a listing per endpoint) | "
            f"{median(cold.warmup_ms):.0f} | {len(cold.warmup_ms)} |",
            f"| **first request after the warm-up** | **{median(cold.after_warmup_ms):.1f}** | "
            f"{len(cold.after_warmup_ms)} |",
        ]
        fail = self.failover
        out += [
            "",
            "### 5. Failover (modern era, primary SIGKILLed under read-only load)",
            "",
            "| calls | failed (all read-only) | kill → first success on the secondary ms | calls after the "
            "kill | p99 ms after the kill (before: median) | active endpoint after |",
            "|---:|---:|---:|---:|---:|---|",
            f"| {fail.calls} | {fail.failed} | {fail.failover_ms:.0f} | {fail.calls_after_kill} | "
            f"{fail.p99_after_kill_ms:.0f} ({fail.median_before_ms:.1f}) | "
            f"{'secondary' if fail.active_endpoint_is_secondary else 'primary'} |",
            "",
            "### 7. What an `Idempotency-Key` costs (modern era, `getConversationStatus`, medians, ms)",
            "",
            "| store | no key | a new key | extra per call with a new key | a stored key replayed | "
            "calls per variant | failed |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for cost in self.idempotency:
            out.append(
                f"| {cost.store} | {cost.median_ms('none'):.2f} | {cost.median_ms('new'):.2f} | "
                f"**{cost.extra_ms:+.2f}** | {cost.median_ms('replay'):.2f} | {len(cost.samples['none'])} | "
                f"{cost.failures} |"
            )
        out += [
            "",
        ]
        out += self._wan_lines()
        out += self.instance_lines(self.instance, self.peers)[:-1]
        out += [
            "### 10. Client CPU, layer by layer (modern era, `getConversationStatus`)",
            "",
            *layers_table(self.layers),
            "",
        ]
        out += ["", "### Long-running operations (findCommonSlot, medians)", "", *tasks_table(self.tasks), ""]
        if self.upstreams is not None:
            up = self.upstreams
            out += [
                "### A second upstream configured (the default's calls/s, 10 callers, slices alternating)",
                "",
                "| upstreams | calls/s per slice | failed |",
                "|---|---|---:|",
                f"| one | {', '.join(f'{rate:.0f}' for rate in up.one)} | |",
                f"| two | {', '.join(f'{rate:.0f}' for rate in up.two)} | {up.failures} |",
                f"| **two over one (median of adjacent slices): {up.overhead_ratio:.3f}** | | |",
                "",
            ]
        result = self.result()
        out.append("RESULT " + " ".join(f"{key}={result[key]}" for key in RESULT_KEYS))
        return out
