"""What may reach a log line: secrets redacted in every record, input values on one line.

The bridge holds a bearer token, maybe an API key, and receives requests whose URL carries a
function key; the libraries under it (the MCP SDK, httpcore, azure-core) log requests, headers and
messages at DEBUG. One `RedactingFilter` rewrites any record that contains

- an `Authorization` (or `Proxy-Authorization`) value, any `Bearer …` credential;
- the values of key headers: `x-functions-key`, the API key header (`X-API-Key` by default, or
  whatever `SCHEDULER_API_KEY_HEADER` names), `x-identity-header`, `ocp-apim-subscription-key`;
- `code=` (function keys), `sig=` (SAS signatures) and other credential query or connection-string
  values (`AccountKey=`, `SharedAccessKey=`, `client_secret=`, `access_token=`, …);
- anything that looks like a JWT (`eyJ….….…`);
- the literal secret values the bridge was configured with.

It is installed as a log record factory, not on a logger or a handler: a logger's filter misses
records its children propagate, and a handler's misses handlers added later (the Functions worker's,
pytest's). A factory sees every record when it is made, before any handler formats it. `install()`
runs on first use (the first request or timer), never at import; it also applies host.json's levels
for Python loggers (`host_logging`), which the Functions host does not.

Values that come from outside (tool names, paths, anything a Scheduler sends) go through
`printable()` where they are logged, so a CR/LF in them cannot forge a log line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .host_logging import apply_host_json_levels

_LOGGER = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-functions-key",
    "x-api-key",
    "x-identity-header",
    "ocp-apim-subscription-key",
)
_SECRET_PARAMETERS = (
    "code",
    "sig",
    "accountkey",
    "sharedaccesskey",
    "sharedaccesssignature",
    "client_secret",
    "access_token",
    "refresh_token",
    "password",
    "api_key",
    "apikey",
)
_MIN_LITERAL_SECRET = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_PARAMETER = re.compile(r"(?i)((?<![\w-])(?:" + "|".join(_SECRET_PARAMETERS) + r")=)[^&;\s\"'#,)}\]]+")


def _header_pattern(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted({re.escape(name.lower()) for name in names}, key=len, reverse=True))
    # name, then ": " or "=" or the "', '" / "', b'" between a header tuple's parts, then the value
    # (with its scheme word, for Authorization). Covers "Name: v", "'name': 'v'", (b'name', b'v').
    return re.compile(
        r"(?i)(?<![\w-])((?:" + alternatives + r")[\"']?\s*[:=,]\s*(?:(?-i:b)(?=[\"']))?[\"']?)"
        r"(?:(?:bearer|basic|pop|sharedaccesssignature)\s+)?[^\s\"',;&)}\]]+"
    )


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack text with secrets redacted."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._headers = _header_pattern(SECRET_HEADERS)
        self._header_names: tuple[str, ...] = SECRET_HEADERS
        self._literals: tuple[str, ...] = ()

    def add(self, *, header_names: Iterable[str] = (), secrets: Iterable[str | None] = ()) -> None:
        """Also redact the values of these headers and these literal secret values."""
        with self._lock:
            names = {*SECRET_HEADERS, *(name.lower() for name in header_names if name)}
            self._headers = _header_pattern(names)
            self._header_names = tuple(sorted(name.casefold() for name in names))
            known = {*self._literals, *(s for s in secrets if s and len(s) >= _MIN_LITERAL_SECRET)}
            self._literals = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for literal in self._literals:
            text = text.replace(literal, REDACTED)
        # Each pattern needs a word it can be told by; a regex scan costs ~10x a substring test, and
        # most lines (an audit record's JSON, say) hold none of them. casefold() matches what the
        # patterns' IGNORECASE matches ("ſ" is an "s" to both), but for the dotless "ı".
        folded = text.casefold().replace("ı", "i")
        if any(name in folded for name in self._header_names):
            text = self._headers.sub(lambda m: m.group(1) + REDACTED, text)
        if "bearer" in folded:
            text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
        if "=" in text:
            text = _PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)
        return _JWT.sub(REDACTED, text) if "eyJ" in text else text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error path
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


FILTER = RedactingFilter()
_installed = False
_install_lock = threading.Lock()


def install(*, header_names: Iterable[str] = (), secrets: Iterable[str | None] = ()) -> None:
    """Redact every log record made in this process from now on (idempotent; cheap to repeat)."""
    global _installed
    if header_names or secrets:
        FILTER.add(header_names=header_names, secrets=secrets)
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        apply_host_json_levels()  # before the first SDK request, so no header dump is ever formatted
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            FILTER.filter(record)
            return record

        logging.setLogRecordFactory(make_record)
        _installed = True
    _LOGGER.debug("Log redaction installed")


def is_installed() -> bool:
    return _installed


def redact(text: str) -> str:
    """`text` with every secret the filter knows redacted."""
    return FILTER.redact(text)


def printable(value: object, *, limit: int = 200) -> str:
    """An outside value made safe for one log line: control characters escaped, length capped."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
