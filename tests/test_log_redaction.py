"""Log hygiene: every record redacted once the bridge is in use, and outside values kept on one line."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_bridge import redaction
from mcp_bridge.runtime import get_bridge

from .conftest import API_KEY, IDENTITY_HEADER

ROOT = Path(__file__).resolve().parent.parent
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJicmlkZ2UiLCJhdWQiOiJhcGk6Ly9zY2hlZHVsZXIifQ.c2lnbmF0dXJlLWJ5dGVz"
FUNCTION_KEY = "fn-key-0123456789abcdef"
SAS_SIG = "sv2Bq%2FAbCdEf0123456789%3D"

# Each line as some library might log it, and the secret in it that must not survive.
LEAKS = [
    ("Authorization: Bearer opaque-token-value-123", "opaque-token-value-123"),
    (f"headers={{'authorization': 'Bearer {JWT}', 'accept': 'application/json'}}", JWT),
    (f"raw headers [(b'x-api-key', b'{API_KEY}'), (b'host', b'east')]", API_KEY),
    (f"X-API-Key: {API_KEY}", API_KEY),
    (f"x-functions-key={FUNCTION_KEY}", FUNCTION_KEY),
    (f"GET /api/tools?code={FUNCTION_KEY}&x=1", FUNCTION_KEY),
    (f"PUT https://acct.blob.core.windows.net/c/health.json?sv=2024&sig={SAS_SIG}&se=2030", SAS_SIG),
    (
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=QUJDREVGR0hJSktMTU5PUA==;",
        "QUJDREVGR0hJSktMTU5PUA==",
    ),
    (f"token issued: {JWT}", JWT),
    (f"x-identity-header: {IDENTITY_HEADER}", IDENTITY_HEADER),
    ("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
]


@pytest.fixture
def installed():
    redaction.install()
    assert redaction.is_installed()


@pytest.mark.parametrize(("line", "secret"), LEAKS)
def test_any_record_is_redacted(installed, caplog, line, secret):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library.deep.down").debug("%s", line)
    logging.getLogger("another").warning(line)
    assert "[REDACTED]" in caplog.text
    assert secret not in caplog.text
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_ordinary_lines_are_left_alone(installed, caplog):
    caplog.set_level(logging.INFO)
    lines = [
        "tool=listConversations outcome=ok attempts=1 duration_ms=3.2",
        "the Scheduler answered with a JSON-RPC error: bad (jsonrpc_code=-32602, status_code=400)",
        "Authorization header missing",
    ]
    for line in lines:
        logging.getLogger("mcp_bridge.calls.bridge").info(line)
    assert [record.getMessage() for record in caplog.records] == lines


def test_exception_text_and_stack_are_redacted(installed, caplog):
    try:
        raise ValueError(f"upstream said: Bearer {JWT}")
    except ValueError:
        logging.getLogger("mcp_bridge.anything").exception("call failed", stack_info=True)
    assert "call failed" in caplog.text and "ValueError" in caplog.text
    assert JWT not in caplog.text


async def test_configured_header_names_and_secret_values_are_redacted(configure, caplog):
    caplog.set_level(logging.DEBUG)
    await configure(auth="api_key", scheduler_api_key_header="X-Custom-Scheduler-Key")
    await get_bridge()  # building the bridge registers its header name and key
    logging.getLogger("elsewhere").info("sent X-Custom-Scheduler-Key: %s", "value-under-a-custom-header")
    logging.getLogger("elsewhere").info("the key is %s, in any format", API_KEY)
    assert "value-under-a-custom-header" not in caplog.text
    assert API_KEY not in caplog.text
    assert caplog.text.count("[REDACTED]") >= 2


async def test_input_values_cannot_forge_log_lines(configure, functions, caplog):
    caplog.set_level(logging.INFO)
    await configure()
    forged = "noSuchTool\r\nINFO mcp_bridge.calls.bridge tool=scheduleConversation outcome=ok"
    reply = await functions.call_tool(forged, {})
    assert reply.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "mcp_bridge.calls.bridge"]
    assert any(line.startswith("tool=noSuchTool\\x0d\\x0aINFO") for line in lines), lines
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert "outcome=tool-not-found" in lines[-1]


def test_printable_caps_length_and_escapes_controls():
    assert redaction.printable("a\nb\tc\x1b[31m") == "a\\x0ab\\x09c\\x1b[31m"
    assert len(redaction.printable("x" * 1000)) == 201


def test_redaction_is_installed_at_first_use_not_at_import():
    script = (
        "import logging, function_app, mcp_bridge.functions.tools_api, mcp_bridge.runtime\n"
        "print(logging.getLogRecordFactory() is logging.LogRecord)\n"
        "from mcp_bridge import redaction\n"
        "redaction.install()\n"
        "print(logging.getLogRecordFactory() is logging.LogRecord)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["True", "False"]


_WORDS = st.sampled_from(
    ["Authorization", "AUTHORIZATION", "authorıZation", "x-api-key", "X-Functionſ-Key", "x-identity-header",
     "Bearer", "BEARER", "code", "sig", "AccountKey", "eyJ", JWT, "token", "ķ", "İ"]
)  # fmt: skip
_GLUE = st.sampled_from([": ", "=", " ", "'", '"', ",", "-", "abc.def", "s3cr3t-value", ""])
_TEXT = st.lists(st.tuples(_WORDS, _GLUE, _GLUE | st.text(max_size=6)), max_size=5).map(
    lambda parts: "".join(word + glue + tail for word, glue, tail in parts)
)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_skipping_a_pattern_whose_word_is_absent_never_changes_what_is_redacted(text):
    """The fast path (no header name, "bearer", "=" or "eyJ": no regex scan) equals every pattern run."""
    every_pattern = redaction.FILTER._headers.sub(lambda m: m.group(1) + redaction.REDACTED, text)
    every_pattern = redaction._BEARER.sub(lambda m: m.group(1) + " " + redaction.REDACTED, every_pattern)
    every_pattern = redaction._PARAMETER.sub(lambda m: m.group(1) + redaction.REDACTED, every_pattern)
    every_pattern = redaction._JWT.sub(redaction.REDACTED, every_pattern)

    assert redaction.FILTER.redact(text) == every_pattern
