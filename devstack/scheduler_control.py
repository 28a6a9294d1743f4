"""The Scheduler stand-in's unauthenticated control API under `/_devstack/`, plus `/ping`.

Tests use it to read what reached the Scheduler and to arm failures. It
needs no auth because the server only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import logging
from typing import get_args

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.scheduler_counters import SchedulerCounters
from devstack.scheduler_faults import FaultPlan, FaultState
from devstack.scheduler_session_answers import SessionAnswer, SessionAnswerStyle

_LOGGER = logging.getLogger(__name__)


def scheduler_control_routes(
    *, region: str, counters: SchedulerCounters, faults: FaultState, session_answer: SessionAnswer
) -> list[Route]:
    """Routes for `/ping`, `/_devstack/counters`, `/_devstack/reset`, `/_devstack/faults` and
    `/_devstack/session-answer`."""

    async def ping(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "region": region})

    async def read_counters(_request: Request) -> Response:
        return JSONResponse(counters.snapshot())

    async def reset(_request: Request) -> Response:
        counters.reset()
        session_answer.style = "spec-404"
        return JSONResponse(counters.snapshot())

    async def read_faults(_request: Request) -> Response:
        return JSONResponse(faults.describe())

    async def arm_fault(request: Request) -> Response:
        try:
            plan = FaultPlan.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse(
                {"error": "invalid fault", "details": exc.errors(include_url=False, include_context=False)},
                400,
            )
        faults.arm(plan)
        _LOGGER.info("fault armed: %s", plan.model_dump(exclude_defaults=True))
        return JSONResponse(faults.describe())

    async def clear_faults(_request: Request) -> Response:
        faults.clear()
        return JSONResponse(faults.describe())

    async def set_session_answer(request: Request) -> Response:
        body = await request.json()
        style = body.get("style") if isinstance(body, dict) else None
        if style not in get_args(SessionAnswerStyle):
            return JSONResponse({"error": "unknown style", "styles": list(get_args(SessionAnswerStyle))}, 400)
        session_answer.style = style
        return JSONResponse({"style": style})

    return [
        Route("/ping", ping, methods=["GET"]),
        Route("/_devstack/session-answer", set_session_answer, methods=["POST"]),
        # The bridge probes "endpoint + /ping": /mcp/ping for an /mcp endpoint.
        Route("/mcp/ping", ping, methods=["GET"]),
        Route("/_devstack/counters", read_counters, methods=["GET"]),
        Route("/_devstack/reset", reset, methods=["POST"]),
        Route("/_devstack/faults", read_faults, methods=["GET"]),
        Route("/_devstack/faults", arm_fault, methods=["POST"]),
        Route("/_devstack/faults", clear_faults, methods=["DELETE"]),
    ]
