"""What applying one member of an 834 works with: the set's context (`SetContext`), the
member's outcome (`MemberOutcome`), and refusals that point at the segment at fault.

A member is refused by raising `Rejected` with a `Problem` naming the segment and element
that held the refused value (`reject`, `problem_at`); `refusals_at` turns the enrollment
services' own refusals into such a problem, at the segment the refused value came from.
openhmo.enrollment.maintenance applies the members; maintenance_match and
maintenance_types are its parts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from openhmo.enrollment.service import EnrollmentError
from openhmo.interop.x12.enrollment834 import Header834, MemberMaintenance
from openhmo.interop.x12.envelope import Problem, Source
from openhmo.interop.x12.rules834 import MAINTENANCE_REASONS

# HD05 coverage levels as our coverage tiers, to say where the sponsor's disagrees.
LEVEL_TIERS = {
    "EMP": "self_only",
    "IND": "self_only",
    "ESP": "self_plus_spouse",
    "ECH": "self_plus_children",
    "FAM": "family",
}


@dataclass(slots=True)
class MemberOutcome:
    """What became of one member loop: applied (what), compared, or rejected (why, where)."""

    set_control: str
    position: int  # INS's position in its transaction set
    line: int
    maintenance: str
    subscriber_id: str
    name: str
    status: str = "applied"  # applied | compared | rejected
    member_number: str | None = None
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self, source: str) -> dict[str, Any]:
        return {
            "member": self.member_number or f"REF*0F {self.subscriber_id} {self.name}".strip(),
            "set": self.set_control,
            "position": self.position,
            "maintenance": self.maintenance,
            "status": self.status,
            "applied": self.applied,
            "notes": self.notes,
            "reasons": [p.describe(source) for p in self.problems],
        }


class Rejected(Exception):
    """A member refused: carries the Problem that says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


@dataclass
class SetContext:
    """One transaction set being applied: who sent it and how to apply it."""

    session: Session
    actor: str
    plan_map: Mapping[str, str | None]
    header: Header834
    day: date  # BGN03: the default effective date of a change
    compare_only: bool
    tier_checks: list[tuple[MemberOutcome, int, str]] = field(default_factory=list)

    def reason(self, record: MemberMaintenance) -> str:
        h = self.header
        sponsor = h.sponsor_name or h.sponsor_id or "the sponsor"
        said = MAINTENANCE_REASONS.get(record.reason)
        return f"834 {record.maintenance} from {sponsor} ({h.reference})" + (
            f": {said}" if said else ""
        )


def problem_at(record: MemberMaintenance, where: Source | str | None, reason: str) -> Problem:
    """The member's problem at `where` (a source, or the name of one of the record's); at
    the member's INS when there is none."""
    src = record.sources.get(where) if isinstance(where, str) else where
    if src is None:
        return Problem(
            reason, "INS", record.position, record.ordinal, record.line, "8", loop="2000"
        )
    return src.problem(reason)


def reject(record: MemberMaintenance, where: Source | str | None, reason: str) -> Rejected:
    """The refusal to raise: the member's problem at `where` (see `problem_at`)."""
    return Rejected(problem_at(record, where, reason))


def why(exc: Exception) -> str:
    """An enrollment service's or pydantic's refusal, in words."""
    if isinstance(exc, EnrollmentError):
        return exc.reason
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


@contextmanager
def refusals_at(record: MemberMaintenance, where: Source | None) -> Iterator[None]:
    """Turn the services' refusals into the member's problem at the segment that caused it."""
    try:
        yield
    except (ValueError, LookupError) as exc:  # EnrollmentError, UnknownPlan, InvalidNpi, pydantic
        reason = why(exc)
        if any(word in reason for word in ("ZIP", "address", "service area")):
            where = record.sources.get("zip_code") or record.sources.get("address") or where
        elif "younger than" in reason or "born after" in reason:
            where = record.sources.get("birth_date") or where
        raise reject(record, where, reason) from None
