"""Reading a directory search's query string the way FHIR R4 defines it, strictly.

Every parameter a search type does not declare is refused with a 400 OperationOutcome
naming it: FHIR's `Prefer: handling=strict`, which is this server's default. A client
that sends `Prefer: handling=lenient` has unknown parameters ignored instead (and left
out of the Bundle's links, which show the search as it was done). Values follow FHIR's
search syntax: repeating a parameter means AND, commas inside a value mean OR (`\\,` is a
literal comma), tokens are `[system]|[code]`, references `[type]/[id]` or `[id]`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from fastapi import Request

from openhmo.api.errors import ApiError
from openhmo.api.fhir.capabilities import SearchParam
from openhmo.api.fhir.responses import DEFAULT_COUNT, MAX_COUNT

# Search modifiers we honour, by parameter type (others are refused, as FHIR asks).
MODIFIERS = {"string": {"exact", "contains"}}
# Control parameters every search takes; `_format` only in its JSON spellings.
_JSON_FORMATS = {"json", "application/json", "application/fhir+json"}
MILES = {"mi": 1.0, "[mi_i]": 1.0, "km": 0.621371192, "m": 0.000621371192}
DEFAULT_NEAR_MILES = 25.0
MAX_NEAR_MILES = 500.0


@dataclass(frozen=True)
class Clause:
    """One occurrence of a parameter: its modifier and its OR'd values."""

    modifier: str | None
    values: tuple[str, ...]


@dataclass
class Query:
    clauses: dict[str, list[Clause]] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    offset: int = 0
    include: list[str] = field(default_factory=list)
    revinclude: list[str] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # for the Bundle's links
    counted: bool = True  # False for _total=none: no COUNT, no Bundle.total
    exact: bool = False  # True for _total=accurate: counted however many match

    def all(self, name: str) -> list[Clause]:
        return self.clauses.get(name, [])


def bad(message: str, where: str, code: str = "invalid") -> ApiError:
    return ApiError(400, message, code=code, expression=[where])


def _number(text: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise bad(f"{name} must be a whole number of 0 or more (got {text!r})", name)
    return int(text)


def split_or(value: str) -> list[str]:
    """The comma-separated alternatives of a value; `\\,` is a comma, `\\\\` a backslash."""
    parts, current, escaped = [], [], False
    for ch in value:
        if escaped:
            current.append(ch if ch in ",$|\\" else "\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current) + ("\\" if escaped else ""))
    return parts


def parse(
    request: Request,
    declared: tuple[SearchParam, ...],
    includes: tuple[str, ...] = (),
    revincludes: tuple[str, ...] = (),
) -> Query:
    """The search in `request`'s query string, or a 400 naming what is wrong in it."""
    prefer = request.headers.get("prefer", "")
    lenient = re.search(r"\bhandling\s*=\s*lenient\b", prefer, re.IGNORECASE) is not None
    types = {p.name: p.type for p in declared}
    query = Query()
    for key, value in request.query_params.multi_items():
        name, _, modifier = key.partition(":")
        if key == "_count":
            query.count = min(_number(value, "_count"), MAX_COUNT)
            continue
        if key == "_offset":
            query.offset = _number(value, "_offset")
            continue
        if key == "_total":
            # Without _total=accurate the count stops at directory_sql.COUNT_CAP: past
            # it Bundle.total is left out (FHIR allows it), the next link still there.
            if value not in ("none", "estimate", "accurate"):
                raise bad("_total must be none, estimate or accurate", "_total")
            query.counted = value != "none"
            query.exact = value == "accurate"
            query.used.append((key, value))
            continue
        if key in ("_include", "_revinclude"):
            supported, chosen = (
                (includes, query.include) if key == "_include" else (revincludes, query.revinclude)
            )
            if value not in supported:
                allowed = ", ".join(supported) or "none"
                raise bad(
                    f"{key}={value} is not supported here (supported: {allowed})",
                    key,
                    "not-supported",
                )
            if value not in chosen:
                chosen.append(value)
                query.used.append((key, value))
            continue
        if key == "_format":
            if value.split(";")[0].strip().lower() not in _JSON_FORMATS:
                raise ApiError(406, f"_format={value}: this server speaks FHIR JSON only")
            continue
        if name not in types:
            if lenient:
                continue
            raise bad(
                f"unknown search parameter {key!r} (this server handles searches strictly; "
                "send 'Prefer: handling=lenient' to have unknown parameters ignored)",
                key,
                "not-supported",
            )
        if modifier and modifier not in MODIFIERS.get(types[name], set()):
            raise bad(f"modifier :{modifier} is not supported on {name}", key, "not-supported")
        if not value:
            continue  # an empty parameter is ignored (FHIR R4 search, 3.1.1.5)
        query.clauses.setdefault(name, []).append(Clause(modifier or None, tuple(split_or(value))))
        query.used.append((key, value))
    return query


def token(value: str) -> tuple[str | None, str | None]:
    """(system, code) of "system|code"; None for 'any', "" for 'no system' ("|code")."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    return system, (code or None)


def reference_id(value: str, resource_type: str) -> str | None:
    """The id a reference parameter names, if it names a `resource_type` (else None)."""
    value = value.strip().rstrip("/")
    parts = value.split("/")
    if len(parts) == 1:
        return parts[0]
    if parts[-2] != resource_type:
        return None
    return parts[-1]


@dataclass(frozen=True)
class Near:
    latitude: float
    longitude: float
    miles: float


def near(value: str, name: str) -> Near:
    """FHIR R4's `near=[latitude]|[longitude]|[distance]|[units]` (units default to km,
    as R4 says; a distance left out means 25 miles)."""
    parts = value.split("|")
    if not 2 <= len(parts) <= 4:
        raise bad(f"{name} must be latitude|longitude|distance|units (got {value!r})", name)
    try:
        lat, lon = float(parts[0]), float(parts[1])
        distance = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError:
        raise bad(f"{name}: latitude, longitude and distance must be numbers", name) from None
    if not all(math.isfinite(x) for x in (lat, lon)) or not (
        -90 <= lat <= 90 and -180 <= lon <= 180
    ):
        raise bad(f"{name}: latitude must be within ±90 and longitude within ±180", name)
    if distance is None:
        return Near(lat, lon, DEFAULT_NEAR_MILES)
    units = parts[3] if len(parts) > 3 and parts[3] else "km"
    if units not in MILES:
        raise bad(f"{name}: units must be one of {', '.join(MILES)} (got {units!r})", name)
    miles = distance * MILES[units]
    if not math.isfinite(distance) or distance <= 0 or miles > MAX_NEAR_MILES:
        raise bad(f"{name}: the distance must be above 0 and at most {MAX_NEAR_MILES} miles", name)
    return Near(lat, lon, miles)


def one_near(query: Query, name: str) -> Near | None:
    clauses = query.all(name)
    if not clauses:
        return None
    if len(clauses) > 1 or len(clauses[0].values) > 1:
        raise bad(f"{name} takes one point (no commas, not repeated)", name)
    return near(clauses[0].values[0], name)
