"""HTTP trigger route templates, matched the way the Functions host (ASP.NET Core routing) matches them.

Supported: literal segments (case-insensitive), `{name}`, optional
`{name?}`, defaults `{name=value}`, catch-all `{*name}`, and the common
inline constraints `{name:alpha}`, `int`, `long`, `bool`, `guid`, `double`,
`decimal`, `float`, `datetime`, `length(n)` / `length(a,b)`, `minlength(n)`,
`maxlength(n)`, `min(n)`, `max(n)`, `range(a,b)` and `regex(...)` (without braces), chained
with more colons. When several templates match a path, the most specific
wins (literal before constrained parameter before parameter before
catch-all), as in ASP.NET's route precedence.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

_LOGGER = logging.getLogger(__name__)

_PARAMETER = re.compile(r"\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_CONSTRAINT = re.compile(r"^(?P<name>[A-Za-z]+)(?:\((?P<argument>.*)\))?$")

_RANK_LITERAL = 1
_RANK_COMPLEX = 2
_RANK_CONSTRAINED = 3
_RANK_PARAMETER = 4
_RANK_CATCH_ALL = 5


class RouteTemplateError(ValueError):
    """A route template this host cannot parse."""


Constraint = Callable[[str], bool]


@dataclass(frozen=True)
class _Parameter:
    name: str
    group: str
    optional: bool
    catch_all: bool
    default: str | None
    constraints: tuple[Constraint, ...]


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template; `match()` returns route values or None."""

    template: str
    precedence: tuple[int, ...]
    _pattern: re.Pattern[str]
    _parameters: tuple[_Parameter, ...]

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (without leading or trailing slashes), or None if it does not match."""
        found = self._pattern.fullmatch(path.strip("/"))
        if found is None:
            return None
        values: dict[str, str] = {}
        for parameter in self._parameters:
            value = found.group(parameter.group)
            if value is None or value == "":
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not all(check(value) for check in parameter.constraints):
                return None
            values[parameter.name] = value
        return values


def compile_route(template: str) -> RouteTemplate:
    """Compile a full template (route prefix already joined), e.g. `api/tools/{tool_name:alpha}`."""
    segments = [segment for segment in template.strip("/").split("/")]
    if segments == [""]:
        segments = []
    pattern_parts: list[str] = []
    parameters: list[_Parameter] = []
    precedence: list[int] = []
    for index, segment in enumerate(segments):
        separator = "" if index == 0 else "/"
        whole = _PARAMETER.fullmatch(segment)
        if whole is not None:
            parameter = _parse_parameter(whole.group(1), group=f"p{len(parameters)}")
            parameters.append(parameter)
            precedence.append(_rank(parameter))
            body = ".*" if parameter.catch_all else "[^/]+"
            piece = f"{re.escape(separator)}(?P<{parameter.group}>{body})"
            optional = parameter.optional or parameter.catch_all or parameter.default is not None
            pattern_parts.append(f"(?:{piece})?" if optional else piece)
            continue
        if "{" in segment or "}" in segment:
            piece, segment_parameters = _compile_complex_segment(segment, first_group=len(parameters))
            parameters.extend(segment_parameters)
            precedence.append(_RANK_COMPLEX)
            pattern_parts.append(re.escape(separator) + piece)
            continue
        precedence.append(_RANK_LITERAL)
        pattern_parts.append(re.escape(separator + segment))
    pattern = re.compile("".join(pattern_parts), re.IGNORECASE)
    return RouteTemplate(template, tuple(precedence), pattern, tuple(parameters))


def _compile_complex_segment(segment: str, *, first_group: int) -> tuple[str, list[_Parameter]]:
    """A segment mixing literals and parameters, e.g. `{name}.{ext}`."""
    parts: list[str] = []
    parameters: list[_Parameter] = []
    position = 0
    for found in _PARAMETER.finditer(segment):
        parts.append(re.escape(segment[position : found.start()]))
        parameter = _parse_parameter(found.group(1), group=f"p{first_group + len(parameters)}")
        if parameter.catch_all:
            raise RouteTemplateError(f"catch-all parameter inside segment {segment!r}")
        parameters.append(parameter)
        parts.append(f"(?P<{parameter.group}>[^/]+)")
        position = found.end()
    parts.append(re.escape(segment[position:]))
    literal_rest = _PARAMETER.sub("", segment)
    if "{" in literal_rest or "}" in literal_rest:
        raise RouteTemplateError(f"unbalanced braces in segment {segment!r}")
    return "".join(parts), parameters


def _parse_parameter(text: str, *, group: str) -> _Parameter:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    default: str | None = None
    if "=" in text:
        text, default = text.split("=", 1)
    optional = text.endswith("?")
    text = text.rstrip("?")
    name, *constraint_texts = _split_constraints(text)
    if not name:
        raise RouteTemplateError(f"route parameter without a name: {{{text}}}")
    constraints = tuple(_constraint(constraint_text) for constraint_text in constraint_texts)
    return _Parameter(name, group, optional, catch_all, default, constraints)


def _split_constraints(text: str) -> list[str]:
    """Split `name:c1:c2(…)` on colons outside parentheses (regex constraints contain colons)."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _rank(parameter: _Parameter) -> int:
    if parameter.catch_all:
        return _RANK_CATCH_ALL
    return _RANK_CONSTRAINED if parameter.constraints else _RANK_PARAMETER


def _constraint(text: str) -> Constraint:
    found = _CONSTRAINT.match(text)
    if found is None:
        raise RouteTemplateError(f"cannot parse route constraint {text!r}")
    name = found.group("name").lower()
    argument = found.group("argument")
    if name == "regex" and argument is not None:
        expression = re.compile(argument, re.IGNORECASE)
        return lambda value: expression.search(value) is not None
    simple = _SIMPLE_CONSTRAINTS.get(name)
    if simple is not None and argument is None:
        return simple
    if name in _SIZED_CONSTRAINTS and argument is not None:
        numbers = [int(part.strip()) for part in argument.split(",")]
        return _SIZED_CONSTRAINTS[name](numbers)
    raise RouteTemplateError(f"unsupported route constraint {text!r}")


def _is_int(value: str, bits: int) -> bool:
    if re.fullmatch(r"[+-]?\d+", value) is None:
        return False
    return -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_SIMPLE_CONSTRAINTS: dict[str, Constraint] = {
    "alpha": lambda value: value.isascii() and value.isalpha(),
    "int": lambda value: _is_int(value, 32),
    "long": lambda value: _is_int(value, 64),
    "bool": lambda value: value.lower() in ("true", "false"),
    "guid": _is_guid,
    "double": _is_number,
    "float": _is_number,
    "decimal": _is_number,
    "datetime": _is_datetime,
}


def _length(numbers: list[int]) -> Constraint:
    low, high = (numbers[0], numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    return lambda value: low <= len(value) <= high


_SIZED_CONSTRAINTS: dict[str, Callable[[list[int]], Constraint]] = {
    "length": _length,
    "minlength": lambda numbers: lambda value: len(value) >= numbers[0],
    "maxlength": lambda numbers: lambda value: len(value) <= numbers[0],
    "min": lambda numbers: lambda value: _is_int(value, 64) and int(value) >= numbers[0],
    "max": lambda numbers: lambda value: _is_int(value, 64) and int(value) <= numbers[0],
    "range": lambda numbers: lambda value: _is_int(value, 64) and numbers[0] <= int(value) <= numbers[1],
}
