"""`Idempotency-Key` on tool calls, in-process, against both stores: this process and Azurite."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from devstack.processes import free_port
from mcp_bridge.config.loader import load_settings
from mcp_bridge.idempotency.blob import BlobStore
from mcp_bridge.idempotency.keys import fingerprint, storage_name
from mcp_bridge.idempotency.once import CLAIM_MARGIN_SECONDS
from mcp_bridge.idempotency.records import Record
from mcp_bridge.idempotency.shared import store_for

from .conftest import AZURITE_KEY, SECRETS, control, schedule_arguments, tool_calls
from .test_audit import audit_lines  # noqa: F401 (a fixture)
from .test_tool_calls import assert_problem

SCHEDULE = "scheduleConversation"


@pytest.fixture(params=["in-process", "blob"])
def keyed(request, configure):
    """`await keyed(**settings)`: a fresh bridge whose records live in the store under test."""

    async def apply(**settings: str) -> None:
        if request.param == "blob":
            azurite = request.getfixturevalue("azurite")
            settings = {
                "azurewebjobsstorage": azurite.connection_string,
                "idempotency_container": f"idem-{uuid.uuid4().hex[:12]}",
                **settings,
            }
        await configure(**settings)

    apply.store = request.param
    return apply


def booked(stack) -> int:
    return tool_calls(stack.east, SCHEDULE) + tool_calls(stack.west, SCHEDULE)


async def call(functions, key: str, arguments=None, tool: str = SCHEDULE):
    return await functions.call_tool(tool, arguments, headers={"Idempotency-Key": key})


async def test_a_repeat_gets_the_first_answer_byte_for_byte(keyed, functions, stack):
    await keyed()
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    first = await call(functions, key, arguments)
    assert first.status == 200, first.body
    assert "Idempotent-Replayed" not in first.headers
    for _ in range(3):
        again = await call(functions, key, arguments)
        assert again.status == 200
        assert again.body == first.body
        assert again.headers["Idempotent-Replayed"] == "true"
    assert booked(stack) == 1
    quoted = await call(functions, f'"{key}"', arguments)  # the draft's sf-string form: the same key
    assert quoted.body == first.body and quoted.headers["Idempotent-Replayed"] == "true"
    reordered = dict(reversed(list(arguments.items())))
    assert (await call(functions, key, reordered)).body == first.body, "canonical JSON: order is not a change"
    assert booked(stack) == 1
    health = await functions("health", path="/api/health")
    assert health.json["idempotency"]["store"].startswith("blob:" if keyed.store == "blob" else "in-process")
    assert health.json["idempotency"]["shared"] is (keyed.store == "blob")


async def test_a_reused_key_for_another_call_is_422(keyed, functions, stack):
    await keyed()
    key = str(uuid.uuid4())
    assert (await call(functions, key, schedule_arguments("first"))).status == 200
    different = await call(functions, key, schedule_arguments("second"))
    problem = assert_problem(different, 422, "idempotency-key-reused")
    assert "new key" in problem["detail"]
    other_tool = await call(functions, key, {}, tool="listConversations")
    assert_problem(other_tool, 422, "idempotency-key-reused")
    assert booked(stack) == 1
    assert tool_calls(stack.east, "listConversations") == 0


INVALID_KEYS = ["", "   ", "x" * 256, "ключ", "has space", "tab\tinside", '"unterminated', '"a"b"', '""']


async def test_invalid_keys_are_400_and_nothing_is_called(configure, functions, stack):
    await configure()
    for key in INVALID_KEYS:
        raw = key.encode("utf-8").decode("latin-1")  # as a header carries it: bytes, not text
        reply = await functions.call_tool(SCHEDULE, schedule_arguments(), headers={"Idempotency-Key": raw})
        problem = assert_problem(reply, 400, "bad-request")
        assert "Idempotency-Key" in problem["detail"], key
    assert booked(stack) == 0
    assert (await call(functions, "k" * 255, schedule_arguments())).status == 200, "the longest key is fine"


async def test_an_answer_that_never_reached_the_scheduler_is_not_kept(keyed, functions, stack):
    await keyed(endpoints=[stack.east.mcp_url])
    key = str(uuid.uuid4())
    typo = await call(functions, key, {**schedule_arguments(), "duration_minuts": 45})
    assert_problem(typo, 400, "invalid-arguments")
    fixed = await call(functions, key, schedule_arguments())
    assert fixed.status == 200 and "Idempotent-Replayed" not in fixed.headers
    assert booked(stack) == 1

    if keyed.store == "blob":
        return  # the outage below exercises the same release as the 400 above; once is enough
    key = str(uuid.uuid4())
    arguments = schedule_arguments("while the region is down")
    stack.east.kill()
    down = await call(functions, key, arguments)
    assert_problem(down, 503, "unavailable")  # nothing was sent
    stack.east.restart()
    after = await call(functions, key, arguments)
    assert after.status == 200, after.body
    assert "Idempotent-Replayed" not in after.headers
    assert tool_calls(stack.east, SCHEDULE) == 1, (
        "run once, by the retry (the restarted region counts afresh)"
    )


async def test_outcome_unknown_is_kept_and_never_run_again(keyed, functions, stack):
    await keyed()
    control(stack.east.url, "POST", "/_devstack/faults", {"after_execute": True, "tools": [SCHEDULE]})
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    first = await call(functions, key, arguments)
    assert_problem(first, 502, "outcome-unknown")
    assert booked(stack) == 1, "the tool ran; its answer was lost"
    again = await call(functions, key, arguments)
    assert again.status == 502 and again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert booked(stack) == 1


async def test_a_tool_error_is_kept(keyed, functions, stack):
    await keyed()
    key = str(uuid.uuid4())
    arguments = {"conversation_id": "conv-does-not-exist"}
    first = await call(functions, key, arguments, tool="getConversationStatus")
    assert_problem(first, 422, "tool-error")
    again = await call(functions, key, arguments, tool="getConversationStatus")
    assert again.body == first.body and again.headers["Idempotent-Replayed"] == "true"
    assert tool_calls(stack.east, "getConversationStatus") == 1


async def test_a_repeat_while_the_first_runs_is_409_with_retry_after(keyed, functions, stack):
    await keyed()
    control(stack.east.url, "POST", "/_devstack/faults", {"delay_seconds": 1.0, "tools": [SCHEDULE]})
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    first = asyncio.create_task(call(functions, key, arguments))
    store = await store_for(load_settings())
    for _ in range(100):  # until claimed: then the call is at the slow Scheduler
        if await store.read(storage_name(key)) is not None:
            break
        await asyncio.sleep(0.05)
    busy = await call(functions, key, arguments)
    problem = assert_problem(busy, 409, "request-in-progress")
    assert problem["tool"] == SCHEDULE
    assert 1 <= int(busy.headers["Retry-After"]) <= 5
    assert (await first).status == 200
    replay = await call(functions, key, arguments)
    assert replay.status == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert booked(stack) == 1


async def test_after_the_ttl_the_key_is_free_again(keyed, functions, stack):
    await keyed(idempotency_ttl_seconds="1")
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    first = await call(functions, key, arguments)
    assert (await call(functions, key, arguments)).headers.get("Idempotent-Replayed") == "true"
    await asyncio.sleep(1.2)
    later = await call(functions, key, arguments)
    assert later.status == 200 and "Idempotent-Replayed" not in later.headers
    ids = {reply.json["structuredContent"]["conversation_id"] for reply in (first, later)}
    assert len(ids) == 2 and booked(stack) == 2


async def test_a_claim_left_by_a_dead_instance_turns_into_outcome_unknown(keyed, functions, stack):
    await keyed()
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    store = await store_for(load_settings())
    now = time.time()
    left = Record(
        state="running",
        fingerprint=fingerprint(SCHEDULE, arguments),
        tool=SCHEDULE,
        claim="another-instance",
        deadline=now - CLAIM_MARGIN_SECONDS - 0.1,  # its instance died; the margin has passed
        expires_at=now + 3600,
    )
    await store.create(storage_name(key), left.encode(), expires_at=left.expires_at)
    unknown = await call(functions, key, arguments)
    problem = assert_problem(unknown, 502, "outcome-unknown")
    assert "never finished" in problem["detail"]
    assert unknown.headers["Idempotent-Replayed"] == "true"
    again = await call(functions, key, arguments)
    assert again.body == unknown.body
    assert booked(stack) == 0, "never a re-run"


async def test_storage_down_refuses_keyed_calls_only(configure, functions, stack):
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    )
    await configure(azurewebjobsstorage=dead, idempotency_container="idem-down")
    keyed = await call(functions, str(uuid.uuid4()), schedule_arguments())
    assert_problem(keyed, 503, "idempotency-store-unavailable")
    assert keyed.headers["Retry-After"]
    assert booked(stack) == 0
    plain = await functions.call_tool(SCHEDULE, schedule_arguments())
    assert plain.status == 200
    assert booked(stack) == 1


async def test_stored_records_hold_no_key_argument_or_secret(configure, functions, stack, azurite):
    container = f"idem-{uuid.uuid4().hex[:12]}"
    await configure(azurewebjobsstorage=azurite.connection_string, idempotency_container=container)
    key = "customer-key-" + uuid.uuid4().hex
    arguments = schedule_arguments("record contents")
    arguments["participants"] = ["only-in-the-request@example.com"]
    await call(functions, key, arguments, tool="listConversations")  # 400: never kept
    await call(functions, key + "-2", {"conversation_id": "conv-x"}, tool="getConversationStatus")
    await call(functions, key + "-3", schedule_arguments())
    store = BlobStore(load_settings())
    try:
        names = [blob.name async for blob in store._container.list_blobs()]
        assert sorted(names) == sorted(storage_name(key + suffix) for suffix in ("-2", "-3"))
        for name in names:
            data, _ = await store.read(name)
            assert key.encode() not in data
            for secret in (*SECRETS, AZURITE_KEY):
                assert secret.encode() not in data
            record = Record.decode(data)
            assert record.state == "done" and b"code=" not in record.answer.body
    finally:
        await store.aclose()


async def test_the_audit_trail_says_what_each_keyed_request_got(
    configure,
    functions,
    stack,
    audit_lines,  # noqa: F811
):
    await configure()
    key, arguments = str(uuid.uuid4()), schedule_arguments()
    control(stack.east.url, "POST", "/_devstack/faults", {"delay_seconds": 1.0, "tools": [SCHEDULE]})
    first = asyncio.create_task(call(functions, key, arguments))
    store = await store_for(load_settings())
    for _ in range(100):
        if await store.read(storage_name(key)) is not None:
            break
        await asyncio.sleep(0.05)
    await call(functions, key, arguments)  # 409
    await first
    await call(functions, key, arguments)  # replayed
    await call(functions, key, {**arguments, "topic": "other"})  # 422
    records = [
        (fields["outcome"], fields["status"], fields["idempotency_key"]) for fields, _ in audit_lines()
    ]
    assert records == [
        ("request-in-progress", 409, key),
        ("ok", 200, key),
        ("replayed", 200, key),
        ("idempotency-key-reused", 422, key),
    ]


async def test_keys_are_scoped_to_the_caller(configure, functions, stack):
    """Another service sending the same key and body gets its own call, never this caller's answer."""
    from .test_caller_roles import principal

    await configure(website_auth_enabled="True")
    key, arguments = str(uuid.uuid4()), schedule_arguments("scoped")
    headers = {"Idempotency-Key": key}
    alice = await functions.call_tool(SCHEDULE, arguments, headers={**headers, **principal("alice")})
    bob = await functions.call_tool(SCHEDULE, arguments, headers={**headers, **principal("bob")})
    assert alice.status == bob.status == 200
    assert alice.body != bob.body and "Idempotent-Replayed" not in bob.headers
    again = await functions.call_tool(SCHEDULE, arguments, headers={**headers, **principal("alice")})
    assert again.body == alice.body and again.headers["Idempotent-Replayed"] == "true"
    assert booked(stack) == 2
