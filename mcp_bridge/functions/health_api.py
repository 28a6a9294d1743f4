"""The health probe timer and `GET /api/health`.

The timer probes every upstream's endpoints, all at once, and publishes one snapshot holding them
all; `/api/health` shows this instance's view of each upstream (probe results, possibly from the
shared snapshot, plus its own passive ejections) and an overall status naming any upstream that is
not `ok` (`failover.all_upstreams`).
"""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from .tools_api import respond

_LOGGER = logging.getLogger(__name__)

_AUTH_LEVELS = {
    "anonymous": func.AuthLevel.ANONYMOUS,
    "function": func.AuthLevel.FUNCTION,
    "admin": func.AuthLevel.ADMIN,
}


def health_auth_level() -> func.AuthLevel:
    """`HEALTH_AUTH_LEVEL`, read leniently: indexing must not fail on a bad value (the setting
    itself is validated with the others and reported as a 500 on every request)."""
    return _AUTH_LEVELS.get(
        os.environ.get("HEALTH_AUTH_LEVEL", "function").strip().lower(), func.AuthLevel.FUNCTION
    )


bp = func.Blueprint()


@bp.function_name("health_probe")
@bp.timer_trigger(
    schedule="%HEALTH_PROBE_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
async def health_probe(timer: func.TimerRequest) -> None:
    # Imported here, not at indexing time (see tools_api).
    from ..config.loader import SettingsError
    from ..failover.all_upstreams import probe_upstreams
    from ..runtime import all_bridges

    if timer.past_due:
        _LOGGER.warning("Health probe is running late (past due)")
    try:
        built = await all_bridges()
    except SettingsError as exc:
        _LOGGER.error("Health probe skipped: invalid settings: %s", exc)
        return
    bridges = {}
    for name, bridge in built.items():
        if isinstance(bridge, Exception):
            _LOGGER.warning("Health probe skipped upstream=%s: %s", name, type(bridge).__name__)
        else:
            bridges[name] = bridge
    rounds = await probe_upstreams(bridges)
    for name, results in rounds.items():
        for result in results:
            _LOGGER.info(
                "probe upstream=%s endpoint=%s ok=%s latency_ms=%.1f error=%s",
                name,
                result.url,
                result.ok,
                result.latency_ms,
                result.error,
            )


async def _health(req: func.HttpRequest) -> func.HttpResponse:
    from ..failover.all_upstreams import read_all
    from ..idempotency.shared import describe as describe_idempotency
    from ..runtime import all_bridges, ensure_settings

    bridges = await all_bridges()
    default = next(iter(bridges.values()))
    if isinstance(default, Exception):
        raise default  # as before there were several: the default's outage is a problem answer
    view = await read_all(bridges)
    view["idempotency"] = describe_idempotency(await ensure_settings())
    return func.HttpResponse(
        body=json.dumps(view),
        status_code=503 if view["status"] == "unavailable" else 200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


@bp.function_name("health")
@bp.route(route="health", methods=[func.HttpMethod.GET], auth_level=health_auth_level())
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return await respond(req, _health)
