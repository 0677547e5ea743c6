"""270 eligibility and benefit inquiries (005010X279A1), answered with a 271: the
processor of `openhmo x12 ingest` for the 270.

Three parts, kept apart so that the mapping is tested without a database:

- `inquiry270`: the reader of a 270 set (`InquiryReader`), one `Inquiry` per patient
  asked about;
- `answer271`: pure mapping, the 271's EB loops (`benefit_segments`) and the whole
  answering set (`write_271`) from plain data;
- `lookup270`: the database, the member on the day asked and their benefits (`lookup`).

`Processor` ties them together for each set, records what it answered in the file's
report and audits every disclosure of a member's coverage. The public names of the three
parts (`benefit_segments`, `lookup` ...) are importable from here, as they were when this
module held them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from openhmo.config import plan_identity
from openhmo.history.record import record_access
from openhmo.interop.x12.answer271 import (
    VERSION,
    Answer,
    Benefits,
    CostLine,
    Limit,
    Outcome,
    Pcp,
    Reject,
    benefit_segments,
    write_271,
)
from openhmo.interop.x12.answers import first_trace
from openhmo.interop.x12.envelope import TransactionSet
from openhmo.interop.x12.inquiry270 import SERVICE_TYPES, Inquiry, InquiryReader, Result270
from openhmo.interop.x12.lookup270 import benefits_of, find_patient, lookup
from openhmo.interop.x12.syntax import Delimiters
from openhmo.interop.x12.writer import TransactionSet as OutSet

if TYPE_CHECKING:
    from openhmo.interop.x12.ingest import SetReport

__all__ = [
    "ANSWER_VERSION",
    "SERVICE_TYPES",
    "Answer",
    "Benefits",
    "CostLine",
    "Inquiry",
    "InquiryReader",
    "Limit",
    "Outcome",
    "Pcp",
    "Processor",
    "Reject",
    "Result270",
    "benefit_segments",
    "benefits_of",
    "find_patient",
    "lookup",
    "processor",
    "write_271",
]

ANSWER_VERSION = VERSION


class Processor:
    """Reads 270 sets and answers each with a 271 (see ingest.SetProcessor)."""

    code = "270"
    answer_code = "271"
    answer_version = VERSION
    answer_functional_id = "HB"

    def reader(self, ts: TransactionSet, delimiters: Delimiters) -> InquiryReader:
        return InquiryReader(ts, delimiters)

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
    ) -> None:
        result: Result270 | None = ts.result
        if result is None:
            return
        outcomes: list[Outcome] = []
        for inquiry in result.inquiries:
            day = inquiry.day or now.date()
            outcome = lookup(session, inquiry, day)
            outcomes.append(outcome)
            entry: dict[str, Any] = {
                "trace": first_trace(inquiry.traces),
                "member": inquiry.member_id or None,
                "date": day.isoformat(),
            }
            if isinstance(outcome, Reject):
                status = f"AAA:{outcome.code}:{outcome.follow_up}"
                report.refuse(entry, status, outcome.problems, source)
                continue
            person = outcome.person
            # A 271 discloses the member's coverage to a provider: the read is audited.
            record_access(
                session,
                actor=actor,
                member_id=outcome.member_id,
                purpose=f"eligibility inquiry (X12 270) from {inquiry.receiver.get(9) or '?'}",
                what=f"271 eligibility and benefits on {day.isoformat()}",
            )
            report.applied.append(
                entry
                | {
                    "member_number": person.member_number,
                    "status": "active" if outcome.benefits.active else "inactive",
                    "plan": person.plan_key,
                    "service_types": inquiry.service_types,
                }
            )
        if answer is not None and result.inquiries:
            payer_info = plan_identity()
            write_271(
                answer,
                result,
                outcomes,
                payer_name=payer_info.name,
                payer_id=payer_info.payer_id,
                now=now,
            )


def processor() -> Processor:
    return Processor()
