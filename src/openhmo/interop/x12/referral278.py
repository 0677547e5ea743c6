"""278 referral requests (005010X217), decided by our referral rules and answered with a
278 response: the processor of `openhmo x12 ingest` for the 278.

Three parts, kept apart so that reading and writing are tested without a database:

- `request278`: the reader of a 278 request set (`ReviewReader`), the request as read
  (`Request278`) with where each value came from and the problems of each loop;
- `response278`: pure, the response (`write_278`) from the request and a `Decision`;
- `decide278`: the database, the request decided and stored as our referral (`decide`).

`Processor` ties them together for each set and records what became of the request in
the file's report. The public names of the three parts (`decide`, `write_278` ...) are
importable from here, as they were when this module held them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from openhmo.config import plan_identity
from openhmo.interop.x12.answers import first_trace
from openhmo.interop.x12.decide278 import decide
from openhmo.interop.x12.envelope import TransactionSet
from openhmo.interop.x12.request278 import VERSION, Request278, ReviewReader
from openhmo.interop.x12.response278 import Decision, write_278
from openhmo.interop.x12.syntax import Delimiters
from openhmo.interop.x12.writer import TransactionSet as OutSet

if TYPE_CHECKING:
    from openhmo.interop.x12.ingest import SetReport

__all__ = [
    "VERSION",
    "Decision",
    "Processor",
    "Request278",
    "ReviewReader",
    "decide",
    "processor",
    "write_278",
]


class Processor:
    """Reads 278 referral requests and answers each with a 278 response (ingest.SetProcessor)."""

    code = "278"
    answer_code = "278"
    answer_version = VERSION
    answer_functional_id = "HI"

    def reader(self, ts: TransactionSet, delimiters: Delimiters) -> ReviewReader:
        return ReviewReader(ts, delimiters)

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
        request: Request278 | None = ts.result
        if request is None or request.rejects_set:
            return
        decision = decide(session, request, actor=actor, today=now.date())
        entry: dict[str, Any] = {
            "trace": first_trace(request.traces),
            "member": request.subscriber.get(9) or None,
        }
        if decision.referral is not None:
            referral = decision.referral
            report.applied.append(
                entry
                | {
                    "action": decision.action,
                    "referral_number": referral.referral_number,
                    "status": referral.status,
                    "visits": referral.visits,
                    "valid_from": referral.valid_from.isoformat(),
                    "valid_to": referral.valid_to.isoformat(),
                }
            )
        else:
            report.refuse(entry, decision.status, decision.problems, source)
        if answer is not None:
            info = plan_identity()
            write_278(
                answer, request, decision, payer_name=info.name, payer_id=info.payer_id, now=now
            )


def processor() -> Processor:
    return Processor()
