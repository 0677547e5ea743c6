"""The 277CA claim acknowledgment (005010X214): which claims of an 837 we took, and why
not the others.

The hierarchy is the guide's: the payer (HL 20, information source), the submitter
(HL 21, information receiver) with the counts and amounts accepted and rejected, each
billing provider (HL 19) and under it each claim's patient (HL PT) with the claim's
status: STC A2:20 (accepted for processing) with our claim control number in REF*1K, or
A3/A7 with the claim status code and entity of the first reason, further reasons in
STC10 and STC11, and the reason in words in STC12.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openhmo.interop.x12.intake837 import Rejection
from openhmo.interop.x12.model837 import Claim837, Header837
from openhmo.interop.x12.writer import TransactionSet, amount, cents, composite

VERSION = "005010X214"


@dataclass(slots=True)
class Outcome:
    """One claim's fate: our claim control number when accepted, else its rejection."""

    claim: Claim837
    claim_id: str | None = None
    rejection: Rejection | None = None


@dataclass(frozen=True, slots=True)
class Payer:
    name: str
    identifier: str


def _cents(text: str) -> int:
    return cents(text) or 0


def _text(text: str, limit: int = 264) -> str:
    return "".join(c for c in text if c not in "*~:^\r\n")[:limit].strip()


def _valid(day: str | None) -> str | None:
    try:
        return day if day and datetime.strptime(day, "%Y%m%d") else None
    except ValueError:
        return None


def _range(claim: Claim837) -> tuple[str, str] | None:
    start, end = _valid(claim.service_from), _valid(claim.service_to)
    if not start:
        return None
    return ("D8", start) if not end or end == start else ("RD8", f"{start}-{end}")


def write(
    ts: TransactionSet,
    *,
    header: Header837,
    outcomes: list[Outcome],
    payer: Payer,
    received: datetime,
    processed: datetime,
    reference: str,
) -> None:
    """Fill `ts` (an ST 277 of version 005010X214) with the acknowledgment of one 837."""
    day = processed.strftime("%Y%m%d")
    ts.add("BHT", "0085", "08", reference, day, processed.strftime("%H%M"), "TH")
    ts.add("HL", 1, None, 20, 1)
    ts.add("NM1", "AY", 2, _text(payer.name, 60), None, None, None, None, "46", payer.identifier)
    ts.add("TRN", 1, reference)
    ts.add("DTP", "050", "D8", received.strftime("%Y%m%d"))
    ts.add("DTP", "009", "D8", day)
    ts.add("HL", 2, 1, 21, 1)
    ts.add(
        "NM1",
        "41",
        2,
        _text(header.submitter_name or "SUBMITTER", 60),
        None,
        None,
        None,
        None,
        "46",
        header.submitter_id or "UNKNOWN",
    )
    ts.add("TRN", 2, header.reference or reference)
    _totals(ts, outcomes, day, ("90", "AA"))
    hl = 2
    providers: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        providers.setdefault((o.claim.billing_npi or "", o.claim.billing_name), []).append(o)
    for (npi, name), group in providers.items():
        hl += 1
        parent = hl
        ts.add("HL", hl, 2, 19, 1)
        if npi:
            ts.add("NM1", "85", 2, _text(name or "PROVIDER", 60), None, None, None, None, "XX", npi)
        else:
            ts.add("NM1", "85", 2, _text(name or "PROVIDER", 60))
        ts.add("TRN", 1, "0")
        _totals(ts, group, None, ("QA", "QC"))
        for o in group:
            hl += 1
            _claim(ts, o, hl, parent, day)


def _totals(
    ts: TransactionSet, outcomes: list[Outcome], day: str | None, quantities: tuple[str, str]
) -> None:
    """The submitter's or a billing provider's STC (the claims' total charge), then how many
    claims were accepted and rejected (QTY01 `quantities`) and what they charge (AMT)."""
    ok = [o for o in outcomes if o.rejection is None]
    bad = [o for o in outcomes if o.rejection is not None]
    total = sum(_cents(o.claim.total_charge) for o in outcomes)
    ts.add("STC", composite("A1", "19", "PR"), day, "WQ", amount(total))
    if ok:
        ts.add("QTY", quantities[0], len(ok))
    if bad:
        ts.add("QTY", quantities[1], len(bad))
    if ok:
        ts.add("AMT", "YU", amount(sum(_cents(o.claim.total_charge) for o in ok)))
    if bad:
        ts.add("AMT", "YY", amount(sum(_cents(o.claim.total_charge) for o in bad)))


def _claim(ts: TransactionSet, o: Outcome, hl: int, parent: int, day: str) -> None:
    claim = o.claim
    ts.add("HL", hl, parent, "PT")
    person = claim.patient or claim.subscriber
    last = _text(person.last_name if person else "UNKNOWN", 60) or "UNKNOWN"
    first = _text(person.first_name, 35) if person else None
    if claim.subscriber_id:
        ts.add("NM1", "QC", 1, last, first, None, None, None, "MI", _text(claim.subscriber_id, 80))
    else:
        ts.add("NM1", "QC", 1, last, first)
    ts.add("TRN", 2, _text(claim.patient_control_number, 50) or "0")
    charge = amount(_cents(claim.total_charge))
    if o.rejection is None:
        ts.add("STC", composite("A2", "20", "PR"), day, "WQ", charge)
        ts.add("REF", "1K", o.claim_id)
    else:
        r = o.rejection
        # STC12 carries the reasons in words; STC05-STC11 stay empty.
        ts.add(
            "STC",
            composite(r.category, r.status, r.entity),
            day,
            "U",
            charge,
            *([None] * 7),
            _text(r.reason),
        )
    # DTP*472 is required; a claim whose every service date is unreadable (the reason it
    # was rejected) gets the day we processed it.
    period = _range(claim) or ("D8", day)
    ts.add("DTP", "472", period[0], period[1])
