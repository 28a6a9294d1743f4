"""`python -m reliability.fuzz`: thousands of distinct bad requests against the real HTTP surface
(function_app.py in the devstack Functions host, function keys on, App Service Authentication's
principal headers trusted, tool roles set), each checked on its answer. One `FUZZ ...` line.

Every request is sent raw over its own connection, so headers and bodies arrive exactly as
generated. Each answer is one of:

- a documented problem: `application/problem+json` whose (status, slug) is a row of the error table
  in docs/http-api.md, matching the OpenAPI document's `ProblemDetails` schema;
- a host refusal: the Functions host's own 401 for a missing or wrong function key (no body);
- a failure: accepted (2xx/3xx), a 5xx, or anything else (undocumented).

The Scheduler regions' tool counters are read before and after each kind, so `reached_scheduler`
counts tool runs that bad input caused (target 0). No answer may carry a secret. The replay corpus
(tests/fuzz/corpus/bad_requests.jsonl) is replayed first; failures are written to
.cache/fuzz-failures.jsonl, and `--keep-failures` appends them to the corpus so they replay forever.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
from jsonschema import Draft202012Validator

from devstack.processes import REPO_ROOT, free_port, start_host

from .fuzz_inputs import generate
from .fuzz_requests import BadRequest, Context
from .meter import load_average
from .soak_stack import SoakStack, start_soak_stack

CORPUS = REPO_ROOT / "tests" / "fuzz" / "corpus" / "bad_requests.jsonl"
FAILURES = REPO_ROOT / ".cache" / "fuzz-failures.jsonl"
FUNCTION_KEY = "fuzz-function-key-0123456789"
READ_ROLE, WRITE_ROLE = "Scheduler.Read", "Scheduler.Write"
MAX_BYTES = 4096
CONCURRENCY = 8


def documented_problems() -> set[tuple[int, str]]:
    """(status, slug) of every row of the error table in docs/http-api.md."""
    rows = set()
    for line in (REPO_ROOT / "docs" / "http-api.md").read_text().splitlines():
        match = re.match(r"^\| (\d{3}) \| ((?:`[a-z-]+`(?:, )?)+) \|", line)
        if match:
            rows.update((int(match.group(1)), slug) for slug in re.findall(r"`([a-z-]+)`", match.group(2)))
    return rows


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def send(port: int, request: BadRequest) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"{request.method} {request.path} HTTP/1.1", f"host: 127.0.0.1:{port}", "connection: close"]
        head += [f"{name}: {value}" for name, value in request.headers]
        head.append(f"content-length: {len(request.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + request.body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    header_block, _, body = raw.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = _unchunk(body)
    return Answer(status, headers, body)


def _unchunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if not size:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


@dataclass
class Tally:
    by_kind: Counter[str] = field(default_factory=Counter)
    outcome: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)


class Checker:
    def __init__(self, problem_schema: dict[str, Any], secrets: Iterable[str]) -> None:
        self.documented = documented_problems()
        self.validator = Draft202012Validator(problem_schema)
        self.secrets = tuple(secrets)

    def outcome(self, request: BadRequest, answer: Answer) -> str:
        text = answer.body.decode("utf-8", "replace") + json.dumps(answer.headers)
        if any(secret in text for secret in self.secrets) or "Traceback" in text:
            return "failure: secret or trace in the answer"
        if answer.status >= 500:
            return "failure: 5xx"
        if answer.status < 400:
            return "failure: accepted"
        if answer.headers.get("content-type", "").startswith("application/problem+json"):
            try:
                problem = json.loads(answer.body)
                self.validator.validate(problem)
            except Exception:
                return "failure: problem does not match ProblemDetails"
            slug = str(problem["type"]).rsplit(":", 1)[-1]
            if problem["status"] != answer.status or (answer.status, slug) not in self.documented:
                return f"failure: undocumented {answer.status} {slug}"
            return "documented problem"
        if answer.status == 401 and not answer.body and request.kind == "function-key":
            return "host refusal"
        return f"failure: undocumented {answer.status} {answer.headers.get('content-type', '')}"


def tool_runs(stack: SoakStack) -> int:
    return sum(sum(stack.counters(region)["tool_calls"].values()) for region in stack.regions)


async def run_kind(port: int, requests: list[BadRequest], checker: Checker, tally: Tally) -> None:
    queue: asyncio.Queue[BadRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def worker() -> None:
        while not queue.empty():
            request = queue.get_nowait()
            try:
                answer = await send(port, request)
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                answer = Answer(0, {}, repr(exc).encode())
            outcome = checker.outcome(request, answer)
            tally.by_kind[request.kind] += 1
            tally.outcome[outcome] += 1
            tally.statuses[str(answer.status)] += 1
            if outcome.startswith("failure") and len(tally.failures) < 1000:
                tally.failures.append(
                    {
                        "request": request.to_json(),
                        "outcome": outcome,
                        "status": answer.status,
                        "body": answer.body[:500].decode("utf-8", "replace"),
                    }
                )

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def context(base: str) -> tuple[Context, dict[str, Any]]:
    headers = {"x-functions-key": FUNCTION_KEY}
    listing = httpx2.get(base + "/api/tools", headers=headers, timeout=30).raise_for_status().json()
    document = httpx2.get(base + "/api/openapi.json", headers=headers, timeout=30).raise_for_status().json()
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    valid = {
        "scheduleConversation": {"participants": ["a@example.com"], "start_time": start, "topic": "fuzz"},
        "getConversationStatus": {"conversation_id": "conv-fuzz"},
        "cancelConversation": {"conversation_id": "conv-fuzz"},
        "listConversations": {"limit": 5},
    }
    tools = {tool["name"]: tool["inputSchema"] for tool in listing["tools"] if tool["name"] in valid}
    ctx = Context(tools, valid, ("x-functions-key", FUNCTION_KEY), MAX_BYTES, READ_ROLE, WRITE_ROLE)
    schema = {"$ref": "#/components/schemas/ProblemDetails", "components": document["components"]}
    return ctx, schema


def host_env(stack: SoakStack) -> dict[str, str]:
    return {
        **stack.bridge_env(probe_schedule="0 0 0 1 1 *", idempotency_ttl_seconds=3600),
        "MAX_REQUEST_BYTES": str(MAX_BYTES),
        "WEBSITE_AUTH_ENABLED": "True",  # principal headers are the platform's word (none is valid here)
        "SCHEDULER_TOOL_ROLES": (
            f"getConversationStatus:{READ_ROLE},listConversations:{READ_ROLE},*:{WRITE_ROLE}"
        ),
        "SCHEDULER_KEY_CALLER_ROLES": f"{READ_ROLE},{WRITE_ROLE}",
        "DEVSTACK_FUNCTION_KEY": FUNCTION_KEY,
        "DEVSTACK_MASTER_KEY": "fuzz-master-key-0123456789",
        "FUNCTIONS_WORKER_RUNTIME": "python",
    }


def read_corpus(path: Path = CORPUS) -> list[BadRequest]:
    if not path.exists():
        return []
    return [BadRequest.from_json(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


async def fuzz(seed: int, count: int, *, write_corpus: int = 0) -> tuple[str, bool, Tally]:
    stack = start_soak_stack(token_lifetime_seconds=3600, era="modern")
    host = start_host(
        port=free_port(), log_dir=stack.log_dir, app_dir=REPO_ROOT,
        settings_file=stack.log_dir / "no-local-settings.json", env=host_env(stack),
    )  # fmt: skip
    print(f"fuzz: logs in {stack.log_dir}", file=sys.stderr)
    try:
        ctx, problem_schema = context(host.url)
        checker = Checker(problem_schema, (FUNCTION_KEY, stack.identity_header))
        corpus = read_corpus()
        seen = {request.digest() for request in corpus}
        generated = list(generate(seed, count, ctx, seen))
        if write_corpus:
            _write_corpus(generated, write_corpus)
        tally = Tally()
        started = time.monotonic()
        batches: dict[str, list[BadRequest]] = {}
        for request in [*corpus, *generated]:
            batches.setdefault(request.kind, []).append(request)
        for kind, requests in batches.items():
            before = tool_runs(stack)
            await run_kind(host.port, requests, checker, tally)
            tally.reached[kind] = tool_runs(stack) - before
        seconds = time.monotonic() - started
        log = host.log_path.read_text(errors="replace")
        leaked = sum(log.count(secret) for secret in checker.secrets)
    finally:
        host.stop()
        stack.stop()
    total = sum(tally.by_kind.values())
    failed = sum(n for outcome, n in tally.outcome.items() if outcome.startswith("failure"))
    passed = failed == 0 and sum(tally.reached.values()) == 0 and leaked == 0
    line = (
        f"FUZZ random_state={seed} requests={total} generated={len(generated)} corpus={len(corpus)} "
        f"distinct={len(seen)} documented_problem={tally.outcome['documented problem']} "
        f"host_refusal={tally.outcome['host refusal']} failed={failed} "
        f"five_xx={sum(n for s, n in tally.statuses.items() if s.startswith('5'))} "
        f"reached_scheduler={sum(tally.reached.values())} secrets_in_host_log={leaked} "
        f"by_kind={_pairs(tally.by_kind)} statuses={_pairs(tally.statuses)} "
        f"failures={_pairs({k: v for k, v in tally.outcome.items() if k.startswith('failure')})} "
        f"seconds={seconds:.0f} rate={total / seconds:.0f}/s load={load_average()} "
        f"result={'pass' if passed else 'FAIL'}"
    )
    return line, passed, tally


def _write_corpus(requests: list[BadRequest], per_kind: int) -> None:
    """The first `per_kind` requests of each kind become the replay corpus (replayed by every run)."""
    kept: Counter[str] = Counter()
    lines = []
    for request in requests:
        if kept[request.kind] < per_kind:
            kept[request.kind] += 1
            lines.append(json.dumps(request.to_json()) + "\n")
    CORPUS.parent.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text("".join(lines))


def _pairs(counter: dict[str, int]) -> str:
    return ",".join(f"{k.replace(' ', '_')}:{v}" for k, v in sorted(counter.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=10_000, help="distinct generated requests (plus the corpus)"
    )
    parser.add_argument("--random-state", type=int, default=20261206)
    parser.add_argument("--keep-failures", action="store_true", help="append failing requests to the corpus")
    parser.add_argument("--write-corpus", type=int, default=0, metavar="N", help="make the corpus N per kind")
    args = parser.parse_args(argv)
    line, passed, tally = asyncio.run(fuzz(args.random_state, args.count, write_corpus=args.write_corpus))
    if tally.failures:
        FAILURES.parent.mkdir(parents=True, exist_ok=True)
        FAILURES.write_text("".join(json.dumps(failure) + "\n" for failure in tally.failures))
        print(f"fuzz: {len(tally.failures)} failures in {FAILURES}", file=sys.stderr)
        if args.keep_failures:
            with CORPUS.open("a") as corpus:
                corpus.writelines(json.dumps(failure["request"]) + "\n" for failure in tally.failures)
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
