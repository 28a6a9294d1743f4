"""The peers `make bench` measures the bridge against (section 9) are pinned, reported and secret-free.

Installing and running them is `make bench`'s job (seconds of install, a minute of load), not
`make test`'s; what can be held here cheaply is what a run rests on: each peer's compiled lock pins
every package exactly, the pinned peer version is the one the harness checks after installing,
every side the harness measures has its `RESULT` keys, and the config LiteLLM starts from names
its secrets instead of holding them.
"""

from __future__ import annotations

import re

from bench.http_load import Run
from bench.peer_servers import LITELLM, PEERS, litellm_config
from bench.peers import SIDES, PeerLevel, PeersResult, table
from bench.report import RESULT_KEYS, Report

_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==(\S+)")
COMPROMISED_LITELLM = {"1.107.0"}


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        found[match.group(1).split("[", 1)[0].lower()] = match.group(2)
    return found


def test_each_peer_lock_pins_every_package_exactly_and_the_peer_at_its_version():
    for peer in PEERS:
        locked = pins(peer.lock.read_text())
        wanted = pins(peer.lock.with_suffix(".in").read_text())
        assert locked[peer.package] == peer.version, peer.name
        assert wanted[peer.package] == peer.version, f"{peer.name}: requirements.in and the harness disagree"
        assert len(locked) > len(wanted), f"{peer.name}: the lock is compiled, not the input copied"


def test_litellm_is_pinned_to_a_reviewed_release_with_its_proxy_extra():
    assert LITELLM.version not in COMPROMISED_LITELLM
    assert f"litellm[proxy]=={LITELLM.version}" in LITELLM.lock.with_suffix(".in").read_text()
    assert "fastapi" in pins(LITELLM.lock.read_text()), "the proxy extra's server is in the lock"


def test_the_litellm_config_names_its_secrets_instead_of_holding_them():
    config = litellm_config("http://127.0.0.1:1/mcp")
    assert "master_key: os.environ/LITELLM_MASTER_KEY" in config
    assert "auth_value: os.environ/SCHEDULER_BEARER_TOKEN" in config
    assert "url: http://127.0.0.1:1/mcp" in config
    assert "database_url" not in config.lower(), "no database: no Prisma, no migrations"


def measured() -> PeersResult:
    """Two levels where side number n answered 100/(n+1) calls/s at p50 10(n+1) ms for 2 s, using
    0.2(n+1) s of CPU: n+1 ms per call."""
    levels = []
    for connections in (1, 16):
        level = PeerLevel(connections)
        for number, side in enumerate(SIDES):
            level.runs[side].append(Run(100.0 / (number + 1), 10.0 * (number + 1), 20.0, 0))
            level.cpu_seconds[side].append(0.2)
            level.wall_seconds[side].append(2.0)
        levels.append(level)
    return PeersResult("wrk", 3.0, levels, (0.0, 0.0), dict.fromkeys(SIDES, 1))


def test_every_measured_side_has_its_result_keys():
    keys = Report.peer_keys(measured())
    peer_keys = {key for key in RESULT_KEYS if key.startswith("bridge_") or "_p50_ms_" in key}
    assert set(keys) == peer_keys
    assert keys["bridge_over_litellm_rps_16"] == 3.0
    assert keys["litellm_p50_ms_1"] == 30.0


def test_the_table_has_a_cell_under_every_heading_and_each_sides_cpu_per_call():
    lines = table(measured())
    header, rule, first = lines[0], lines[1], lines[2]
    assert header.count("|") == rule.count("|") == first.count("|")
    cpu_cell = first.split("|")[-3].strip()
    assert cpu_cell == " / ".join(f"{0.2 / (100.0 / (n + 1) * 2.0) * 1000:.2f}" for n in range(len(SIDES)))
