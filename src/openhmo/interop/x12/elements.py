"""Element rules of the segments OpenHMO reads, as data, and the check that applies them.

Each rule is written as the implementation guides print an element: its usage
(M mandatory, O optional or situational, X not used), its X12 type (AN string, ID code,
N0 whole number, R decimal, DT date, TM time, C composite) and its length range, and for
ID elements the codes the guide allows. A composite lists its components' rules.

`check` answers a segment with its problems as 999 IK4 codes:
1 mandatory element missing, 3 too many elements, 4 too short, 5 too long,
6 invalid character, 7 invalid code value, 8 invalid date, 9 invalid time,
13 too many components, I10 a "not used" element present (the 005010X231A1 guide, IK403).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_NUMBER = re.compile(r"^-?[0-9]+$")
_DECIMAL = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
# The X12 extended character set (letters, digits, space and the usual punctuation).
_CHARACTERS = re.compile(r"^[A-Za-z0-9 !\"&'()*+,\-./:;?=%@\[\]_{}\\|<>~#$]*$")


@dataclass(frozen=True, slots=True)
class Rule:
    usage: str  # M, O or X
    kind: str = "AN"
    min: int = 1
    max: int = 80
    codes: frozenset[str] | None = None
    components: tuple[Rule, ...] = ()
    name: str = ""


def rule(text: str, name: str = "", *components: Rule) -> Rule:
    """A rule from its guide notation, e.g. "M ID 2 3 41,40", "O R 1 18", "X", "M C"."""
    parts = text.split()
    usage = parts[0]
    if usage == "X":
        return Rule("X", name=name)
    kind = parts[1]
    if kind == "C":
        return Rule(usage, "C", components=components, name=name)
    lo, hi = int(parts[2]), int(parts[3])
    codes = frozenset(parts[4].split(",")) if len(parts) > 4 else None
    return Rule(usage, kind, lo, hi, codes, name=name)


@dataclass(frozen=True, slots=True)
class ElementProblem:
    element: int  # 1-based position in the segment
    component: int | None  # 1-based position in a composite
    code: str  # IK403
    reason: str
    value: str | None = None


def _valid_date(text: str) -> bool:
    try:
        if len(text) == 8:
            date(int(text[:4]), int(text[4:6]), int(text[6:]))
        elif len(text) == 6:
            date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
        else:
            return False
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    if len(text) not in (4, 6, 7, 8) or not text.isdigit():
        return False
    return int(text[:2]) < 24 and int(text[2:4]) < 60 and (len(text) < 6 or int(text[4:6]) < 60)


def _value(value: str, r: Rule, where: str, element: int, component: int | None):
    kind = r.kind
    size = len(value.lstrip("-").replace(".", "")) if kind in ("R", "N0", "N2") else len(value)
    if kind in ("N0", "N2") and not _NUMBER.match(value):
        return ElementProblem(element, component, "6", f"{where} must be a whole number", value)
    if kind == "R" and not _DECIMAL.match(value):
        return ElementProblem(element, component, "6", f"{where} must be a number", value)
    if size < r.min:
        return ElementProblem(
            element, component, "4", f"{where} is shorter than {r.min} characters", value
        )
    if size > r.max:
        return ElementProblem(
            element, component, "5", f"{where} is longer than {r.max} characters", value
        )
    if kind == "DT" and not _valid_date(value):
        return ElementProblem(element, component, "8", f"{where} is not a date (CCYYMMDD)", value)
    if kind == "TM" and not _valid_time(value):
        return ElementProblem(element, component, "9", f"{where} is not a time (HHMM)", value)
    if r.codes is not None and value not in r.codes:
        allowed = ", ".join(sorted(r.codes)[:12])
        return ElementProblem(
            element,
            component,
            "7",
            f"{where} {value!r} is not one of the codes allowed ({allowed})",
            value,
        )
    if not _CHARACTERS.match(value):
        return ElementProblem(
            element, component, "6", f"{where} has a character outside X12's set", value
        )
    return None


def _where(segment: str, n: int, r: Rule, component: int | None = None) -> str:
    text = f"{segment}{n:02d}" + (f"-{component}" if component else "")
    return text + (f" ({r.name})" if r.name else "")


# Checked segments by their text: the same segment (a payer's name, a submitter's
# contact) recurs thousands of times in a file and is checked once.
_CACHE: dict[tuple, list[ElementProblem]] = {}
_CACHE_SIZE = 50_000


def check(
    elements: list[str], rules: tuple[Rule, ...], component_separator: str
) -> list[ElementProblem]:
    """The problems of one segment's elements against its rules (empty when it is fine)."""
    key = (component_separator, id(rules), *elements)
    found = _CACHE.get(key)
    if found is None:
        clean = _quick(elements, _plan(rules), component_separator)
        found = [] if clean else _check(elements, rules, component_separator)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = found
    return list(found)


def _predicate(r: Rule):
    """A function that says yes to a (non-empty) value rule `r` allows, as `_value` does,
    without building the message `_value` would give for a refusal."""
    if r.kind == "ID" and r.codes is not None:
        return r.codes.__contains__
    low, high, chars, codes = r.min, r.max, _CHARACTERS.match, r.codes
    if r.kind in ("ID", "AN"):
        return lambda v: low <= len(v) <= high and chars(v) is not None
    if codes is None and r.kind in ("R", "N0", "N2"):
        shape = (_DECIMAL if r.kind == "R" else _NUMBER).match
        return lambda v: shape(v) is not None and low <= len(v.lstrip("-").replace(".", "")) <= high
    if codes is None and r.kind == "DT":
        return lambda v: low <= len(v) <= high and _date_ok(v) and chars(v) is not None
    return lambda v: _value(v, r, "", 0, None) is None


_DATES: dict[str, bool] = {}


def _date_ok(text: str) -> bool:
    """`_valid_date`, remembered: a file names the same few hundred days again and again."""
    found = _DATES.get(text)
    if found is None:
        if len(_DATES) > 100_000:
            _DATES.clear()
        found = _DATES[text] = _valid_date(text)
    return found


# The rules of a segment as (position, usage, predicate, components) to run without
# building messages: the usual segment is clean, and only a dirty one needs `_check`.
_PLANS: dict[int, tuple[tuple[Rule, ...], list[tuple]]] = {}


def _plan(rules: tuple[Rule, ...]) -> list[tuple]:
    found = _PLANS.get(id(rules))
    if found is None or found[0] is not rules:
        steps = []
        for n, r in enumerate(rules, start=1):
            parts = [(c.usage, _predicate(c)) for c in r.components] if r.kind == "C" else None
            steps.append((n, r.usage, None if r.usage == "X" else _predicate(r), parts))
        found = _PLANS[id(rules)] = (rules, steps)
    return found[1]


def _quick(elements: list[str], plan: list[tuple], component_separator: str) -> bool:
    count = len(elements) - 1
    if count > len(plan):
        return False
    for n, usage, predicate, parts in plan:
        value = elements[n] if n <= count else ""
        if not value:
            if usage == "M":
                return False
            continue
        if usage == "X":
            return False
        if parts is None:
            if not predicate(value):
                return False
            continue
        pieces = value.split(component_separator)
        if len(pieces) > len(parts):
            return False
        for c, (part_usage, part_predicate) in enumerate(parts):
            piece = pieces[c] if c < len(pieces) else ""
            if not piece:
                if part_usage == "M":
                    return False
            elif not part_predicate(piece):
                return False
    return True


def _check(
    elements: list[str], rules: tuple[Rule, ...], component_separator: str
) -> list[ElementProblem]:
    problems: list[ElementProblem] = []
    segment = elements[0]
    count = len(elements) - 1
    if count > len(rules):
        problems.append(
            ElementProblem(
                len(rules) + 1, None, "3", f"{segment} has {count} elements; at most {len(rules)}"
            )
        )
    for n, r in enumerate(rules, start=1):
        value = elements[n] if n <= count else ""
        if not value:
            if r.usage == "M":
                problems.append(
                    ElementProblem(n, None, "1", f"{_where(segment, n, r)} is required and missing")
                )
            continue
        if r.usage == "X":
            problems.append(
                ElementProblem(
                    n,
                    None,
                    "I10",
                    f"{_where(segment, n, r)} is not used in this transaction",
                    value,
                )
            )
            continue
        if r.kind == "C":
            parts = value.split(component_separator)
            if len(parts) > len(r.components):
                problems.append(
                    ElementProblem(
                        n,
                        None,
                        "13",
                        f"{_where(segment, n, r)} has {len(parts)} components; "
                        f"at most {len(r.components)}",
                        value,
                    )
                )
            for c, cr in enumerate(r.components, start=1):
                part = parts[c - 1] if c <= len(parts) else ""
                if not part:
                    if cr.usage == "M":
                        where = _where(segment, n, cr, c)
                        problems.append(
                            ElementProblem(n, c, "1", f"{where} is required and missing")
                        )
                    continue
                found = _value(part, cr, _where(segment, n, cr, c), n, c)
                if found is not None:
                    problems.append(found)
            continue
        found = _value(value, r, _where(segment, n, r), n, None)
        if found is not None:
            problems.append(found)
    return problems
