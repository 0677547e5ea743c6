"""Element rules of the segments OpenHMO reads, as data, and the check that applies them.

Each rule is written as the implementation guides print an element: its usage
(M mandatory, O optional or situational, X not used), its X12 type (AN string, ID code,
N0 whole number, R decimal, DT date, TM time, C composite) and its length range, and for
ID elements the codes the guide allows. A composite lists its components' rules.

`check` answers a segment with its problems as 999 IK4 codes:
1 mandatory element missing, 3 too many elements, 4 too short, 5 too long,
6 invalid character, 7 invalid code value, 8 invalid date, 9 invalid time,
13 too many components, I10 a "not used" element or component present (the 005010X231A1
guide, IK403).
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
    elements: list[str],
    rules: tuple[Rule, ...],
    component_separator: str,
    text: str = "",
    element_separator: str = "",
) -> list[ElementProblem]:
    """The problems of one segment's elements against its rules (empty when it is fine).

    With the segment's `text` and its element separator, a clean segment is usually
    vouched for by one regular expression over the whole text (`_one_pass`); anything
    it does not vouch for is checked element by element as before.
    """
    if text and element_separator:
        fast = _one_pass(rules, element_separator, component_separator)
        if (
            fast is not None
            and fast[0].fullmatch(text) is not None
            and all(_date_ok(v) for v in _dated(elements, fast[1], component_separator))
        ):
            return []
    key = (component_separator, id(rules), *elements)
    found = _CACHE.get(key)
    if found is None:
        clean = _quick(elements, _plan(rules), component_separator)
        found = [] if clean else _check(elements, rules, component_separator)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = found
    return list(found)


# --- the one-pass check -----------------------------------------------------------------
#
# A segment's rules as one regular expression over its text, that matches only segments
# `_quick` passes (it may refuse some that `_quick` passes: those go the usual way). Dates
# are matched by shape and their calendar checked after (`_dated`). Built once per rule
# set and pair of separators; None where a rule cannot be written so (a kind or a code
# the expression cannot hold exactly).

_ONE_PASS: dict[tuple[int, str, str], tuple[tuple[Rule, ...], tuple] | None] = {}


def _one_pass(
    rules: tuple[Rule, ...], element_sep: str, component_sep: str
) -> tuple[re.Pattern, tuple[tuple[int, int | None], ...]] | None:
    key = (id(rules), element_sep, component_sep)
    found = _ONE_PASS.get(key)
    if found is None or found[0] is not rules:
        found = _ONE_PASS[key] = (rules, _compile(rules, element_sep, component_sep))
    return found[1]


def _dated(
    elements: list[str], where: tuple[tuple[int, int | None], ...], component_sep: str
) -> list[str]:
    """The values at the date positions `where` (element, component), those present."""
    values = []
    for n, c in where:
        value = elements[n] if n < len(elements) else ""
        if c is not None and value:
            pieces = value.split(component_sep)
            value = pieces[c - 1] if c <= len(pieces) else ""
        if value:
            values.append(value)
    return values


def _allowed(*excluded: str) -> str:
    """A character class of X12's set without the separators in `excluded`."""
    chars = [chr(i) for i in range(32, 127) if _CHARACTERS.match(chr(i)) and chr(i) not in excluded]
    return "[" + "".join(re.escape(ch) for ch in chars) + "]"


def _value_pattern(r: Rule, cls: str, separators: str) -> str | None:
    """An expression for a present value `_predicate(r)` accepts, or None."""
    if r.min > r.max:
        return None
    if r.kind == "ID" and r.codes is not None:
        if any(not code or any(s in code for s in separators) for code in r.codes):
            return None
        return "(?:" + "|".join(re.escape(c) for c in sorted(r.codes, key=len, reverse=True)) + ")"
    if r.codes is not None:
        return None
    if r.kind in ("ID", "AN"):
        return f"{cls}{{{max(r.min, 1)},{r.max}}}"
    if r.kind in ("N0", "N2"):
        return f"-?[0-9]{{{r.min},{r.max}}}" if r.min >= 1 else None
    if r.kind == "R":
        # Digits (not the sign or the point) between min and max, in _DECIMAL's shape.
        count = rf"(?=-?(?:\.?[0-9]){{{r.min},{r.max}}}\.?(?![0-9.]))"
        return count + r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    if r.kind == "DT":
        lengths = [n for n in (8, 6) if r.min <= n <= r.max]
        return "(?:" + "|".join(f"[0-9]{{{n}}}" for n in lengths) + ")" if lengths else None
    return None


def _compile(
    rules: tuple[Rule, ...], element_sep: str, component_sep: str
) -> tuple[re.Pattern, tuple[tuple[int, int | None], ...]] | None:
    if not element_sep or element_sep == component_sep:
        return None
    e, c = re.escape(element_sep), re.escape(component_sep)
    simple, piece = _allowed(element_sep), _allowed(element_sep, component_sep)
    separators = element_sep + component_sep
    values: list[tuple[str, bool]] = []  # (pattern of the element, may it be empty)
    dates: list[tuple[int, int | None]] = []

    def value(r: Rule, cls: str, where: tuple[int, int | None]) -> tuple[str, bool] | None:
        if r.usage == "X":  # must be empty
            return "", True
        body = _value_pattern(r, cls, separators)
        if body is not None and r.kind == "DT":
            dates.append(where)
        return None if body is None else (body, r.usage != "M")

    for n, r in enumerate(rules, start=1):
        if r.kind == "C" and r.usage != "X":
            parts = [value(cr, piece, (n, k)) for k, cr in enumerate(r.components, start=1)]
            if None in parts:
                return None
            chain = _chain(parts, c)
            # A mandatory composite is not empty (an empty one is absent, whatever its
            # components say); an optional one may be.
            values.append((f"(?=[^{e}]){chain}" if r.usage == "M" else chain, r.usage != "M"))
            continue
        found = value(r, simple, (n, None))
        if found is None:
            return None
        values.append(found)
    return re.compile(f"[^{e}]*{_chain(values, e, leading=True)}"), tuple(dates)


def _chain(values: list[tuple[str, bool]], sep: str, leading: bool = False) -> str:
    """Values joined by `sep`, where trailing ones may be left off (with their
    separators) as long as none of them is mandatory: X12's truncation."""
    tail = ""
    for i in range(len(values) - 1, -1, -1):
        body, optional = values[i]
        value = f"(?:{body})?" if optional and body else body
        lead = sep if (leading or i > 0) else ""
        group = f"(?:{lead}{value}{tail})"
        rest_optional = all(o for _, o in values[i:])
        tail = group + "?" if rest_optional else group
    return tail


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
            elif part_usage == "X" or not part_predicate(piece):
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
                if cr.usage == "X":
                    where = _where(segment, n, cr, c)
                    problems.append(
                        ElementProblem(
                            n, c, "I10", f"{where} is not used in this transaction", part
                        )
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
