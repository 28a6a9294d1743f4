"""Architecture: `mcp_bridge` imports one way, room by room, and never the development tools.

Every import counts: module-level, inside a function, and under `if TYPE_CHECKING:`. A lazy import
hides a dependency from import time but not from a reader, and a cycle through one still means two
modules cannot be understood, tested or moved apart. Each check below is also fed a small synthetic
case it must reject, so a check that silently passes everything would fail here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mcp_bridge"

ROOMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("functions", ("mcp_bridge.functions",)),
    ("operations", ("mcp_bridge.operations",)),
    ("idempotency", ("mcp_bridge.idempotency",)),
    ("tool_openapi", ("mcp_bridge.tool_openapi",)),
    ("runtime", ("mcp_bridge.runtime",)),
    ("calls", ("mcp_bridge.calls",)),
    ("callers", ("mcp_bridge.callers",)),
    ("failover", ("mcp_bridge.failover",)),
    ("upstream", ("mcp_bridge.upstream",)),
    ("azure_services", ("mcp_bridge.azure_services",)),
    ("arguments", ("mcp_bridge.arguments",)),
    (
        "cross-cutting",
        (
            "mcp_bridge.problems",
            "mcp_bridge.models",
            "mcp_bridge.redaction",
            "mcp_bridge.telemetry",
            "mcp_bridge.host_logging",
            "mcp_bridge.process_memory",
        ),
    ),
    ("config", ("mcp_bridge.config",)),
)
"""The rooms from the top (the blueprints) down; a module may import its own room and those below.
The same order is written in mcp_bridge/__init__.py; change both together."""

PACKAGES_WITH_AN_API = frozenset({"mcp_bridge.telemetry", "mcp_bridge.host_logging"})
"""Cross-cutting packages whose `__init__` re-exports their public names; a room's `__init__` only
describes the room."""

DEV_TOOLS = ("devstack", "bench", "reliability")

Graph = Mapping[str, set[str]]


# -- reading imports ------------------------------------------------------------------------------


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root`, by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(source: str, module: str, *, is_package: bool, known: Iterable[str] = ()) -> set[str]:
    """Absolute names of every module `source` imports, wherever the import statement sits.

    Relative imports are resolved against `module`. `from pkg import name` counts as importing
    `pkg.name` when that is one of the `known` modules (a submodule), else as importing `pkg`.
    """
    known = set(known)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    raise ValueError(f"{module}: relative import beyond the top-level package")
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (anything else is left out)."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = imported_names(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py", known=files
        )
        graph[module] = {name for name in names if name in files}
    return graph


# -- the checks, as pure functions of a graph -----------------------------------------------------


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a path that ends where it starts (`[a, b, a]`), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def room_of(module: str, rooms: tuple[tuple[str, tuple[str, ...]], ...] = ROOMS) -> int | None:
    """Index of the room `module` lives in (0 = top), or None when it belongs to none."""
    for index, (_, prefixes) in enumerate(rooms):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return None


def upward_imports(
    graph: Graph, rooms: tuple[tuple[str, tuple[str, ...]], ...] = ROOMS
) -> list[tuple[str, str]]:
    """Every import of a module in a room above the importer's (room order is top first)."""
    upward = []
    for module, targets in sorted(graph.items()):
        here = room_of(module, rooms)
        for target in sorted(targets):
            there = room_of(target, rooms)
            if here is not None and there is not None and there < here:
                upward.append((module, target))
    return upward


def dev_tool_imports(sources: Mapping[str, str]) -> list[tuple[str, str]]:
    """(module, what it imports) for each import of `devstack` or `bench` in `sources`."""
    found = []
    for module, source in sorted(sources.items()):
        for name in sorted(imported_names(source, module, is_package=False)):
            if name.split(".")[0] in DEV_TOOLS:
                found.append((module, name))
    return found


# -- the real tree --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGE)


def test_no_import_cycles_among_mcp_bridge_modules(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_lives_in_a_room(graph):
    homeless = [module for module in graph if module != PACKAGE and room_of(module) is None]
    assert not homeless, f"modules in no room (add them to ROOMS or move them): {homeless}"


def test_rooms_import_only_downward(graph):
    order = " -> ".join(name for name, _ in ROOMS)
    upward = upward_imports(graph)
    assert not upward, f"imports against the room order ({order}):\n" + "\n".join(
        f"  {module} imports {target}" for module, target in upward
    )


def test_the_app_never_imports_the_development_tools():
    sources = {
        module: path.read_text(encoding="utf-8") for module, path in module_files(ROOT, PACKAGE).items()
    }
    sources["function_app"] = (ROOT / "function_app.py").read_text(encoding="utf-8")
    assert dev_tool_imports(sources) == []


def test_room_packages_hold_only_their_description(graph):
    """A room's `__init__` runs whenever anything in it is imported: no imports, no side effects."""
    for name, prefixes in ROOMS:
        for prefix in prefixes:
            init = ROOT.joinpath(*prefix.split("."), "__init__.py")
            if prefix in PACKAGES_WITH_AN_API or not init.exists():
                continue  # a package with an API, or a plain module (no __init__ of its own)
            body = ast.parse(init.read_text(encoding="utf-8")).body
            assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{init} holds more than a docstring"
            assert isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
            assert "import" in body[0].value.value.lower(), (
                f"{init} does not say what the {name} room may import"
            )


# -- each check rejects what it is for ------------------------------------------------------------


def test_the_cycle_check_finds_a_cycle_and_names_it():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle


def test_imports_inside_functions_and_type_checking_blocks_count():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "if TYPE_CHECKING:\n"
        "    from .typed import Model\n"
        "def later():\n"
        "    from ..config import settings\n"
        "    import devstack.tls\n"
        "    importlib.import_module('bench.rig')\n"
    )
    names = imported_names(
        source, "pkg.room.mod", is_package=False, known={"pkg.room.sibling", "pkg.config.settings"}
    )
    assert names == {
        "typing",
        "pkg.room.sibling",
        "pkg.other",
        "pkg.room.typed",
        "pkg.config.settings",
        "devstack.tls",
        "bench.rig",
    }


def test_the_graph_builder_sees_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import x\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_room_check_rejects_an_upward_import():
    rooms = (("top", ("p.top",)), ("middle", ("p.mid", "p.util")), ("bottom", ("p.low",)))
    graph = {
        "p.top.x": {"p.mid.y", "p.low.z"},  # down two rooms: fine
        "p.mid.y": {"p.util"},  # same room: fine
        "p.util": set(),
        "p.low.z": {"p.mid.y"},  # up: refused, though there is no cycle
    }
    assert find_cycle(graph) is None
    assert upward_imports(graph, rooms) == [("p.low.z", "p.mid.y")]
    assert room_of("p.stray", rooms) is None


def test_the_dev_tool_check_rejects_any_import_of_devstack_or_bench():
    sources = {
        "app.clean": "import json\nfrom .devstack_like import x\n",
        "app.lazy": "def f():\n    from devstack.processes import free_port\n",
        "app.bench": "import bench\n",
    }
    assert dev_tool_imports(sources) == [("app.bench", "bench"), ("app.lazy", "devstack.processes")]
