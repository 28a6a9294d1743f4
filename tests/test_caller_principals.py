"""The caller's principal: trusted only when App Service Authentication is on, read defensively.

A spoofed `X-MS-CLIENT-PRINCIPAL` is ignored while authentication is off (the request is a key
caller, and one warning per instance says so). While it is on, a principal that cannot be read is
a 401 `invalid-principal`, never a 500 and never a key caller, and the Scheduler is not called.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.easyauth import ROLE_CLAIM_TYPE, principal_headers
from mcp_bridge.callers import principal as principals
from mcp_bridge.callers.access import caller_of
from mcp_bridge.callers.principal import MAX_PRINCIPAL_CHARS, read_caller
from mcp_bridge.config.loader import parse_settings
from mcp_bridge.problems import InvalidPrincipal

from .conftest import schedule_arguments, tool_calls
from .test_caller_roles import ROLES, WRITER

NO_ROLES = frozenset()


def encoded(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def scheduler_calls(stack) -> int:
    return sum(tool_calls(s, t) for s in (stack.east, stack.west) for t in ("listConversations",))


async def test_a_spoofed_principal_is_ignored_while_authentication_is_off(
    configure, functions, stack, caplog
):
    await configure(scheduler_tool_roles=ROLES)  # WEBSITE_AUTH_ENABLED unset: nothing vouches
    principals.reset_warnings()
    caplog.set_level(logging.INFO)
    first = await functions.call_tool("listConversations", {}, headers=WRITER)
    second = await functions.call_tool("listConversations", {}, headers=WRITER)

    assert (first.status, second.status) == (403, 403), "a key caller, and key callers hold no role"
    assert "key caller" in first.json["detail"]
    warnings = [r for r in caplog.records if r.name == "mcp_bridge.callers.principal"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, "once per instance"
    assert "WEBSITE_AUTH_ENABLED" in warnings[0].getMessage()
    assert scheduler_calls(stack) == 0


@pytest.mark.parametrize(
    ("value", "trusted"),
    [
        ("True", True),
        ("true", True),
        (" TRUE ", True),
        ("1", False),
        ("yes", False),
        ("", False),
        (None, False),
    ],
)
def test_only_website_auth_enabled_true_makes_the_headers_count(value, trusted):
    environ = {"SCHEDULER_ENDPOINTS": "https://scheduler.example.com/mcp", "SCHEDULER_AUTH": "none"}
    settings = parse_settings(environ if value is None else {**environ, "WEBSITE_AUTH_ENABLED": value})
    caller = caller_of(WRITER, settings)

    assert settings.website_auth_enabled is trusted
    assert caller.kind == ("principal" if trusted else "key")


BAD_PRINCIPALS = {
    "not-base64": {"X-MS-CLIENT-PRINCIPAL": "%%% not base64 %%%", "X-MS-CLIENT-PRINCIPAL-ID": "x"},
    "not-json": {"X-MS-CLIENT-PRINCIPAL": encoded(b"\x00\xffnot json"), "X-MS-CLIENT-PRINCIPAL-ID": "x"},
    "json-array": {"X-MS-CLIENT-PRINCIPAL": encoded([1, 2]), "X-MS-CLIENT-PRINCIPAL-ID": "x"},
    "claims-not-a-list": {
        "X-MS-CLIENT-PRINCIPAL": encoded({"claims": "roles"}),
        "X-MS-CLIENT-PRINCIPAL-ID": "x",
    },
    "claim-typ-not-a-string": {
        "X-MS-CLIENT-PRINCIPAL": encoded({"claims": [{"typ": 7, "val": "x"}]}),
        "X-MS-CLIENT-PRINCIPAL-ID": "x",
    },
    "claim-val-an-object": {
        "X-MS-CLIENT-PRINCIPAL": encoded({"claims": [{"typ": "roles", "val": {"x": 1}}]}),
        "X-MS-CLIENT-PRINCIPAL-ID": "x",
    },
    "too-many-claims": {
        "X-MS-CLIENT-PRINCIPAL": encoded({"claims": [{"typ": "roles", "val": "r"}] * 1001}),
        "X-MS-CLIENT-PRINCIPAL-ID": "x",
    },
    "huge": {"X-MS-CLIENT-PRINCIPAL": "A" * (MAX_PRINCIPAL_CHARS + 4), "X-MS-CLIENT-PRINCIPAL-ID": "x"},
    "deeply-nested": {"X-MS-CLIENT-PRINCIPAL": encoded(b'{"claims":' + b"[" * 5000 + b"]" * 5000 + b"}")},
    "id-without-principal": {"X-MS-CLIENT-PRINCIPAL-ID": "x", "X-MS-CLIENT-PRINCIPAL-NAME": "n"},
    "principal-without-any-id": {"X-MS-CLIENT-PRINCIPAL": encoded({"auth_typ": "aad", "claims": []})},
    "empty-principal": {"X-MS-CLIENT-PRINCIPAL": ""},
}


@pytest.mark.parametrize("roles", [ROLES, None], ids=["roles", "no-roles"])
async def test_an_unreadable_principal_is_401_never_500_and_never_reaches_the_scheduler(
    configure, functions, stack, roles
):
    await configure(website_auth_enabled="True", **({"scheduler_tool_roles": roles} if roles else {}))
    answers = {}
    for case, headers in BAD_PRINCIPALS.items():
        reply = await functions.call_tool("listConversations", {}, headers=headers)
        echoed = [v for v in headers.values() if len(v) >= 4 and v[:40] in reply.body.decode()]
        answers[case] = (
            reply.status,
            reply.json["type"].rsplit(":", 1)[-1],
            reply.headers.get("WWW-Authenticate"),
            echoed,
        )

    assert answers == {case: (401, "invalid-principal", "Bearer", []) for case in BAD_PRINCIPALS}
    assert scheduler_calls(stack) == 0


@pytest.mark.parametrize("name", ["list_tools", "openapi"])
async def test_every_route_that_reads_the_caller_refuses_an_unreadable_principal(configure, functions, name):
    await configure(website_auth_enabled="True", scheduler_tool_roles=ROLES)
    reply = await functions(name, headers=BAD_PRINCIPALS["not-json"])

    assert reply.status == 401


def test_roles_come_from_role_typ_claims_and_from_roles_claims():
    claims = [
        {"typ": ROLE_CLAIM_TYPE, "val": "FromRoleTyp"},
        {"typ": "roles", "val": "FromRoles"},
        {"typ": "groups", "val": "NotARole"},
        {"typ": "roles", "val": 42},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "oid-1"},
        {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": "From Claims"},
    ]
    headers = {
        "x-ms-client-principal": encoded(
            {
                "auth_typ": "aad",
                "claims": claims,
                "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "role_typ": ROLE_CLAIM_TYPE,
                "unknown_member": True,
            }
        )
    }
    caller = read_caller(headers, trusted=True, key_roles=NO_ROLES)

    assert caller.kind == "principal"
    assert caller.roles == {"FromRoleTyp", "FromRoles"}
    assert (caller.id, caller.name, caller.identity_provider) == ("oid-1", "From Claims", "aad")


def test_the_platforms_id_name_and_idp_headers_win_over_claims():
    headers = {
        **principal_headers({"oid": "oid-1", "name": "from-claim", "roles": []}),
        "x-ms-client-principal-id": "header-id",
        "x-ms-client-principal-name": "header-name",
        "x-ms-client-principal-idp": "aad",
    }
    caller = read_caller(headers, trusted=True, key_roles=NO_ROLES)

    assert (caller.id, caller.name, caller.identity_provider, caller.roles) == (
        "header-id", "header-name", "aad", frozenset()
    )  # fmt: skip


def test_no_principal_headers_make_a_key_caller_with_the_key_roles():
    caller = read_caller({}, trusted=True, key_roles=frozenset({"Scheduler.Read"}))

    assert (caller.kind, caller.roles, caller.id) == ("key", {"Scheduler.Read"}, None)


_HEADER_NAMES = st.sampled_from(
    [
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-client-principal-idp",
    ]
)
_PRINCIPAL_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["auth_typ", "claims", "typ", "val", "name_typ", "role_typ", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_HEADER_VALUES = st.one_of(
    st.text(max_size=200),
    _PRINCIPAL_JSON.map(encoded),
    st.binary(max_size=200).map(encoded),
)


@settings(max_examples=200, deadline=None)
@given(headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=4), trusted=st.booleans())
def test_any_principal_headers_give_a_caller_or_invalid_principal_and_nothing_else(headers, trusted):
    try:
        caller = read_caller(headers, trusted=trusted, key_roles=NO_ROLES)
    except InvalidPrincipal as problem:
        assert trusted and problem.status == 401
        return
    assert caller.kind in ("principal", "key")
    assert caller.kind == "key" or trusted
    assert all(isinstance(role, str) and role for role in caller.roles)


async def test_a_reader_principal_cannot_become_a_writer_with_a_second_header(configure, functions, stack):
    """Headers arrive joined (`a, b`) when sent twice; the join is not a principal."""
    await configure(website_auth_enabled="True", scheduler_tool_roles=ROLES)
    reader = principal_headers({"oid": "oid-r", "roles": ["Scheduler.Read"]})["x-ms-client-principal"]
    writer = WRITER["x-ms-client-principal"]
    reply = await functions.call_tool(
        "scheduleConversation", schedule_arguments(),
        headers={"X-MS-CLIENT-PRINCIPAL": f"{reader}, {writer}", "X-MS-CLIENT-PRINCIPAL-ID": "oid-r"},
    )  # fmt: skip

    assert reply.status == 401
