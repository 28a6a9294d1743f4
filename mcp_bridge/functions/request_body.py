"""What a request carries, read and checked before anything is called: the body of tool
arguments, and a conversation id. Standard library and `azure.functions` only, as the functions
need it at indexing."""

from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func

from ..problems import BadRequest, PayloadTooLarge

CONVERSATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MISSING_ID_MESSAGE = "Please pass a conversation_id on the query string"
MAX_ARGUMENT_DEPTH = 32


def read_arguments(req: func.HttpRequest, max_bytes: int) -> dict[str, Any]:
    """The JSON object of tool arguments; an empty body means `{}`."""
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes", max_bytes=max_bytes)
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes", max_bytes=max_bytes)
    if not body.strip():
        return {}
    try:
        # RFC 8259: JSON between systems is UTF-8, and NaN/Infinity are not JSON.
        arguments = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except _NotJson as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body's JSON is nested too deeply") from None
    if not isinstance(arguments, dict):
        raise BadRequest(f"the body must be a JSON object of tool arguments, not {type(arguments).__name__}")
    if _nesting(arguments) > MAX_ARGUMENT_DEPTH:
        # Deeper than any tool's schema goes, and past what the MCP SDK can serialize.
        raise BadRequest(f"the body's JSON is nested deeper than {MAX_ARGUMENT_DEPTH} levels")
    return arguments


def _nesting(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


class _NotJson(ValueError):
    pass


def _not_json(constant: str) -> Any:
    raise _NotJson(f"{constant} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_not_json)
"""Built once: `json.loads` with any keyword builds a new decoder (and scanner) per call."""


def check_conversation_id(conversation_id: str) -> str:
    if not CONVERSATION_ID.fullmatch(conversation_id):
        raise BadRequest(
            "conversation_id must be 1 to 128 characters from A-Z, a-z, 0-9, '.', '_', ':' and '-'"
        )
    return conversation_id
