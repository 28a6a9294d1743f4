"""What an operation's life leaves behind: an audit record, a span and a count per event.

Events: `started`, `polled` (a status read that asked the server), `finished` (Succeeded, Failed
or Canceled, with the outcome), `canceled` (the caller asked). The audit line is
`operation {json}` on the `mcp_bridge.audit` logger, stored by Azure Monitor as the custom event
`SchedulerBridgeOperation`; the operation is named by a digest of its id, never the id itself (the
id is the caller's bearer of access to its result).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .. import telemetry
from ..callers.audit import AUDIT_LOGGER, CUSTOM_EVENT_ATTRIBUTE, ENDUSER_ID
from ..callers.principal import Caller
from . import ids

EVENT_NAME = "SchedulerBridgeOperation"
_LOGGER = logging.getLogger(__name__)


def record(
    event: str,
    *,
    operation_id: str,
    tool: str,
    caller: Caller | None,
    outcome: str,
    status: int | None = None,
) -> None:
    operation = ids.short(operation_id)
    caller_id = caller.id if caller is not None and caller.is_principal else None
    telemetry.record_operation(
        event=event, operation=operation, tool=tool, outcome=outcome, caller_id=caller_id
    )
    fields: dict[str, Any] = {
        "event": event,
        "operation": operation,
        "tool": tool[:128],
        "outcome": outcome,
        "status": status,
        "caller.kind": "unknown" if caller is None else caller.kind,
        "caller.id": caller_id,
    }
    fields = {key: value for key, value in fields.items() if value is not None}
    if AUDIT_LOGGER.level == logging.NOTSET:
        AUDIT_LOGGER.setLevel(logging.INFO)
    if not AUDIT_LOGGER.isEnabledFor(logging.INFO):
        return
    attributes = {**fields, CUSTOM_EVENT_ATTRIBUTE: EVENT_NAME}
    if caller_id:
        attributes[ENDUSER_ID] = caller_id
    try:
        AUDIT_LOGGER.info("operation %s", json.dumps(fields, separators=(",", ":")), extra=attributes)
    except Exception:  # pragma: no cover - a handler's failure must not fail the request
        _LOGGER.debug("Writing an operation audit record failed", exc_info=True)
