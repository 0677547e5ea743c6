"""Apply an 834's member maintenance to OpenHMO's enrollment, and say what became of each member.

The database shell around openhmo.interop.x12.enrollment834 (which reads; nothing there
writes). Members are applied in the order received, each in its own savepoint: a member
the rules refuse is rolled back and reported with the segment position, element and
reason, and the members after it still go through. Every change is in the change
history with who sent it and why. The caller commits. `ingest_834` reads a file and
applies it; `EnrollmentSets` is the same as a processor of openhmo.interop.x12.ingest.

Its parts: `maintenance_match` finds who and which plan a member loop names (the rules of
who is who are there), `maintenance_types` applies each maintenance type (021 addition,
001 change, 024 termination, 025 reinstatement, 030 audit: what each does is there), and
`maintenance_context` holds what they share (the set's context, the member's outcome,
refusals that name the segment at fault).

Every member of a file whose BGN08 is 4 (verify) or BGN01 22 (information copy) is
audited as 030 is: compared with our records, nothing written. The coverage tier is not
taken from HD05: when an HD05 of EMP, IND, ESP, ECH or FAM disagrees with the tier at the
end of the set, the subscriber's outcome says so in a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import yaml
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openhmo.enrollment.maintenance_context import (
    LEVEL_TIERS,
    MemberOutcome,
    Rejected,
    SetContext,
    problem_at,
    why,
)
from openhmo.enrollment.maintenance_types import ACTIONS
from openhmo.enrollment.models import Coverage
from openhmo.interop.x12.enrollment834 import EnrollmentReader, Header834, MemberMaintenance
from openhmo.interop.x12.envelope import FileRead, TransactionSet, read_file


@dataclass(slots=True)
class MaintenanceReport:
    source: str
    outcomes: list[MemberOutcome] = field(default_factory=list)
    set_problems: list[str] = field(default_factory=list)  # sets not applied, and why

    def with_status(self, status: str) -> list[MemberOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "set_problems": self.set_problems,
            "members": [o.as_dict(self.source) for o in self.outcomes],
        }


# -- applying sets and files ------------------------------------------------------------
def _apply_member(session: Session, record: MemberMaintenance, ctx: SetContext) -> MemberOutcome:
    """One member, in its own savepoint: applied, compared, or rejected and rolled back."""
    out = MemberOutcome(
        record.set_control,
        record.position,
        record.line,
        record.maintenance,
        record.subscriber_id,
        record.name,
    )
    if record.problems:
        out.status, out.problems = "rejected", list(record.problems)
        return out
    action = ACTIONS["audit" if ctx.compare_only else record.maintenance]
    try:
        with session.begin_nested():
            action(record, ctx, out)
    except Rejected as exc:
        out.status, out.problems, out.applied = "rejected", [exc.problem], []
    except (ValueError, LookupError) as exc:  # a refusal from outside `refusals_at`: at the INS
        out.status, out.problems, out.applied = "rejected", [problem_at(record, None, why(exc))], []
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        out.problems = [problem_at(record, None, f"the database refused the change: {detail}")]
        out.status, out.applied = "rejected", []
    return out


def apply_set(
    session: Session,
    ts: TransactionSet,
    records: list[MemberMaintenance],
    *,
    actor: str,
    plan_map: Mapping[str, str | None] | None = None,
) -> list[MemberOutcome]:
    """Apply one accepted 834 set's members, in order; the caller commits."""
    header = ts.result.header if ts.result is not None else Header834()
    ctx = SetContext(
        session,
        actor,
        plan_map or {},
        header,
        header.created or date.today(),
        compare_only=header.action == "4" or header.purpose == "22",
    )
    outcomes = [_apply_member(session, record, ctx) for record in records]
    for out, coverage_id, level in ctx.tier_checks:
        coverage = session.get(Coverage, coverage_id)
        if coverage is not None and out.status == "applied" and coverage.tier != LEVEL_TIERS[level]:
            out.notes.append(
                f"HD05 {level} is {LEVEL_TIERS[level]}; OpenHMO's tier, from who is covered, "
                f"is {coverage.tier}"
            )
    return outcomes


class EnrollmentSets:
    """The 834 processor of openhmo.interop.x12.ingest (its `SetProcessor`): a reader for
    each set as it starts, and `apply` once the set ended with a sound envelope."""

    code = "834"
    answer_code: str | None = None  # an 834 is answered by the 999 alone
    answer_version: str | None = None
    answer_functional_id: str | None = None

    def __init__(self, plan_map: Mapping[str, str | None] | None = None) -> None:
        self.plan_map = plan_map
        self.records: list[MemberMaintenance] = []

    def reader(self, ts: TransactionSet, delimiters) -> EnrollmentReader:
        self.records = []
        return EnrollmentReader(ts, delimiters, self.records.append)

    def apply(
        self,
        session: Session,
        ts: TransactionSet,
        report: Any,
        answer: Any = None,
        *,
        actor: str,
        now: Any = None,
        source: str = "",
    ) -> None:
        """Apply the set's members; each outcome goes to `report.applied` or `.rejected`."""
        for out in apply_set(session, ts, self.records, actor=actor, plan_map=self.plan_map):
            target = report.rejected if out.status == "rejected" else report.applied
            target.append(out.as_dict(source))


def ingest_834(
    session: Session,
    source: str | Path | IO[bytes],
    *,
    actor: str,
    plan_map: Mapping[str, str | None] | None = None,
    name: str | None = None,
) -> tuple[FileRead, MaintenanceReport]:
    """Read an 834 file and apply its accepted sets in the caller's transaction."""
    label = name or (
        str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
    )
    report = MaintenanceReport(label)
    sets = EnrollmentSets()

    def on_set(ts: TransactionSet) -> None:
        if ts.status == "R" or ts.code != "834":
            problems = [r for _, r in ts.set_problems] + [p.describe(label) for p in ts.problems]
            report.set_problems.append(
                f"transaction set {ts.code} {ts.control}: not applied: {'; '.join(problems)}"
            )
            return
        report.outcomes += apply_set(session, ts, sets.records, actor=actor, plan_map=plan_map)

    read = read_file(source, {"834": sets.reader}, on_set=on_set, name=name)
    return read, report


def load_plan_map(path: str | Path) -> dict[str, str | None]:
    """A plan map from YAML: `sponsor code: plan key`, or `code: null` for a line not ours.

    Everything is read as text (YAML's base loader): a code such as 064703 stays 064703,
    where the usual loader would read an octal number.
    """
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
    if not isinstance(data, dict) or any(not isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: a plan map is a mapping of 834 codes to plan keys")
    return {k: None if v in ("", "~", "null", "Null", "NULL") else v for k, v in data.items()}
