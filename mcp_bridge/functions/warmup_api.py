"""The warm-up trigger: the host runs it on a new instance before sending it traffic.

Without it the first request on an instance pays about a second for the deferred imports, the
token, the MCP sessions and the tool listings (docs/performance.md). Indexing stays as lean as
before: everything heavy is imported inside the function.
"""

from __future__ import annotations

import logging
import time

import azure.functions as func
from azure.functions.warmup import WarmUpContext

_LOGGER = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("warmup")
@bp.warm_up_trigger(arg_name="warmup")
async def warmup(warmup: WarmUpContext) -> None:
    from ..config.loader import SettingsError
    from ..runtime import warm_up
    from .tools_api import handlers

    started = time.perf_counter()
    try:
        handlers()  # the request handlers' imports, which the first request would otherwise pay
        endpoints = await warm_up()
    except SettingsError as exc:  # the requests will answer 500 misconfigured; nothing to warm
        _LOGGER.error("Warm-up skipped: invalid settings: %s", exc)
        return
    except Exception as exc:  # Key Vault or the identity endpoint down: the first request retries
        _LOGGER.warning("Warm-up incomplete: %s", type(exc).__name__)
        return
    _LOGGER.info(
        "Warm-up done in %.0f ms: %s",
        (time.perf_counter() - started) * 1000,
        ", ".join(f"{url} {state}" for url, state in endpoints.items()),
    )
