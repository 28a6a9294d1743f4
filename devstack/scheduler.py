"""The reference Scheduler: a real MCP server (mcp SDK `MCPServer`) standing in for one Scheduler region.

Run one process per region:

    python -m devstack.scheduler --port 5146 --region eastus --era modern \\
        --audience api://scheduler-devstack --signing-key KEY --client-id ID --api-key KEY \\
        [--state-file .devstack/scheduler.sqlite3]

Requests to `/mcp` pass, outermost first: the observer (counts, logs), the
fault injector, authentication, the unknown-session answer style, the era shim
(`--era legacy` only), then the SDK's Streamable HTTP transport. `/ping` and `/_devstack/*` are outside all
of that. Regions given the same `--state-file` share their conversations,
like real regions on one geo-replicated database; tasks (devstack.scheduler_tasks) stay in the
memory of the region process that runs them.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus
from starlette.applications import Starlette

from devstack.conversations import ConversationStore, InMemoryConversationStore, SqliteConversationStore
from devstack.scheduler_auth import SchedulerAuthMiddleware, SchedulerCredentials
from devstack.scheduler_catalog import catalog_routes
from devstack.scheduler_control import scheduler_control_routes
from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_era import LegacyEraMiddleware, ProtocolEra
from devstack.scheduler_faults import FaultState, SchedulerFaultMiddleware
from devstack.scheduler_observer import SchedulerObserverMiddleware
from devstack.scheduler_session_answers import SessionAnswer, SessionAnswerMiddleware, SessionAnswerStyle
from devstack.scheduler_slots import register_slot_tool
from devstack.scheduler_task_store import TaskStore
from devstack.scheduler_tasks import SchedulerTasks
from devstack.scheduler_tools import register_scheduler_tools
from devstack.serving import configure_logging, serve
from devstack.tls import ensure_tls_files

_LOGGER = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SERVER_NAME = "scheduler"


@dataclass(frozen=True)
class SchedulerConfig:
    """Everything one Scheduler region needs; `state_file=None` keeps conversations in memory."""

    region: str
    credentials: SchedulerCredentials
    era: ProtocolEra = "modern"
    state_file: Path | None = None
    tools_ttl_ms: int = 60_000
    """The `ttlMs` cache hint on tools/list (2026-07-28 clients honour it)."""
    session_answer: SessionAnswerStyle = "spec-404"
    """How an unknown `Mcp-Session-Id` is answered from the start (a restart keeps its style)."""
    task_poll_interval_ms: int = 1_000
    """The `pollInterval`/`pollIntervalMs` this region suggests to clients polling its tasks."""


def build_app(config: SchedulerConfig) -> Starlette:
    """The ASGI app of one region. Its lifespan runs the MCP session manager, so serve it with lifespan on."""
    counters = SchedulerCounters(region=config.region)
    faults = FaultState()
    session_answer = SessionAnswer(style=config.session_answer)
    store: ConversationStore = (
        SqliteConversationStore(config.state_file)
        if config.state_file is not None
        else InMemoryConversationStore()
    )
    bus = InMemorySubscriptionBus()
    tasks = SchedulerTasks(TaskStore(poll_interval_ms=config.task_poll_interval_ms))
    server = MCPServer(
        subscriptions=bus,
        cache_hints={"tools/list": CacheHint(ttl_ms=config.tools_ttl_ms, scope="public")},
        name=SERVER_NAME,
        title="Scheduler (devstack reference)",
        description="Schedules conversations between participants.",
        version="1.0.0",
        instructions=f"Scheduler region {config.region}.",
        extensions=[tasks],
    )
    server.middleware.append(tasks.legacy_middleware)
    register_scheduler_tools(server, store=store, counters=counters, region=config.region)
    register_slot_tool(server, counters=counters, region=config.region)
    routes = scheduler_control_routes(
        region=config.region, counters=counters, faults=faults, session_answer=session_answer
    )
    routes += catalog_routes(server=server, bus=bus, region=config.region)
    for route in routes:
        server.custom_route(route.path, methods=sorted(route.methods or []))(route.endpoint)

    app = server.streamable_http_app(streamable_http_path=MCP_PATH)
    # add_middleware wraps: the last one added is the outermost.
    if config.era == "legacy":
        app.add_middleware(LegacyEraMiddleware, mcp_path=MCP_PATH)
    app.add_middleware(SessionAnswerMiddleware, answer=session_answer, mcp_path=MCP_PATH)
    app.add_middleware(
        SchedulerAuthMiddleware, credentials=config.credentials, counters=counters, mcp_path=MCP_PATH
    )
    app.add_middleware(SchedulerFaultMiddleware, faults=faults, counters=counters, mcp_path=MCP_PATH)
    app.add_middleware(SchedulerObserverMiddleware, counters=counters, mcp_path=MCP_PATH)
    _LOGGER.info(
        "scheduler region %s (%s era) with %s state",
        config.region,
        config.era,
        config.state_file or "in-memory",
    )
    return app


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.scheduler", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5146)
    parser.add_argument("--region", default="eastus")
    parser.add_argument("--era", choices=["modern", "legacy"], default="modern")
    parser.add_argument("--audience", default="api://scheduler-devstack")
    parser.add_argument("--signing-key", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--tools-ttl-ms", type=int, default=60_000)
    parser.add_argument("--task-poll-interval-ms", type=int, default=1_000)
    parser.add_argument(
        "--tls-dir", type=Path, default=None, help="serve HTTPS with the devstack CA's certificate from here"
    )
    parser.add_argument(
        "--session-answer",
        choices=get_args(SessionAnswerStyle),
        default="spec-404",
        help="how an unknown Mcp-Session-Id is answered (POST /_devstack/session-answer changes it)",
    )
    parser.add_argument(
        "--keep-alive", type=float, default=5, help="idle keep-alive seconds (a production front end: 120)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging()
    config = SchedulerConfig(
        region=args.region,
        era=args.era,
        state_file=args.state_file,
        tools_ttl_ms=args.tools_ttl_ms,
        session_answer=args.session_answer,
        task_poll_interval_ms=args.task_poll_interval_ms,
        credentials=SchedulerCredentials(
            audience=args.audience,
            signing_key=args.signing_key,
            client_id=args.client_id,
            api_key=args.api_key,
        ),
    )
    if config.state_file is not None:
        config.state_file.parent.mkdir(parents=True, exist_ok=True)
    tls = ensure_tls_files(args.tls_dir) if args.tls_dir is not None else None
    serve(
        build_app(config),
        port=args.port,
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
        keep_alive_seconds=args.keep_alive,
    )


if __name__ == "__main__":
    main()
