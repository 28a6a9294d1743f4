"""Route templates as the Functions host matches them."""

from __future__ import annotations

import pytest

from devstack.host_routes import RouteTemplateError, compile_route


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/tools/{tool_name}", "api/tools/scheduleConversation", {"tool_name": "scheduleConversation"}),
        ("api/tools/{tool_name}", "/API/Tools/x/", {"tool_name": "x"}),
        ("api/tools/{tool_name}", "api/tools", None),
        ("api/tools/{tool_name}", "api/tools/a/b", None),
        ("api/c/{id}/status", "api/c/conv-1/status", {"id": "conv-1"}),
        ("api/n/{name:alpha}", "api/n/abc", {"name": "abc"}),
        ("api/n/{name:alpha}", "api/n/ab1", None),
        ("api/i/{id:int}", "api/i/-12", {"id": "-12"}),
        ("api/i/{id:int}", "api/i/99999999999", None),
        ("api/i/{id:long}", "api/i/99999999999", {"id": "99999999999"}),
        (
            "api/g/{id:guid}",
            "api/g/0b1ec7d0-0000-4000-8000-000000000002",
            {"id": "0b1ec7d0-0000-4000-8000-000000000002"},
        ),
        ("api/l/{code:length(2,3):alpha}", "api/l/abc", {"code": "abc"}),
        ("api/l/{code:length(2,3):alpha}", "api/l/abcd", None),
        ("api/r/{n:range(1,5)}", "api/r/6", None),
        ("api/x/{code:regex(^[a-z]+-[0-9]+$)}", "api/x/ab-12", {"code": "ab-12"}),
        ("api/o/{name?}", "api/o", {}),
        ("api/o/{name?}", "api/o/x", {"name": "x"}),
        ("api/d/{name=bob}", "api/d", {"name": "bob"}),
        ("api/f/{*rest}", "api/f/a/b/c", {"rest": "a/b/c"}),
        ("api/f/{name}.{ext}", "api/f/a.b.txt", {"name": "a.b", "ext": "txt"}),
        ("api", "api", {}),
    ],
)
def test_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected


def test_precedence_orders_literal_before_constrained_before_plain_before_catch_all() -> None:
    templates = ["api/items/{*rest}", "api/items/{id}", "api/items/{id:int}", "api/items/latest"]
    ordered = sorted((compile_route(t) for t in templates), key=lambda r: r.precedence)

    assert [r.template for r in ordered] == [
        "api/items/latest",
        "api/items/{id:int}",
        "api/items/{id}",
        "api/items/{*rest}",
    ]


@pytest.mark.parametrize("template", ["api/{id:nonsense}", "api/{}", "api/a{*rest}"])
def test_unsupported_templates_fail_loudly(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        compile_route(template)
