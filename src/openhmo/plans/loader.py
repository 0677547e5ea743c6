"""Read plan design files, and say exactly what is wrong with a bad one.

Every error names the file, the line, the field's path (as in
`plan_years[0].benefits.specialist_visit.in_network`) and what is wrong, and all of a
file's errors are reported at once, so a benefit designer fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from openhmo.plans.checks import check_design
from openhmo.plans.design import PlanDesign


@dataclass(frozen=True)
class DesignError:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(top level)'}: {self.message}"


class PlanDesignError(ValueError):
    def __init__(self, errors: list[DesignError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def field_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The line of the deepest YAML node along loc (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, _ in node.value if k.value == str(part)), None)
            if match is None:
                break
            line = (key or match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _pydantic_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # Pydantic puts validator names (e.g. 'function-before[...]') in some locations, and
    # a benefit's tiers sit under 'cost', which the file's shorthand does not write.
    out = tuple(p for p in loc if not (isinstance(p, str) and "[" in p and "]" in p))
    if len(out) > 4 and out[2] == "benefits" and out[4] == "cost":
        out = out[:4] + out[5:]
    return out


def _message(error: dict[str, Any]) -> str:
    message = error["msg"]
    return message.removeprefix("Value error, ")


def parse_design(data: Any, *, file: str = "<design>", node: yaml.Node | None = None) -> PlanDesign:
    """Validate a design already read into Python data; raise PlanDesignError on any error."""
    if not isinstance(data, dict):
        raise PlanDesignError([DesignError(file, 1, "", "a plan design is a mapping of fields")])
    try:
        design = PlanDesign.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = _pydantic_loc(err["loc"])
            errors.append(DesignError(file, _line_of(node, loc), field_path(loc), _message(err)))
        raise PlanDesignError(errors) from None
    issues = check_design(design)
    if issues:
        raise PlanDesignError(
            [
                DesignError(file, _line_of(node, i.path), field_path(i.path), i.message)
                for i in issues
            ]
        )
    return design


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so a bad date is reported by its field."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_design_text(text: str, file: str = "<design>") -> PlanDesign:
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise PlanDesignError([DesignError(file, line, "", f"not valid YAML: {exc}")]) from None
    return parse_design(data, file=file, node=node)


def load_design(path: str | Path) -> PlanDesign:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanDesignError([DesignError(str(path), None, "", f"cannot read: {exc}")]) from None
    return load_design_text(text, file=str(path))


def example_designs() -> list[Path]:
    """The example plans shipped with OpenHMO, one of each plan type."""
    return sorted((Path(__file__).parent / "examples").glob("*.yaml"))
