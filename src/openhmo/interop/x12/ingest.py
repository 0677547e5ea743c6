"""`openhmo x12 ingest`: read X12 files, apply what they carry, and answer them.

The shell around the pure readers. For each file: the envelopes are read and every
transaction set goes to its reader (837 claims here; 834, 270 and 278 through the
processors registered in `PROCESSORS`). As each 837 set ends, its claims are matched
to our members, decided by `intake837.decide` and stored in one database transaction
per set (a set whose envelope is broken stores nothing); the file is then answered
with a 999 for syntax and a 277CA for the claims, written next to the report.

A broken claim never stops the others, and a broken file never stops the next file: a
file that is not X12 at all is reported with where and why, and answered with nothing.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from openhmo.claims.intake import ClaimError, submit_claim, submit_claims
from openhmo.config import plan_identity
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.interop.x12 import ack277ca, ack999
from openhmo.interop.x12.claims837 import ClaimsReader
from openhmo.interop.x12.envelope import Problem, TransactionSet, read_file
from openhmo.interop.x12.intake837 import Accepted, Rejection, decide
from openhmo.interop.x12.model837 import Claim837, Header837
from openhmo.interop.x12.writer import Interchange, answering
from openhmo.interop.x12.writer import TransactionSet as OutSet


def payer() -> ack277ca.Payer:
    """Who we are in the acknowledgments and answers (config.plan_identity)."""
    me = plan_identity()
    return ack277ca.Payer(me.name, me.payer_id)


def control_number() -> int:
    """An interchange control number for what we send: the time in tenths of seconds, mod 10^9."""
    return int(time.time() * 10) % 1_000_000_000


@dataclass(slots=True)
class SetReport:
    code: str
    control: str
    status: str  # A, E, R
    problems: list[str] = field(default_factory=list)
    accepted: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)

    def refuse(
        self, entry: dict[str, Any], status: str, problems: Iterable[Problem], source: str
    ) -> None:
        """A claim, inquiry or request refused: `entry` names it; then its status codes and
        every reason, each saying where in `source` (the file) it stands."""
        reasons = [p.describe(source) for p in problems]
        self.rejected.append(entry | {"status": status, "reasons": reasons})


@dataclass(slots=True)
class FileReport:
    source: str
    fatal: str | None = None
    envelope_problems: list[str] = field(default_factory=list)
    sets: list[SetReport] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def claims_accepted(self) -> int:
        return sum(len(s.accepted) for s in self.sets if s.code == "837")

    @property
    def claims_rejected(self) -> int:
        return sum(len(s.rejected) for s in self.sets if s.code == "837")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fatal": self.fatal,
            "envelope_problems": self.envelope_problems,
            "sets": [
                {
                    "transaction": s.code,
                    "control": s.control,
                    "status": s.status,
                    "problems": s.problems,
                    "accepted": s.accepted,
                    "rejected": s.rejected,
                    "applied": s.applied,
                }
                for s in self.sets
            ],
            "outputs": self.outputs,
        }


def resolve_patients(session: Session, claims: list[Claim837]) -> list[str | Problem]:
    """Each claim's patient as our member number, or the problem that says who was not found."""
    numbers = sorted({c.subscriber_id for c in claims if c.subscriber_id})
    found = (
        {
            m.member_number: m
            for m in session.scalars(select(Member).where(Member.member_number.in_(numbers)))
        }
        if numbers
        else {}
    )
    households: dict[int, list[Member]] = {}
    need = sorted(
        {
            found[c.subscriber_id].subscriber_id or found[c.subscriber_id].id
            for c in claims
            if c.patient and c.subscriber_id in found
        }
    )
    if need:
        for m in session.scalars(select(Member).where(Member.subscriber_id.in_(need))):
            households.setdefault(m.subscriber_id, []).append(m)
    out: list[str | Problem] = []

    def where(c: Claim837, key: str) -> tuple:
        source = c.sources.get(key) or c.sources.get("member_number")
        if source is None:
            return ("CLM", c.position, c.ordinal, c.line)
        return (source.segment, source.position, source.ordinal, source.line)

    for c in claims:
        subscriber = found.get(c.subscriber_id or "")
        if subscriber is None:
            out.append(
                Problem(
                    f"subscriber {c.subscriber_id!r} is not a member of this plan",
                    *where(c, "member_number"),
                    "8",
                    9,
                    element_code="7",
                    value=c.subscriber_id,
                )
            )
            continue
        if c.patient is None:
            out.append(subscriber.member_number)
            continue
        family = households.get(subscriber.subscriber_id or subscriber.id, [])
        same_day = [
            m for m in family if c.patient.birth_date and m.birth_date == c.patient.birth_date
        ]
        named = [m for m in same_day if m.first_name.upper() == c.patient.first_name.upper()]
        match = named or (same_day if len(same_day) == 1 else [])
        if len(match) == 1:
            out.append(match[0].member_number)
            continue
        at = where(c, "patient")
        born = c.patient.birth_date.isoformat() if c.patient.birth_date else "no birth date"
        out.append(
            Problem(
                f"patient {c.patient.first_name} {c.patient.last_name} ({born}) "
                f"is not a dependent of subscriber {subscriber.member_number}",
                *at,
                "8",
                3,
                element_code="7",
            )
        )
    return out


def _store(
    session: Session, accepted: list[Accepted], received: datetime, actor: str
) -> list[str | ClaimError]:
    """Store the accepted claims; a claim our intake still refuses comes back as its error."""
    items = [(a.claim_in, received) for a in accepted]
    try:
        with session.begin_nested():
            return [c.claim_id for c in submit_claims(session, items, actor=actor)]
    except ClaimError:
        pass  # one of them is refused: take them one by one, so the others go in
    out: list[str | ClaimError] = []
    for claim_in, at in items:
        try:
            with session.begin_nested():
                out.append(submit_claim(session, claim_in, received_at=at, actor=actor).claim_id)
        except ClaimError as exc:
            out.append(exc)
    return out


@dataclass
class _Claims:
    """Collects an 837 set's claims as they are read (one set at a time in memory)."""

    claims: list[Claim837] = field(default_factory=list)

    def reader(self, ts: TransactionSet, delimiters) -> ClaimsReader:
        self.claims = []
        return ClaimsReader(ts, delimiters, self.claims.append)


class SetProcessor(Protocol):
    """Reads and applies one kind of transaction set other than the 837 (834, 270, 278).

    `reader` gives the handler of each set as it starts (see `envelope.SetHandler`);
    `apply` runs in the set's own database transaction once the set ended with a sound
    envelope, records what it did in `report.applied` / `report.rejected`, and may fill
    `answer` (a set of `answer_code` in the response interchange, e.g. a 271) or leave
    it empty (then it is dropped).
    """

    code: str
    answer_code: str | None
    answer_version: str | None
    answer_functional_id: str | None

    def reader(self, ts: TransactionSet, delimiters) -> Any: ...

    def apply(
        self,
        session: Session,
        ts: TransactionSet,
        report: SetReport,
        answer: OutSet | None,
        *,
        actor: str,
        now: datetime,
        source: str,
    ) -> None: ...


def registered() -> dict[str, SetProcessor]:
    """The processors of the transactions other than the 837, by transaction code."""
    found: dict[str, SetProcessor] = {}
    for module in PROCESSOR_MODULES:
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # not built yet in this checkout
        processor = imported.processor()
        found[processor.code] = processor
    return found


# Each module has `processor() -> SetProcessor`.
PROCESSOR_MODULES = (
    "openhmo.interop.x12.eligibility270",
    "openhmo.interop.x12.referral278",
    "openhmo.interop.x12.enrollment834_apply",
)


def ingest_file(
    engine: Engine,
    path: Path,
    out_dir: Path,
    *,
    actor: str,
    now: datetime | None = None,
) -> FileReport:
    """Read one file, apply it, and write its acknowledgments and report into `out_dir`."""
    now = now or datetime.now(UTC)
    name = path.name
    report = FileReport(str(path))
    factory = session_factory(engine)
    claims = _Claims()
    control_277 = control_number() + 1
    ack_277: Interchange | None = None
    group_277 = None
    processors = registered()
    handlers: dict[str, Any] = {"837": claims.reader}
    for code, processor in processors.items():
        handlers[code] = processor.reader
    # The answers other than 999 and 277CA (271, 278): one interchange per kind.
    answers: dict[str, tuple[Interchange, Any]] = {}

    def reply(ts: TransactionSet, control: int) -> Interchange:
        """The interchange answering the one `ts` came in."""
        return answering(
            ts.interchange,
            control=control,
            moment=now,
            sender=payer().identifier,
            receiver="SUBMITTER",
        )

    def answer_set(ts: TransactionSet, processor: SetProcessor) -> OutSet | None:
        if not processor.answer_code:
            return None
        if processor.answer_code not in answers:
            out = reply(ts, control_number() + 2 + len(answers))
            group = out.new_group(
                processor.answer_functional_id,
                processor.answer_version,
                sender=ts.group.receiver[:15] if len(ts.group.receiver) >= 2 else None,
                receiver=ts.group.sender[:15] if len(ts.group.sender) >= 2 else None,
            )
            answers[processor.answer_code] = (out, group)
        return answers[processor.answer_code][1].new_set(
            processor.answer_code, processor.answer_version
        )

    def on_set(ts: TransactionSet) -> None:
        nonlocal ack_277, group_277
        set_report = SetReport(
            ts.code,
            ts.control,
            ts.status,
            [p.describe(name) for p in ts.problems] + [r for _, r in ts.set_problems],
        )
        report.sets.append(set_report)
        if ts.status == "R":
            return
        if ts.code in processors:
            processor = processors[ts.code]
            answer = answer_set(ts, processor)
            with factory() as session, session.begin():
                processor.apply(session, ts, set_report, answer, actor=actor, now=now, source=name)
            if answer is not None and not answer.segments:
                answers[processor.answer_code][1].sets.remove(answer)
            return
        if ts.code != "837":
            return
        read = claims.claims
        with factory() as session, session.begin():
            patients = resolve_patients(session, read)
            decided = [
                decide(c, p, submitter=ts.interchange.sender)
                for c, p in zip(read, patients, strict=True)
            ]
            accepted = [d for d in decided if isinstance(d, Accepted)]
            stored = iter(_store(session, accepted, now, actor) if accepted else [])
            outcomes: list[ack277ca.Outcome] = []
            for d in decided:
                if isinstance(d, Rejection):
                    outcomes.append(ack277ca.Outcome(d.claim, rejection=d))
                    continue
                result = next(stored)
                if isinstance(result, ClaimError):
                    field_name = result.field or "claim"
                    status = "464" if field_name == "replaces_claim_id" else "21"
                    source = d.claim.sources.get(field_name)
                    at = (
                        (
                            source.segment,
                            source.position,
                            source.ordinal,
                            source.line,
                            "8",
                            source.element,
                        )
                        if source
                        else ("CLM", d.claim.position, d.claim.ordinal, d.claim.line, "8", None)
                    )
                    rejection = Rejection(d.claim, [Problem(str(result), *at)], "A7", status)
                    outcomes.append(ack277ca.Outcome(d.claim, rejection=rejection))
                else:
                    outcomes.append(ack277ca.Outcome(d.claim, claim_id=result))
        for o in outcomes:
            if o.rejection is None:
                set_report.accepted.append(
                    {
                        "patient_control_number": o.claim.patient_control_number,
                        "claim_id": o.claim_id,
                    }
                )
            else:
                set_report.refuse(
                    {"patient_control_number": o.claim.patient_control_number},
                    f"{o.rejection.category}:{o.rejection.status}",
                    o.rejection.problems,
                    name,
                )
        if group_277 is None:
            # The first 837 set's interchange is the one the 277CA answers.
            ack_277 = reply(ts, control_277)
            group_277 = ack_277.new_group(
                "HN", ack277ca.VERSION, receiver=ts.group.sender[:15] or None
            )
        out = group_277.new_set("277", ack277ca.VERSION)
        header = ts.result.header if ts.result else None
        ack277ca.write(
            out,
            header=header or Header837(),
            outcomes=outcomes,
            payer=payer(),
            received=now,
            processed=now,
            reference=f"{ts.control}",
        )

    read = read_file(path, handlers, on_set=on_set, name=name)
    if read.fatal is not None:
        report.fatal = str(read.fatal)
    for ic in read.interchanges:
        report.envelope_problems.extend(
            f"{name}: interchange {ic.control}: {reason}" for _, reason in ic.problems
        )
        for group in ic.groups:
            report.envelope_problems.extend(
                f"{name}: group {group.control}: {reason}" for _, reason in group.problems
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    for kind, text in ack999.acknowledge(read, moment=now, control=control_number()):
        n = seen[kind] = seen.get(kind, -1) + 1
        target = out_dir / (f"{name}.{kind}" if n == 0 else f"{name}.{n}.{kind}")
        target.write_text(text)
        report.outputs.append(str(target))
    if group_277 is not None:
        target = out_dir / f"{name}.277"
        target.write_text(ack_277.render())
        report.outputs.append(str(target))
    for code, (interchange, group) in answers.items():
        if not group.sets:
            continue
        target = out_dir / f"{name}.{code}"
        target.write_text(interchange.render())
        report.outputs.append(str(target))
    target = out_dir / f"{name}.report.json"
    target.write_text(json.dumps(report.as_dict(), indent=2))
    report.outputs.append(str(target))
    return report
