"""Patient Access search parameters as SQL conditions (FHIR R4 search semantics).

Each parameter given more than once must hold every time (AND); a comma inside one
value means any of its parts (OR). Dates take FHIR's prefixes (eq, ne, gt, ge, lt, le)
over the range a partial date stands for (2026 is the whole year). Anything not
understood is a 400 naming the parameter, never silently ignored.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, false, func, not_, or_, select

from openhmo.api.errors import ApiError
from openhmo.claims.models import REPLACED, VOIDED, Claim, ClaimLine, LineDecision
from openhmo.enrollment.models import Coverage, Member, MemberCoverage
from openhmo.interop.fhir.common import CLAIM_SYSTEM, MEMBER_SYSTEM
from openhmo.interop.fhir.eob import CLAIM_TYPE
from openhmo.interop.fhir.patient_access import parse_coverage_id

_COMMON = {"_count", "_offset", "_format"}
PATIENT_PARAMS = _COMMON | {"_id", "identifier", "name", "family", "given", "birthdate", "gender"}
COVERAGE_PARAMS = _COMMON | {"_id", "patient", "beneficiary", "subscriber", "status"}
EOB_PARAMS = _COMMON | {
    "_id",
    "identifier",
    "patient",
    "type",
    "status",
    "service-date",
    "_lastUpdated",
    "_include",
}
_GENDER = {"female": "F", "male": "M", "unknown": "U"}
_PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le")
_INCLUDES = {"patient", "coverage", "insurer"}


def bad(name: str, message: str, code: str = "invalid") -> ApiError:
    return ApiError(400, f"{name}: {message}", code=code, expression=[name])


def check_known(params: list[tuple[str, str]], resource_type: str, known: set[str]) -> None:
    unknown = sorted({k for k, _ in params} - known)
    if unknown:
        raise bad(unknown[0], f"not a search parameter of {resource_type} here", "not-supported")


def _values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _token(value: str, system: str) -> str | None:
    """The code of a token `[system|]code`; None when it names another system."""
    if "|" not in value:
        return value
    given, _, code = value.partition("|")
    return code if given in ("", system) else None


def _any(clauses: list[Any]) -> Any:
    return or_(*clauses) if clauses else false()


def reference_id(value: str, resource_type: str) -> str | None:
    """The id in `Type/id`, a full URL ending so, or a bare id; None for another type."""
    if "/" not in value:
        return value
    kind, _, rest = value.rstrip("/").rpartition("/")
    return rest if kind.rpartition("/")[2] == resource_type else None


def _members(value: str) -> list[str]:
    return [m for m in (reference_id(v, "Patient") for v in _values(value)) if m]


def date_range(name: str, text: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) of a FHIR date search value: the end is exclusive, both UTC."""
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    body = text[2:] if text[:2] in _PREFIXES else text
    try:
        if len(body) == 4:
            start = datetime(int(body), 1, 1, tzinfo=UTC)
            return prefix, start, start.replace(year=start.year + 1)
        if len(body) == 7:
            year, month = int(body[:4]), int(body[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return prefix, start, start + timedelta(days=days)
        if len(body) == 10:
            start = datetime.combine(date.fromisoformat(body), time.min, tzinfo=UTC)
            return prefix, start, start + timedelta(days=1)
        moment = datetime.fromisoformat(body.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return prefix, moment, moment + timedelta(microseconds=1)
    except ValueError as exc:
        raise bad(name, f"{text!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD)") from exc


def range_clause(prefix: str, first, last, start, end) -> Any:
    """Does the target range [first, last] match the searched range [start, end)?"""
    inside = and_(first >= start, last < end)
    return {
        "eq": inside,
        "ne": not_(inside),
        "gt": last >= end,
        "lt": first < start,
        "ge": last >= start,
        "le": first < end,
    }[prefix]


def _date_clause(name: str, value: str, first, last, as_date: bool) -> Any:
    prefix, start, end = date_range(name, value)
    if as_date:
        # A date column: the days the searched range touches.
        start_day = start.date()
        end_day = end.date() if end.time() == time.min else end.date() + timedelta(days=1)
        return range_clause(prefix, first, last, start_day, end_day)
    return range_clause(prefix, first, last, start, end)


def _name(column, value: str) -> Any:
    return func.lower(column).startswith(value.lower(), autoescape=True)


def patient_clauses(params: list[tuple[str, str]]) -> list[Any]:
    out: list[Any] = []
    for key, value in params:
        values = _values(value)
        if key == "_id":
            out.append(Member.member_number.in_(values))
        elif key == "identifier":
            codes = [c for c in (_token(v, MEMBER_SYSTEM) for v in values) if c]
            out.append(Member.member_number.in_(codes))
        elif key == "name":
            full = func.lower(Member.first_name + " " + Member.last_name)
            out.append(
                _any(
                    [
                        or_(
                            _name(Member.first_name, v),
                            _name(Member.last_name, v),
                            full.startswith(v.lower(), autoescape=True),
                        )
                        for v in values
                    ]
                )
            )
        elif key in ("family", "given"):
            column = Member.last_name if key == "family" else Member.first_name
            out.append(_any([_name(column, v) for v in values]))
        elif key == "gender":
            unknown = [v for v in values if v not in _GENDER]
            if unknown:
                raise bad(key, f"{unknown[0]!r} is not female, male or unknown")
            out.append(Member.sex.in_([_GENDER[v] for v in values]))
        elif key == "birthdate":
            day = Member.birth_date
            out.append(_any([_date_clause(key, v, day, day, True) for v in values]))
    return out


def coverage_clauses(params: list[tuple[str, str]], today: date) -> list[Any]:
    out: list[Any] = []
    for key, value in params:
        if key == "_id":
            keys = [k for k in (parse_coverage_id(v) for v in _values(value)) if k]
            out.append(
                _any(
                    [
                        and_(MemberCoverage.coverage_id == k[0], Member.member_number == k[1])
                        for k in keys
                    ]
                )
            )
        elif key in ("patient", "beneficiary"):
            out.append(Member.member_number.in_(_members(value)))
        elif key == "subscriber":
            subscribers = select(Member.id).where(Member.member_number.in_(_members(value)))
            out.append(Coverage.subscriber_id.in_(subscribers))
        elif key == "status":
            ended = and_(
                MemberCoverage.termination_date.is_not(None),
                MemberCoverage.termination_date < today,
            )
            wanted = set(_values(value))
            if not wanted <= {"active", "cancelled"}:
                raise bad(key, "this server's Coverages are active or cancelled")
            out.append(
                or_(*(ended if s == "cancelled" else not_(ended) for s in wanted))
                if wanted
                else false()
            )
    return out


def _last_decided():
    latest = (
        select(func.max(LineDecision.decided_at))
        .where(LineDecision.claim_id == Claim.id, LineDecision.superseded_at.is_(None))
        .correlate(Claim)
        .scalar_subquery()
    )
    return func.coalesce(latest, Claim.created_at)


def eob_clauses(params: list[tuple[str, str]]) -> list[Any]:
    out: list[Any] = []
    for key, value in params:
        values = _values(value)
        if key == "_id":
            out.append(Claim.claim_id.in_(values))
        elif key == "identifier":
            codes = [c for c in (_token(v, CLAIM_SYSTEM) for v in values) if c]
            out.append(Claim.claim_id.in_(codes))
        elif key == "patient":
            out.append(Claim.member_number.in_(_members(value)))
        elif key == "type":
            codes = [c for c in (_token(v, CLAIM_TYPE) for v in values) if c]
            out.append(Claim.claim_type.in_(codes))
        elif key == "status":
            cancelled = Claim.status.in_((VOIDED, REPLACED))
            wanted = set(values)
            if not wanted <= {"active", "cancelled"}:
                raise bad(key, "this server's ExplanationOfBenefits are active or cancelled")
            out.append(or_(*(cancelled if s == "cancelled" else not_(cancelled) for s in wanted)))
        elif key == "service-date":
            first = select(func.min(ClaimLine.service_date)).where(ClaimLine.claim_id == Claim.id)
            last = select(func.max(ClaimLine.service_date)).where(ClaimLine.claim_id == Claim.id)
            first, last = first.scalar_subquery(), last.scalar_subquery()
            out.append(_any([_date_clause(key, v, first, last, True) for v in values]))
        elif key == "_lastUpdated":
            moment = _last_decided()
            out.append(_any([_date_clause(key, v, moment, moment, False) for v in values]))
    return out


def eob_includes(params: list[tuple[str, str]]) -> set[str]:
    """What `_include` asks for: patient and/or coverage (the insurer is contained)."""
    wanted: set[str] = set()
    for key, value in params:
        if key != "_include":
            continue
        source, _, target = value.partition(":")
        if source != "ExplanationOfBenefit" or (target not in _INCLUDES and target != "*"):
            raise bad(
                key,
                f"{value!r}: this server includes ExplanationOfBenefit:patient, :coverage, "
                ":insurer (contained) or :*",
                "not-supported",
            )
        wanted |= {"patient", "coverage"} if target == "*" else {target}
    return wanted
