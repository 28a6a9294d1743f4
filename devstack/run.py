"""`make run`: the whole devstack - identity endpoint, two Scheduler regions, and the Functions host.

    python -m devstack.run [--app-dir .] [--host-port 7071]

Creates local.settings.json from local.settings.json.example when missing,
reads the ports and secrets from it (an exported environment variable wins,
as with Core Tools), starts every stand-in as a subprocess logging to
.devstack/logs/, prints curl commands to try, and on Ctrl-C or SIGTERM stops
them all - host first, so no request is cut off mid-call to a region. If any
of them dies on its own, the rest are stopped too and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shlex
import signal
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from devstack.easyauth import DEFAULT_AUDIENCE
from devstack.local_settings import LocalSettingsError, ensure_local_settings, read_local_settings
from devstack.processes import (
    REPO_ROOT,
    ManagedProcess,
    ProcessStartError,
    port_is_free,
    start_azurite,
    start_everything,
    start_host,
    start_identity,
    start_scheduler,
)
from devstack.run_plan import DevstackConfigError, DevstackPlan, plan_from_settings
from devstack.serving import configure_logging

_LOGGER = logging.getLogger(__name__)

REGION_NAMES = ("eastus", "westus")
STATE_DIR_NAME = ".devstack"
_WATCH_SECONDS = 0.5


def region_name(index: int) -> str:
    return REGION_NAMES[index] if index < len(REGION_NAMES) else f"region{index + 1}"


def start_devstack(plan: DevstackPlan, *, app_dir: Path, state_dir: Path) -> list[ManagedProcess]:
    """Start everything, in dependency order; on any failure stop what was started and re-raise."""
    others = [(name, port) for name, ports in plan.other_upstreams for port in ports]
    ports = [*plan.scheduler_ports, *(port for _, port in others), plan.identity_port]
    ports += [plan.host_port] if plan.with_host else []
    ports += [plan.azurite_port] if plan.azurite_port is not None else []
    busy = [p for p in ports if not port_is_free(p)]
    if busy:
        raise DevstackConfigError(
            [f"ports already in use: {', '.join(map(str, busy))} (is another devstack still running?)"]
        )
    log_dir = state_dir / "logs"
    started: list[ManagedProcess] = []
    try:
        started.append(
            start_identity(
                port=plan.identity_port,
                log_dir=log_dir,
                header_secret=plan.identity_header,
                signing_key=plan.signing_key,
                wait=False,
            )
        )
        for index, port in enumerate(plan.scheduler_ports):
            started.append(
                start_scheduler(
                    port=port,
                    region=region_name(index),
                    log_dir=log_dir,
                    signing_key=plan.signing_key,
                    client_id=plan.scheduler_client_id,
                    api_key=plan.scheduler_api_key,
                    audience=plan.audience,
                    state_file=state_dir / "scheduler.sqlite3",
                    wait=False,
                )
            )
        for index, (name, port) in enumerate(others):
            # The second upstream: a server another team wrote (docs/several-servers.md).
            started.append(
                start_everything(port=port, name=f"{name}-{index + 1}", log_dir=log_dir, wait=False)
            )
        if plan.azurite_port is not None:
            started.append(
                start_azurite(
                    port=plan.azurite_port, log_dir=log_dir, location=state_dir / "azurite", wait=False
                )
            )
        for process in started:
            process.wait_ready()
        if not plan.with_host:
            return started
        started.append(
            start_host(
                port=plan.host_port,
                log_dir=log_dir,
                app_dir=app_dir,
                env={"DEVSTACK_FUNCTION_KEY": plan.function_key, "DEVSTACK_MASTER_KEY": plan.master_key},
                warm_up=True,
            )
        )
    except BaseException:
        stop_devstack(started)
        raise
    return started


def stop_devstack(processes: list[ManagedProcess]) -> None:
    """Stop in reverse start order: the host first, the identity endpoint last."""
    for process in reversed(processes):
        process.stop()


def curl_examples(plan: DevstackPlan) -> list[str]:
    """Commands against the running host that work when pasted into a POSIX shell as printed.

    The status call needs the id the schedule call returns, so the schedule call keeps it in `$id`
    (and still shows its answer, through stderr) instead of asking the reader to copy it over.
    """
    base = f"http://127.0.0.1:{plan.host_port}/api"
    code = quote(plan.function_key, safe="")  # percent-encoded: nothing in it a shell expands
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    body = (
        '{"participants":["alice@example.com","bob@example.com"],'
        f'"start_time":"{tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")}","topic":"Quarterly review"}}'
    )
    id_from_answer = 'import json,sys; print(json.load(sys.stdin)["structuredContent"]["conversation_id"])'
    return [
        "# list the tools the Scheduler offers",
        f'curl -s -w "\\n" "{base}/tools?code={code}"',
        "# schedule a conversation; its conversation_id is kept in $id",
        f'id=$(curl -s -w "\\n" -X POST "{base}/tools/scheduleConversation?code={code}" '
        f"-H 'content-type: application/json' -d {shlex.quote(body)} "
        f"| tee /dev/stderr | python3 -c {shlex.quote(id_from_answer)})",
        "# the status of that conversation",
        f'curl -s -w "\\n" "{base}/conversations/$id/status?code={code}"',
        "# health",
        f'curl -s -w "\\n" "{base}/health?code={code}"',
        "# watch a tool's progress as Server-Sent Events (HTTP streams; docs/streaming.md)",
        f'curl -sN -X POST "{base}/tools/findCommonSlot?code={code}" '
        "-H 'Accept: text/event-stream' -H 'content-type: application/json' "
        f"-d {shlex.quote(SSE_SEARCH)}",
        *_caller_examples(plan, base, body),
        *other_upstream_examples(plan, base, code),
        *long_running_examples(base, code),
    ]


def other_upstream_examples(plan: DevstackPlan, base: str, code: str) -> list[str]:
    """The same bridge in front of each other upstream (server-everything): its tools and a call."""
    lines: list[str] = []
    for name, _ in plan.other_upstreams:
        lines += [
            f"# the second MCP server, {name!r} (server-everything): its tools, then its echo tool",
            f'curl -s -w "\\n" "{base}/servers/{name}/tools?code={code}"',
            f'curl -s -w "\\n" -X POST "{base}/servers/{name}/tools/echo?code={code}" '
            "-H 'content-type: application/json' -d '{\"message\":\"hello from the bridge\"}'",
        ]
    return lines


SSE_SEARCH = '{"calendars":["alice@example.com","bob@example.com","carol@example.com"],"scan_seconds":3}'
LONG_RUNNING_HEADING = "# a long-running tool as an Azure long-running operation"
WATCH_HEADING = "# or watch it to the end: its status changes as Server-Sent Events, then the result"


def long_running_examples(base: str, code: str) -> list[str]:
    """Start findCommonSlot (a 20-second search) as an operation, then poll its status monitor, or watch it.

    `Prefer: respond-async` asks for `202 Accepted` at once; the status monitor it carries (also at
    `Operation-Location`) has the operation's `id`, kept in `$op` for the poll.
    """
    body = '{"calendars":["alice@example.com","bob@example.com","carol@example.com"],"scan_seconds":20}'
    id_from_monitor = 'import json,sys; print(json.load(sys.stdin)["id"])'
    return [
        LONG_RUNNING_HEADING,
        "# start a 20-second search for a common free slot; the operation id is kept in $op",
        f'op=$(curl -s -w "\\n" -X POST "{base}/tools/findCommonSlot?code={code}" '
        f"-H 'Prefer: respond-async' -H 'content-type: application/json' -d {shlex.quote(body)} "
        f"| tee /dev/stderr | python3 -c {shlex.quote(id_from_monitor)})",
        "# poll it (again after Retry-After seconds) until its status is Succeeded, Failed or Canceled",
        f'curl -s -w "\\n" "{base}/operations/$op?code={code}"',
        WATCH_HEADING,
        f"curl -sN \"{base}/operations/$op?code={code}\" -H 'Accept: text/event-stream'",
    ]


def _caller_examples(plan: DevstackPlan, base: str, body: str) -> list[str]:
    """Calls as other services' identities, with a token from the devstack identity endpoint."""
    if plan.easyauth_audience is None:
        return []
    issuer = f"http://127.0.0.1:{plan.identity_port}/_devstack/caller-token"
    resource = "" if plan.easyauth_audience == DEFAULT_AUDIENCE else f"&resource={plan.easyauth_audience}"

    def bearer(name: str, role: str) -> str:
        return f"-H \"Authorization: Bearer $(curl -s '{issuer}?name={name}&roles={role}{resource}')\""

    json_body = "-H 'content-type: application/json'"
    return [
        "# as a reader identity (app role Scheduler.Read): listing works, scheduling answers 403",
        f'curl -s -X POST "{base}/tools/listConversations?code={plan.function_key}" '
        f"{bearer('status-dashboard', 'Scheduler.Read')} {json_body} -d '{{}}'",
        "# as a writer identity (app role Scheduler.Write): every tool",
        f'curl -s -X POST "{base}/tools/scheduleConversation?code={plan.function_key}" '
        f"{bearer('booking-service', 'Scheduler.Write')} {json_body} -d {shlex.quote(body)}",
    ]


def _print_banner(plan: DevstackPlan, processes: list[ManagedProcess]) -> None:
    lines = ["", "Scheduler Bridge devstack is running:"]
    for process in processes:
        lines.append(f"  {process.name:<18} {process.url:<24} log: {_relative(process.log_path)}")
    lines += [
        "",
        *(
            [f"Function key: {plan.function_key}", "", *curl_examples(plan)]
            if plan.with_host
            else ["Stand-ins only: now run `func start` in another terminal (Core Tools)."]
        ),
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _wait_for_stop_or_crash(processes: list[ManagedProcess]) -> ManagedProcess | None:
    """Block until SIGINT/SIGTERM (returns None) or until a process exits by itself (returns it)."""
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("received %s; stopping", signal.Signals(signum).name)
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop_requested.wait(_WATCH_SECONDS):
            for process in processes:
                if not process.is_running():
                    return process
        return None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.run", description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, default=REPO_ROOT)
    parser.add_argument("--host-port", type=int, default=7071)
    parser.add_argument(
        "--no-host",
        action="store_true",
        help="start only the stand-ins (Scheduler regions, identity, Azurite), for `func start`",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start everything and wait; a bad setting is reported one line each, without a traceback."""
    args = _parse_args(argv)
    configure_logging()
    app_dir: Path = args.app_dir.resolve()
    try:
        settings_path, created = ensure_local_settings(app_dir)
        if created:
            print(f"Created {settings_path} from local.settings.json.example", flush=True)
        plan = plan_from_settings(read_local_settings(settings_path), host_port=args.host_port)
    except LocalSettingsError as exc:
        return _report_config_problems([str(exc)])
    except DevstackConfigError as exc:
        return _report_config_problems(exc.problems, settings_path)
    if args.no_host:
        plan = replace(plan, with_host=False)
    if not plan.function_key or not plan.master_key:
        plan = _with_generated_keys(plan)
    state_dir = app_dir / STATE_DIR_NAME
    try:
        processes = start_devstack(plan, app_dir=app_dir, state_dir=state_dir)
    except DevstackConfigError as exc:
        return _report_config_problems(exc.problems)
    except ProcessStartError as exc:
        print(f"devstack failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted while starting; stopped everything.", file=sys.stderr, flush=True)
        return 130
    try:
        _print_banner(plan, processes)
        crashed = _wait_for_stop_or_crash(processes)
    finally:
        stop_devstack(processes)
    if crashed is not None:
        print(
            f"{crashed.name} exited unexpectedly; stopped the rest. Its log:\n{crashed.log_tail()}",
            file=sys.stderr,
        )
        return 1
    print("devstack stopped.", flush=True)
    return 0


CONFIG_ERROR_EXIT = 2


def _report_config_problems(problems: list[str], settings_path: Path | None = None) -> int:
    where = f" (in {_relative(settings_path)} or the environment)" if settings_path else ""
    lines = [f"devstack failed to start; fix these settings{where}:", *(f"  {p}" for p in problems)]
    print("\n".join(lines), file=sys.stderr, flush=True)
    return CONFIG_ERROR_EXIT


def _with_generated_keys(plan: DevstackPlan) -> DevstackPlan:
    function_key = plan.function_key or secrets.token_urlsafe(24)
    master_key = plan.master_key or secrets.token_urlsafe(24)
    print("DEVSTACK_FUNCTION_KEY/DEVSTACK_MASTER_KEY not set; generated keys for this run.", flush=True)
    return replace(plan, function_key=function_key, master_key=master_key)


if __name__ == "__main__":
    sys.exit(main())
