"""`make package`: the zip to deploy holds the app as .funcignore leaves it plus its dependencies, and
the app indexes from that zip alone.

The zip is built once per session (tools/package.py, ~20 s: uv installs the Linux wheels, then
every module is compiled). The import check runs a fresh interpreter with `-I -S`: no site-packages,
no PYTHONPATH, no current directory, only the unpacked folder and its
`.python_packages/lib/site-packages`, as the Functions Python worker sets the path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pathspec
import pytest

from tools import package as packaging_tool

ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = ".python_packages/lib/site-packages"

# Everything importable from mcp_bridge, each function with its bindings, and where every loaded
# module came from. Printed as JSON for the test to compare with the same run from the source tree.
INDEX = """
import importlib, json, pkgutil, sys, sysconfig
from pathlib import Path

root = Path.cwd()
if "--packaged" in sys.argv:
    sys.path[:0] = [str(root), str(root / ".python_packages/lib/site-packages")]
import function_app
functions = {}
for function in function_app.app.get_functions():
    spec = json.loads(function.get_function_json())
    functions[function.get_function_name()] = sorted(
        (
            {key: value for key, value in binding.items() if key != "name"}
            for binding in spec["bindings"]
        ),
        key=json.dumps,
    )
import mcp_bridge
modules = sorted(m.name for m in pkgutil.walk_packages(mcp_bridge.__path__, "mcp_bridge."))
for name in modules:
    importlib.import_module(name)
import azure.monitor.opentelemetry  # the worker imports it for PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
stdlib = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}
origins = {}
for name, module in list(sys.modules.items()):
    location = getattr(module, "__file__", None)
    if location is None:
        continue
    path = Path(location).resolve()
    if path.is_relative_to(root):
        origin = "package"
    elif any(path.is_relative_to(base) for base in stdlib):
        origin = "stdlib"
    else:
        origin = str(path)
    origins[name] = origin
print(json.dumps({"functions": functions, "modules": modules, "origins": origins, "path": sys.path}))
"""


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> packaging_tool.Package:
    out = tmp_path_factory.mktemp("package")
    return packaging_tool.build(zip_path=out / "scheduler-bridge.zip", staging=out / "staging")


@pytest.fixture(scope="session")
def unpacked(built: packaging_tool.Package, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("wwwroot")
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(target)
    return target


def zip_names(built: packaging_tool.Package) -> list[str]:
    with zipfile.ZipFile(built.zip_path) as archive:
        return archive.namelist()


def test_the_project_part_is_what_funcignore_leaves_of_the_repository(built):
    """Compared with `git ls-files` filtered through .funcignore: a different walk, the same answer."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    spec = pathspec.GitIgnoreSpec.from_lines((ROOT / ".funcignore").read_text().splitlines())
    expected = {path for path in tracked if not spec.match_file(path) and (ROOT / path).is_file()}
    project = {
        name
        for name in zip_names(built)
        if not name.startswith(".python_packages/") and "/__pycache__/" not in f"/{name}"
    }
    assert project == expected
    assert {"function_app.py", "host.json", "requirements.txt", "mcp_bridge/__init__.py"} <= project
    for never in (
        "tests/",
        "devstack/",
        "bench/",
        "reliability/",
        "infra/",
        "docs/",
        "tools/",
        ".venv/",
        "local.settings.json",
    ):
        assert not any(name.startswith(never) for name in project), never


def test_funcignore_prunes_directories_and_virtualenvs_whatever_their_name(tmp_path):
    for path in (
        "function_app.py", "app/x.py", "app/__pycache__/x.cpython-311.pyc", "tests/test_x.py",
        "notes.md", "sub/tests/keep_me_not.py", "projname_env/pyvenv.cfg", "projname_env/lib/site.py",
        ".azure/prod/.env",
    ):  # fmt: skip
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    (tmp_path / ".funcignore").write_text("__pycache__\ntests\n*.md\n.azure\n")
    files = list(packaging_tool.project_files(tmp_path, packaging_tool.ignore_spec(tmp_path)))
    assert files == [".funcignore", "app/x.py", "function_app.py"]


def test_dependencies_are_linux_cpython_311_wheels(built):
    names = zip_names(built)
    extensions = [name for name in names if name.startswith(SITE_PACKAGES) and name.endswith(".so")]
    assert extensions, "pydantic-core and others ship compiled code"
    assert all(("cpython-311-x86_64-linux-gnu" in name or ".abi3." in name) for name in extensions), [
        name for name in extensions if "cpython-311-x86_64-linux-gnu" not in name and ".abi3." not in name
    ]
    wheels = [name for name in names if name.endswith(".dist-info/WHEEL")]
    with zipfile.ZipFile(built.zip_path) as archive:
        tags = {
            line.split(":", 1)[1].strip()
            for name in wheels
            for line in archive.read(name).decode().splitlines()
            if line.startswith("Tag:")
        }
    platforms = {tag.rsplit("-", 1)[1] for tag in tags}
    assert platforms <= {"any"} | {p for p in platforms if p.startswith("manylinux") and p.endswith("x86_64")}
    assert not {p for p in platforms if "macosx" in p or "win" in p}
    requirements = {
        line.split(">")[0].split("<")[0].split("=")[0].strip().lower().replace("-", "_")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    installed = {name.split("/")[3].split("-")[0].lower() for name in wheels}
    assert requirements <= installed, requirements - installed


def test_every_module_has_bytecode_that_needs_no_source_timestamp(built):
    names = set(zip_names(built))
    sources = [name for name in names if name.startswith("mcp_bridge/") and name.endswith(".py")]
    for source in sources:
        folder, _, file = source.rpartition("/")
        pyc = f"{folder}/__pycache__/{file[:-3]}.cpython-311.pyc"
        assert pyc in names, pyc
    with zipfile.ZipFile(built.zip_path) as archive:
        flags = int.from_bytes(
            archive.read("mcp_bridge/config/__pycache__/settings.cpython-311.pyc")[4:8], "little"
        )
    assert flags == 0b11, "PEP 552: hash-based and checked against the source, no timestamp"


def test_the_zip_is_reproducible(built):
    """Sorted entries and fixed times: the same tree always zips to the same bytes."""
    with zipfile.ZipFile(built.zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o644}


def index(cwd: Path, *arguments: str) -> dict:
    result = subprocess.run(
        [sys.executable, *arguments, "-c", INDEX, *(["--packaged"] if "-I" in arguments else [])],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_the_unpacked_zip_alone_indexes_every_function_with_its_bindings(unpacked, built):
    packaged = index(unpacked, "-I", "-S")
    assert packaged["path"][:2] == [str(unpacked), str(unpacked / SITE_PACKAGES)]
    leaked = {
        name: origin for name, origin in packaged["origins"].items() if origin not in ("package", "stdlib")
    }
    assert leaked == {}, "imported from outside the package"
    assert "pydantic_core._pydantic_core" in packaged["origins"]

    source = index(ROOT)
    assert packaged["functions"] == source["functions"]
    assert packaged["modules"] == source["modules"]
    assert set(packaged["functions"]) == {
        "call_tool", "list_tools", "conversation_status", "conversation_status_query", "health_probe", "health",
        "openapi", "warmup", "get_operation", "cancel_operation",
        "server_call_tool", "server_list_tools", "server_get_operation", "server_cancel_operation",
    }  # fmt: skip
    assert [binding["type"] for binding in packaged["functions"]["warmup"]] == ["warmupTrigger"]
    http = [binding for binding in packaged["functions"]["call_tool"] if binding["type"] == "httpTrigger"]
    assert http == [
        {
            "authLevel": "FUNCTION",
            "direction": "IN",
            "methods": ["POST"],
            "route": "tools/{tool_name}",
            "type": "httpTrigger",
        }
    ]
    [timer] = packaged["functions"]["health_probe"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%HEALTH_PROBE_SCHEDULE%"
    print(f"\npackage: {built.size_bytes / 1_000_000:.1f} MB, {built.entries} files")
