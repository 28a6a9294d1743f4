"""The worker hands the C allocator's free heap back to the system on a schedule
(`MEMORY_TRIM_SECONDS`, mcp_bridge/process_memory.py), and stops when the bridge is reset.

The freed heap is made the way a long run makes it: many blocks malloc serves from the main heap,
one in 32 of them kept, the rest freed. The holes between the kept ones are whole free pages that
glibc does not return by itself (it returns only free space at the top of the heap).
"""

from __future__ import annotations

import asyncio

import pytest

from mcp_bridge import process_memory
from mcp_bridge.runtime import get_bridge, reset_bridge
from reliability.meter import rss_mib

pytestmark = pytest.mark.skipif(process_memory.allocator_trim() is None, reason="no glibc malloc_trim")

FREED_MIB = 64


def free_heap_between_kept_blocks() -> list[bytes]:
    blocks = [bytes(2048) + bytes([n % 256]) for n in range(FREED_MIB * 512)]  # malloc, not pymalloc
    kept = blocks[::32]
    del blocks
    return kept


async def resident_after(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return rss_mib()


async def test_freed_heap_stays_resident_without_trimming(configure):
    await configure(memory_trim_seconds="0")
    await get_bridge()
    before = rss_mib()
    kept = free_heap_between_kept_blocks()
    assert await resident_after(0.6) > before + FREED_MIB / 2, "the freed heap was kept by the allocator"
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "allocator-trim"]
    del kept


async def test_the_bridge_hands_freed_heap_back_on_its_schedule(configure):
    await configure(memory_trim_seconds="0.2")
    await get_bridge()
    trims = process_memory.stats.trims
    before = rss_mib()
    kept = free_heap_between_kept_blocks()
    after = await resident_after(0.6)
    assert process_memory.stats.trims > trims
    assert after < before + FREED_MIB / 4, f"{after - before:.1f} MiB still resident after trimming"
    del kept


async def test_resetting_the_bridge_stops_the_trimming(configure):
    await configure(memory_trim_seconds="0.2")
    await get_bridge()
    assert [task for task in asyncio.all_tasks() if task.get_name() == "allocator-trim"]
    await reset_bridge()
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "allocator-trim"]
