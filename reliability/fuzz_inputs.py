"""Bad requests, generated from a seed: every one must be refused, and each is checked to be bad by
an oracle that is not the bridge's own code (Python's strict JSON reader, jsonschema against the
tool's published schema, the documented id and key alphabets).

Kinds (each request a `fuzz_requests.BadRequest`, so it can be kept in the replay corpus):

- body: bytes no JSON-object reader may accept (not UTF-8, not JSON, not an object, NaN, too deep,
  over the size cap, trailing garbage, truncated);
- arguments: JSON objects that break the tool's input schema or name an undeclared argument;
- id: conversation ids outside 1-128 of `[A-Za-z0-9._:-]`, in the path and on the query string;
- idempotency-key: keys outside the documented syntax;
- principal: `X-MS-CLIENT-PRINCIPAL*` headers App Service could not have written;
- role: a well-formed principal without the role the tool asks for;
- tool: names of tools the Scheduler does not have;
- operation: operation ids no operation of the caller's has (well formed but unknown, malformed);
- server: `/api/servers/{server}/...` naming no configured upstream;
- function-key: no key, or a wrong one (the host refuses: 401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from .fuzz_requests import MAX_DEPTH, BadRequest, Context, body_refused

ID_ALPHABET = string.ascii_letters + string.digits + "._:-"
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))


def _tool_post(kind: str, tool: str, body: bytes, headers: tuple[tuple[str, str], ...]) -> BadRequest:
    """A tool call; one in four through the default upstream's named route (`/api/servers/scheduler`)."""
    prefix = "/api/servers/scheduler" if int(hashlib.sha256(body).hexdigest(), 16) % 4 == 0 else "/api"
    return BadRequest(
        kind, "POST", f"{prefix}/tools/{tool}", (("content-type", "application/json"), *headers), body
    )


def _text(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def bodies(rng: random.Random, ctx: Context) -> BadRequest | None:
    tool = rng.choice(list(ctx.tools))
    valid = json.dumps(ctx.valid[tool])
    variant = rng.randrange(9)
    if variant == 0:
        body = rng.randbytes(rng.randint(1, 300))
    elif variant == 1:
        body = valid[: rng.randint(1, max(1, len(valid) - 1))].encode()
    elif variant == 2:
        value = rng.choice([rng.randint(-(10**6), 10**6), _text(rng, VISIBLE, 0, 30), None, True, []])
        body = json.dumps([value] * rng.randint(0, 3) if rng.random() < 0.5 else value).encode()
    elif variant == 3:
        name = _text(rng, string.ascii_lowercase, 1, 10)
        body = f'{{"{name}": {rng.choice(["NaN", "Infinity", "-Infinity"])}}}'.encode()
    elif variant == 4:
        depth = rng.randint(MAX_DEPTH + 1, 400)
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        body = ('{"x":' + opener * depth + "1" + closer * depth + "}").encode()
    elif variant == 5:
        body = json.dumps({**ctx.valid[tool], "pad": "x" * (ctx.max_bytes + rng.randint(1, 4000))}).encode()
    elif variant == 6:
        bad = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 8)))
        body = b'{"topic": "' + bad + b'"}'
    elif variant == 7:
        body = (valid + _text(rng, "}]x,:;'\"@ \n", 1, 12)).encode()
    else:
        body = _text(rng, string.printable, 1, 120).encode()
    if not body_refused(body, tool, ctx):
        return None
    return _tool_post("body", tool, body, (ctx.key_header,))


_WRONG_VALUES: list[Callable[[random.Random], Any]] = [
    lambda rng: rng.randint(-(10**9), 10**9),
    lambda rng: rng.random() * 1000 - 500,
    lambda rng: None,
    lambda rng: rng.choice([True, False]),
    lambda rng: _text(rng, VISIBLE + " é€", 0, 40),
    lambda rng: [rng.randint(0, 9) for _ in range(rng.randint(0, 4))],
    lambda rng: {"nested": rng.randint(0, 9)},
    lambda rng: "x" * rng.randint(129, 700),
    lambda rng: "",
]


def arguments(rng: random.Random, ctx: Context) -> BadRequest | None:
    tool = rng.choice(list(ctx.tools))
    args = dict(ctx.valid[tool])
    properties = list(ctx.tools[tool].get("properties", {}))
    for _ in range(rng.randint(1, 3)):
        move = rng.randrange(4)
        if move == 0 and properties:
            args[rng.choice(properties)] = rng.choice(_WRONG_VALUES)(rng)
        elif move == 1 and args:
            del args[rng.choice(list(args))]
        elif move == 2:
            args[_text(rng, string.ascii_letters + "_", 1, 20)] = rng.choice(_WRONG_VALUES)(rng)
        elif properties:
            name = rng.choice(properties)
            args[name] = [rng.choice(_WRONG_VALUES)(rng) for _ in range(rng.randint(0, 60))]
    if not ctx.schema_refuses(tool, args):
        return None
    return _tool_post("arguments", tool, json.dumps(args).encode(), (ctx.key_header,))


def _bad_id(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _text(rng, ID_ALPHABET, 129, 400)
    outside = " !\"#$%&'()*+,;<=>@[\\]^`{|}~é€\u200b\t" + "\x7f"
    chars = [rng.choice(ID_ALPHABET) for _ in range(rng.randint(0, 40))]
    for _ in range(rng.randint(1, 3)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(outside))
    return "".join(chars)


def ids(rng: random.Random, ctx: Context) -> BadRequest | None:
    conversation_id = _bad_id(rng)
    if rng.random() < 0.5:
        path = f"/api/conversations/{quote(conversation_id, safe='')}/status"
    else:
        path = "/api/conversation-status"
        if rng.random() < 0.1:
            conversation_id = ""
        param = "conversation_id" if rng.random() < 0.9 else rng.choice(["conversationId", "id", "cid"])
        path += f"?{param}={quote(conversation_id, safe='')}"
        if param != "conversation_id":
            conversation_id = ""
    if conversation_id and len(conversation_id) <= 128 and all(c in ID_ALPHABET for c in conversation_id):
        return None
    return BadRequest("id", "GET", path, (ctx.key_header,))


def idempotency_keys(rng: random.Random, ctx: Context) -> BadRequest | None:
    variant = rng.randrange(5)
    if variant == 0:
        key = _text(rng, VISIBLE, 256, 600)
    elif variant == 1:
        key = (
            _text(rng, VISIBLE, 1, 20)
            + rng.choice([" ", "\t", "\x7f", "é", "\x80", "ÿ"])
            + _text(rng, VISIBLE, 1, 20)
        )
    elif variant == 2:
        key = '"' + _text(rng, VISIBLE.replace('"', "").replace("\\", ""), 0, 20)  # an unclosed quoted string
    elif variant == 3:
        key = rng.choice(["", " ", "\t", '""', '" "'])
    else:
        key = _text(rng, VISIBLE, 1, 10) + "\x7f" * rng.randint(1, 3)
    tool = rng.choice(list(ctx.tools))
    return _tool_post(
        "idempotency-key",
        tool,
        json.dumps(ctx.valid[tool]).encode(),
        (ctx.key_header, ("idempotency-key", key)),
    )


def _principal(claims: list[dict[str, Any]], **extra: Any) -> str:
    body = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles", **extra}
    return base64.b64encode(json.dumps(body).encode()).decode("ascii")


def principals(rng: random.Random, ctx: Context) -> BadRequest | None:
    variant = rng.randrange(6)
    headers: list[tuple[str, str]] = []
    if variant == 0:
        headers.append(
            ("x-ms-client-principal", _text(rng, "!*@#$%^&()[]{} " + string.ascii_letters, 1, 200))
        )
    elif variant == 1:
        headers.append(
            ("x-ms-client-principal", base64.b64encode(rng.randbytes(rng.randint(1, 200))).decode())
        )
    elif variant == 2:
        shape = rng.choice(
            [[], "claims", 42, {"claims": "x"}, {"claims": [{"val": "no typ"}]}, {"claims": [1, 2]}]
        )
        headers.append(("x-ms-client-principal", base64.b64encode(json.dumps(shape).encode()).decode()))
    elif variant == 3:  # well formed, but no id anywhere
        claims = [{"typ": "roles", "val": ctx.write_role}, {"typ": "name", "val": _text(rng, VISIBLE, 1, 30)}]
        headers.append(("x-ms-client-principal", _principal(claims)))
    elif variant == 4:  # an id over 256 characters
        claims = [{"typ": "roles", "val": ctx.write_role}]
        headers += [("x-ms-client-principal", _principal(claims)),
                    ("x-ms-client-principal-id", _text(rng, string.hexdigits, 257, 600))]  # fmt: skip
    else:  # the side headers without the principal itself
        headers += [("x-ms-client-principal-id", _text(rng, string.hexdigits, 8, 36)),
                    ("x-ms-client-principal-name", _text(rng, string.ascii_letters, 1, 20))]  # fmt: skip
    tool = rng.choice(list(ctx.tools))
    return _tool_post("principal", tool, json.dumps(ctx.valid[tool]).encode(), (ctx.key_header, *headers))


def roles(rng: random.Random, ctx: Context) -> BadRequest | None:
    tool = rng.choice(["scheduleConversation", "cancelConversation"])
    held = [_text(rng, string.ascii_letters + ".", 3, 20) for _ in range(rng.randint(0, 3))]
    held = [role for role in held if role != ctx.write_role]
    claims = [{"typ": "roles", "val": role} for role in held]
    claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
                   "val": _text(rng, string.hexdigits, 32, 32)})  # fmt: skip
    return _tool_post(
        "role",
        tool,
        json.dumps(ctx.valid[tool]).encode(),
        (ctx.key_header, ("x-ms-client-principal", _principal(claims))),
    )


def tools(rng: random.Random, ctx: Context) -> BadRequest | None:
    name = _text(rng, string.ascii_letters + string.digits + "_-.", 1, 64)
    if name in ctx.tools:
        return None
    return _tool_post("tool", quote(name, safe=""), b"{}", (ctx.key_header,))


URL_SAFE = string.ascii_letters + string.digits + "_-"


def servers(rng: random.Random, ctx: Context) -> BadRequest | None:
    """`/api/servers/{server}/...` naming no configured upstream."""
    server = _text(rng, string.ascii_letters + string.digits, 1, 40)
    if server.lower() == "scheduler":
        return None
    tool = rng.choice(list(ctx.tools))
    route = rng.choice([f"tools/{tool}", "tools", "operations/op_" + _text(rng, URL_SAFE, 32, 32)])
    method = "POST" if route.startswith("tools/") else "GET"
    body = json.dumps(ctx.valid[tool]).encode() if method == "POST" else b""
    return BadRequest(
        "server", method, f"/api/servers/{quote(server, safe='')}/{route}", (ctx.key_header,), body
    )


def operations(rng: random.Random, ctx: Context) -> BadRequest | None:
    """Operation ids that name no operation of this caller: well formed but unknown, or malformed."""
    variant = rng.randrange(4)
    if variant == 0:
        operation_id = "op_" + _text(rng, URL_SAFE, 32, 32)  # the right shape, issued to nobody
    elif variant == 1:
        operation_id = "op_" + _text(rng, URL_SAFE, 0, 60)
        if len(operation_id) == 35:
            return None
    elif variant == 2:
        operation_id = _text(rng, string.ascii_lowercase, 1, 4) + "_" + _text(rng, URL_SAFE, 32, 32)
    else:
        chars = list("op_" + _text(rng, URL_SAFE, 32, 32))
        chars[rng.randrange(3, len(chars))] = rng.choice(" !$%&'()*+,;=@~.é")
        operation_id = "".join(chars)
    path = f"/api/operations/{quote(operation_id, safe='')}"
    if rng.random() < 0.5:
        return BadRequest("operation", "GET", path, (ctx.key_header,))
    return BadRequest("operation", "POST", path + "/cancel", (ctx.key_header,))


def function_keys(rng: random.Random, ctx: Context) -> BadRequest | None:
    route = rng.choice(["/api/tools", "/api/tools/listConversations", "/api/openapi.json",
                        "/api/conversation-status?conversation_id=abc"])  # fmt: skip
    method = "POST" if route == "/api/tools/listConversations" else "GET"
    variant = rng.randrange(3)
    if variant == 0:
        headers: tuple[tuple[str, str], ...] = ()
    elif variant == 1:
        headers = (("x-functions-key", _text(rng, string.ascii_letters + string.digits + "-_", 1, 60)),)
    else:
        separator = "&" if "?" in route else "?"
        route += f"{separator}code={quote(_text(rng, VISIBLE, 1, 60), safe='')}"
        headers = ()
    if any(value == ctx.key_header[1] for _, value in headers) or ctx.key_header[1] in route:
        return None
    return BadRequest("function-key", method, route, headers, b"{}" if method == "POST" else b"")


GENERATORS: dict[str, tuple[Callable[[random.Random, Context], BadRequest | None], float]] = {
    "body": (bodies, 0.22),
    "arguments": (arguments, 0.22),
    "id": (ids, 0.13),
    "idempotency-key": (idempotency_keys, 0.10),
    "principal": (principals, 0.09),
    "role": (roles, 0.04),
    "tool": (tools, 0.04),
    "function-key": (function_keys, 0.06),
    "operation": (operations, 0.06),
    "server": (servers, 0.04),
}


def generate(seed: int, count: int, ctx: Context, seen: set[str] | None = None) -> Iterator[BadRequest]:
    """`count` distinct bad requests, each kind its share, the same ones for the same seed."""
    rng = random.Random(seed)
    seen = set() if seen is None else seen
    for make, share in GENERATORS.values():
        wanted, made, tries = max(1, round(count * share)), 0, 0
        while made < wanted and tries < wanted * 50:
            tries += 1
            request = make(rng, ctx)
            if request is None or (digest := request.digest()) in seen:
                continue
            seen.add(digest)
            made += 1
            yield request
