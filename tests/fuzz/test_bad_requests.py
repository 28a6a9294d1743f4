"""A sample of the 10,000 bad requests (`make fuzz` runs them all, docs/reliability.md): the replay
corpus plus 500 generated from a fixed random state, sent raw to function_app.py in the devstack host.

Every one must end as a documented problem (or the host's 401 for a missing or wrong function key),
never a 5xx, never an accepted call, never a tool run at the Scheduler. The checker itself is held
to a few answers it must reject, so a checker that passes everything fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

from devstack.processes import REPO_ROOT
from reliability.fuzz import CORPUS, Answer, Checker, read_corpus
from reliability.fuzz_requests import BadRequest

from ..test_soak import fields

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "status": {"type": "integer"}},
}
REQUEST = BadRequest("body", "POST", "/api/tools/listConversations", (), b"[")


def problem(status: int, slug: str, **extra: object) -> Answer:
    body = {"type": f"urn:problem:scheduler-bridge:{slug}", "title": "t", "status": status, "detail": "d"}
    return Answer(
        status, {"content-type": "application/problem+json"}, json.dumps({**body, **extra}).encode()
    )


def test_the_checker_tells_a_documented_problem_from_everything_else():
    checker = Checker(PROBLEM_SCHEMA, ["secret-value"])
    assert checker.outcome(REQUEST, problem(400, "bad-request")) == "documented problem"
    assert checker.outcome(REQUEST, problem(400, "no-such-slug")).startswith("failure: undocumented")
    assert checker.outcome(REQUEST, problem(404, "bad-request")).startswith("failure: undocumented")
    assert checker.outcome(REQUEST, problem(400, "bad-request", leak="secret-value")).startswith("failure")
    assert checker.outcome(REQUEST, Answer(200, {}, b"{}")) == "failure: accepted"
    assert checker.outcome(REQUEST, problem(500, "internal-error")) == "failure: 5xx"
    assert checker.outcome(REQUEST, Answer(401, {}, b"")).startswith("failure"), "401 only for key requests"


def test_the_replay_corpus_holds_every_kind():
    corpus = read_corpus()
    assert len(corpus) >= 90, CORPUS
    assert {request.kind for request in corpus} == {
        "body", "arguments", "id", "idempotency-key", "principal", "role", "tool", "function-key", "operation", "server",
    }  # fmt: skip
    assert len({request.digest() for request in corpus}) == len(corpus)


def test_a_sample_of_bad_requests_all_end_as_documented_problems():
    run = subprocess.run(
        [sys.executable, "-m", "reliability.fuzz", "--count", "500"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("FUZZ ")]
    assert lines, f"no FUZZ line (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    print(lines[0])
    fuzz = fields(lines[0])
    assert int(fuzz["requests"]) >= 500 + len(read_corpus())
    assert int(fuzz["distinct"]) == int(fuzz["requests"])
    assert int(fuzz["failed"]) == 0, run.stderr[-2000:]
    assert int(fuzz["five_xx"]) == 0
    assert int(fuzz["reached_scheduler"]) == 0
    assert int(fuzz["secrets_in_host_log"]) == 0
    assert int(fuzz["documented_problem"]) + int(fuzz["host_refusal"]) == int(fuzz["requests"])
