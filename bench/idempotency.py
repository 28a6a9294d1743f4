"""Section 6: what an `Idempotency-Key` costs per call, in each store.

Three variants of the same call (`getConversationStatus` through the in-process `call_tool`
function, modern era), interleaved round by round: no key; a new key (claim, call, store the
answer: two writes); and the repeat of a stored key (one failed create and one read, no call).
First with the in-process store, then with the blob store on Azurite over loopback, which stands
in for the storage account (a real account adds its own round trips: a few ms each in-region).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import free_port, start_azurite
from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import reset_bridge

from .rig import Rig
from .stack import apply_env
from .stats import median, ms

WARMUP = 10
VARIANTS = ("none", "new", "replay")
AZURITE_ACCOUNT_KEY = (  # Azurite's published development key; it guards nothing
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class StoreCost:
    store: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VARIANTS})
    failures: int = 0

    def median_ms(self, variant: str) -> float:
        return ms(median(self.samples[variant]))

    @property
    def extra_ms(self) -> float:
        """What a new key adds to a call: the price of exactly-once."""
        return self.median_ms("new") - self.median_ms("none")


async def run_idempotency(rig: Rig, *, rounds: int) -> list[StoreCost]:
    results = [await _measure(rig, "in-process", {}, rounds)]
    location = Path(tempfile.mkdtemp(prefix="bench-azurite-", dir=rig.stack.log_dir))
    port = free_port()
    azurite = start_azurite(port=port, log_dir=rig.stack.log_dir, location=location)
    try:
        storage = {
            "AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
            "IDEMPOTENCY_CONTAINER": "bench-idempotency",
        }
        results.append(await _measure(rig, "blob (Azurite, loopback)", storage, rounds))
    finally:
        await reset_bridge()
        azurite.stop()
    return results


async def _measure(rig: Rig, store: str, extra: dict[str, str], rounds: int) -> StoreCost:
    apply_env({**rig.stack.bridge_env("modern"), **extra})
    reset_settings()
    await reset_bridge()
    rig.era = "modern"
    cost = StoreCost(store)
    stored = str(uuid.uuid4())

    async def call(variant: str) -> bool:
        key = {"none": None, "new": str(uuid.uuid4()), "replay": stored}[variant]
        headers = {"Idempotency-Key": key} if key else None
        status, _ = await rig.bridge.invoke(rig.arguments, headers=headers)
        return status == 200

    for _ in range(WARMUP):
        for variant in VARIANTS:
            await call(variant)
    for number in range(rounds):
        order = VARIANTS[number % 3 :] + VARIANTS[: number % 3]
        for variant in order:
            started = time.perf_counter()
            ok = await call(variant)
            cost.samples[variant].append(time.perf_counter() - started)
            cost.failures += not ok
    return cost
