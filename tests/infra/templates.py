"""The Bicep templates under infra/, parsed once with pycep-parser, and small readers over the result.

pycep turns a template into JSON-like data: `parameters`, `variables`, `resources` and `modules`
by symbolic name. A conditional resource wraps its body as `{"condition": ..., "config": {...}}`;
`resource_body` unwraps it. Identifiers and string literals both come back as plain strings, so
readers here resolve a name only where the template's own declarations say what it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
FUNCTION_APP = INFRA / "core" / "functionapp.bicep"
ROLES = INFRA / "core" / "roles.bicep"
ALERTS = INFRA / "core" / "alerts.bicep"
MAIN = INFRA / "main.bicep"

_LOAD_TEXT = re.compile(r"loadTextContent\('([^']+)'\)")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()  # building the grammar takes about half a second


@cache
def parse(path: Path) -> dict[str, Any]:
    return _parser().parse(file_path=path)


def resource_body(resource: dict[str, Any]) -> dict[str, Any]:
    """The `{name, properties, ...}` body, whether or not the resource is conditional or a loop."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(path: Path, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(symbolic name, body) of every resource of `resource_type` declared in `path`."""
    for name, resource in parse(path)["resources"].items():
        if resource["type"].lower() == resource_type.lower():
            yield name, resource_body(resource)


def is_conditional(path: Path, symbol: str) -> bool:
    return parse(path)["resources"][symbol]["config"].get("condition") is not None


def app_settings() -> list[dict[str, Any]]:
    """The function app's fixed `siteConfig.appSettings`: a list of `{name, value}` (the first
    operand when they are `concat(fixed, upstreamSettings)`; see `upstream_settings`)."""
    [(_, site)] = resources(FUNCTION_APP, "Microsoft.Web/sites")
    settings = site["properties"]["siteConfig"]["appSettings"]
    if isinstance(settings, dict) and settings.get("function", {}).get("type") == "concat":
        settings = settings["function"]["parameters"]["arg_1"]
    if isinstance(settings, str):  # a variable holds them
        settings = parse(FUNCTION_APP)["variables"][settings]["value"]
    return settings


def upstream_settings(upstream: dict[str, str], *, private: bool) -> dict[str, str]:
    """The settings the `otherUpstreams` loops give one of its entries, evaluated here: each loop
    variable in `upstreamSettings` (`concat(appSettings, upstreamSettings)`) yields `{name, value}`
    per entry, the name `${toUpper(upstream.name)}_...`, the value a field of the entry, the
    private-endpoint conditional (`private`: the app is in a virtual network) or a derived name."""
    [(_, site)] = resources(FUNCTION_APP, "Microsoft.Web/sites")
    variables = parse(FUNCTION_APP)["variables"]
    [_, loops] = sorted(site["properties"]["siteConfig"]["appSettings"]["function"]["parameters"].items())
    arguments = variables[loops[1]]["value"]["function"]["parameters"]
    prefix = upstream["name"].upper()

    def text(value: str) -> str:
        return value.replace("${toUpper(upstream.name)}", prefix)

    out: dict[str, str] = {}
    for _, loop_name in sorted(arguments.items(), key=lambda item: int(item[0].removeprefix("arg_"))):
        loop = variables[loop_name]["value"]
        assert loop["loop_type"]["detail"] == {"item_name": "upstream", "array_name": "otherUpstreams"}
        entry = loop["config"]
        value = entry["value"]
        if isinstance(value, str):
            evaluated = text(value)
        elif value.get("operator", {}).get("type") == "property_accessor":
            evaluated = upstream[value["operator"]["operands"]["operand_2"]]
        else:
            operands = value["operator"]["operands"]
            assert value["operator"]["type"] == "conditional", value
            evaluated = operands["false_value"] if private else operands["true_value"]
        out[text(entry["name"])] = evaluated
    return out


def allowed_values(path: Path, parameter: str) -> list[Any]:
    for decorator in parse(path)["parameters"][parameter]["decorators"]:
        if decorator["type"] == "allowed":
            return decorator["argument"]
    raise AssertionError(f"{parameter} in {path.name} has no @allowed list")


def loaded_text_files(value: Any, base: Path) -> list[Path]:
    """Files a value reads with loadTextContent(), as a function call or inside an interpolation."""
    found: list[Path] = []
    if isinstance(value, dict):
        function = value.get("function")
        if isinstance(function, dict) and function.get("type") == "load_text_content":
            found.append((base / function["parameters"]["file_path"]).resolve())
        else:
            for item in value.values():
                found += loaded_text_files(item, base)
    elif isinstance(value, list):
        for item in value:
            found += loaded_text_files(item, base)
    elif isinstance(value, str):
        found += [(base / match).resolve() for match in _LOAD_TEXT.findall(value)]
    return found
