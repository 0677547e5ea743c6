"""The 278 response (005010X217) to a referral request, written from plain data: the
request as read (`request278.Request278`) and how it is answered (a `Decision`).

HCR*A1 certified in total, with our referral number in HCR02 (the guide's "review
identification number"; its response has no REF*9F), the validity in DTP*102/007/036 and
the visits in HSD*VS; HCR*A4 pended for staff review (0W), with the number; HCR*A3 not
certified, HCR03 the reason (0E the requester is not the member's PCP, 09 the specialist
is out of network); HCR*NA with 0H when the service needs no referral; HCR*CT (contact
us) for what is not decided electronically here (admission reviews, renewals,
cancellations). A request that cannot be processed gets AAA in the loop at fault: 2010B
(51 provider not on file, 43 no NPI), 2010C/2010D (75 not found, 72 no identifier, 71
birth date differs, 77 dependent not found, 78 not covered on the date), 2000E (AF
diagnoses, 57 dates, 15 missing data, 33 input errors), or the specialist's NM1 (51, 45
specialty).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from openhmo.interop.x12.answers import echo_name, echo_traces, header, payer_nm1, text
from openhmo.interop.x12.envelope import Problem
from openhmo.interop.x12.request278 import ENTITIES, PROVIDERS, Request278
from openhmo.interop.x12.writer import TransactionSet as OutSet
from openhmo.interop.x12.writer import d8
from openhmo.referrals.models import Referral

# AAA03 codes of a valid request whose member or provider is not ours (AAA01 Y); the
# others say the request itself is in error (N).
NOT_FOUND = frozenset({"51", "71", "75", "77", "78"})


@dataclass(frozen=True, slots=True)
class Decision:
    """How the request is answered: an HCR action, or an AAA in the loop at fault."""

    action: str | None = None  # HCR01: A1, A3, A4, NA, CT
    number: str | None = None  # HCR02: our referral number
    reason_code: str | None = None  # HCR03
    # AAA: (the loop, 2010B 2010C 2010D 2000E or provider; AAA03; AAA04)
    aaa: tuple[str, str, str] | None = None
    visits: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    member: tuple[str, str, str] | None = None  # our member: number, last, first
    problems: tuple[Problem, ...] = ()
    referral: Referral | None = None

    @property
    def status(self) -> str:
        """For the report: HCR01 and HCR03 (A3:09), or the AAA's codes (AAA:75:C)."""
        if self.action is not None:
            return ":".join(filter(None, (self.action, self.reason_code)))
        return "AAA:" + ":".join(self.aaa[1:]) if self.aaa else ""


def write_278(
    out: OutSet, request: Request278, decision: Decision, *, payer_name: str, payer_id: str, now
) -> None:
    """The 278 response to one request."""

    def aaa(where: str) -> None:
        if decision.aaa is not None and decision.aaa[0] == where:
            _, code, follow_up = decision.aaa
            out.add("AAA", "Y" if code in NOT_FOUND else "N", "", code, follow_up)

    header(out, "0007", request.reference, now)
    out.add("HL", "1", "", "20", "1")
    payer_nm1(out, "X3", payer_name, payer_id)
    out.add("HL", "2", "1", "21", "1")
    requester = request.requester
    entity = requester.get(1) if requester.get(1) in ENTITIES["21"] else "1P"
    out.add(*echo_name(requester, entity, "12", ("XX", "24", "34", "46", "PI", "XV")))
    aaa("2010B")
    out.add("HL", "3", "2", "22", "1")
    member = decision.member
    if member is not None and request.dependent is None:
        number, last, first = member
        out.add("NM1", "IL", "1", text(last, 60), text(first, 35), "", "", "", "MI", number)
    else:
        out.add(*echo_name(request.subscriber, "IL", "1", ("MI", "II")))
    aaa("2010C")
    hl = 3
    if request.dependent is not None:
        hl += 1
        out.add("HL", hl, hl - 1, "23", "1")
        if member is not None:
            out.add("NM1", "QC", "1", text(member[1], 60), text(member[2], 35))
        else:
            out.add(*echo_name(request.dependent, "QC", "1", ()))
        aaa("2010D")
    out.add("HL", hl + 1, hl, "EV", "0")
    echo_traces(out, request.traces)
    aaa("2000E")
    out.add(*request.um)
    if decision.action is not None:
        out.add("HCR", decision.action, decision.number, decision.reason_code)
    if decision.action == "A1":
        out.add("DTP", "102", "D8", d8(now))
        out.add("DTP", "007", "D8", d8(decision.valid_from))
        out.add("DTP", "036", "D8", d8(decision.valid_to))
        out.add("HSD", "VS", decision.visits)
    for party in request.providers[:1] if request.specialist is None else [request.specialist]:
        entity = party.get(1) if party.get(1) in PROVIDERS else "SJ"
        out.add(*echo_name(party, entity, "12", ("XX", "24", "34", "46")))
        aaa("provider")
