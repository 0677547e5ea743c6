"""A claim's current line decisions as a FHIR R4 ClaimResponse (the answer of Claim/$submit).

id and identifier: our claim id. outcome: `complete` when every line is decided,
`partial` when some lines are pended for staff and others decided, `queued` when none
is decided yet (all pended, or not adjudicated); status `cancelled` once a later claim
voided or replaced it. Each item's adjudication gives, in integer cents made exact
decimals: `submitted` (the charge), and for a decided line `eligible` (allowed),
`deductible`, `copay`, `coinsurance`, `benefit` (what the plan pays) and
`memberliability` (what the member owes), the member's shares with their CAS reason
(PR-1, PR-3, PR-2), every other adjustment (the contractual write-off CO-45, a denial)
as a `noncovered` or `discount` amount with its group code, CARC and RARC as reason,
and a denied line's `benefit` (0.00) carries the denial's reason. Categories are HL7's
adjudication codes where it has one, CARIN's C4BBAdjudication otherwise, as the EOB
has them. processNote: each line's explanation from the i18n catalogue, in the caller's
language; disposition: the claim in one sentence from the catalogue.

A Claim rejected before intake (openhmo.interop.fhir.claim: nothing stored) is
answered by `rejected_claim_response`: outcome `error`, one `error` per problem (CARC
16 with the RARC of what is missing, the element in the text), no id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from openhmo.adjudication.explain import explanation_text
from openhmo.config import PlanIdentity
from openhmo.i18n import translate
from openhmo.interop.fhir.claim import CLAIM_TYPE_SYSTEM, MappedClaim
from openhmo.interop.fhir.common import (
    CARC_SYSTEM,
    CLAIM_SYSTEM,
    MEMBER_SYSTEM,
    NPI_SYSTEM,
    PAYER_ID_SYSTEM,
    RARC_SYSTEM,
    cas_reason,
    coding,
    concept,
    money,
)
from openhmo.money import format_money
from openhmo.reference.codes import carc_description

ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJUDICATION = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
BCP47 = "urn:ietf:bcp:47"

# category -> (system, display, LineDecision column), in the order items list them.
AMOUNTS: dict[str, tuple[str, str, str | None]] = {
    "submitted": (ADJUDICATION, "Submitted Amount", "charge_cents"),
    "eligible": (ADJUDICATION, "Eligible Amount", "allowed_cents"),
    "deductible": (ADJUDICATION, "Deductible", "deductible_cents"),
    "copay": (ADJUDICATION, "CoPay", "copay_cents"),
    "coinsurance": (C4BB_ADJUDICATION, "Co-insurance", "coinsurance_cents"),
    "benefit": (ADJUDICATION, "Benefit Amount", "plan_paid_cents"),
    "memberliability": (C4BB_ADJUDICATION, "Member liability", "member_share_cents"),
    "discount": (C4BB_ADJUDICATION, "Discount", None),
    "noncovered": (C4BB_ADJUDICATION, "Noncovered", None),
}
# The member's shares as the engine's adjustments name them (group PR): category -> CARC.
SHARES = {"deductible": "1", "copay": "3", "coinsurance": "2"}
DECIDED = ("paid", "denied")


def instant(moment: datetime) -> str:
    """A FHIR dateTime to the second, in UTC (SQLite gives back naive UTC times)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def insurer(identity: PlanIdentity) -> dict[str, Any]:
    return {
        "identifier": {"system": PAYER_ID_SYSTEM, "value": identity.payer_id},
        "display": identity.name,
    }


def _amount(category: str, cents: int | None, reason: dict | None = None) -> dict[str, Any]:
    system, display, _ = AMOUNTS[category]
    out: dict[str, Any] = {"category": concept(system, category, display)}
    if reason is not None:
        out["reason"] = reason
    out["amount"] = money(cents or 0)
    return out


def _adjudication(line: Any, decision: Any) -> list[dict[str, Any]]:
    out = [_amount("submitted", line.charge_cents)]
    if decision is None or decision.status not in DECIDED:
        return out
    adjustments = list(decision.adjustments or [])
    shares = {
        a["carc"]: a for a in adjustments if a["group"] == "PR" and a["carc"] in ("1", "2", "3")
    }
    out.append(_amount("eligible", decision.allowed_cents))
    for category, carc in SHARES.items():
        found = shares.get(carc)
        cents = getattr(decision, AMOUNTS[category][2])
        out.append(_amount(category, cents, cas_reason(found) if found else None))
    denial = cas_reason(adjustments[-1]) if decision.status == "denied" and adjustments else None
    out.append(_amount("benefit", decision.plan_paid_cents, denial))
    out.append(_amount("memberliability", decision.member_share_cents))
    for a in adjustments:
        if a["group"] == "PR" and a["carc"] in shares:
            continue
        write_off = decision.status == "paid" and a["group"] == "CO"
        kind = "discount" if write_off else "noncovered"
        out.append(_amount(kind, a["amount_cents"], cas_reason(a)))
    return out


def outcome(decisions: list[Any]) -> str:
    statuses = [d.status for d in decisions if d is not None]
    if not statuses or all(s == "pended" for s in statuses):
        return "queued"
    return "partial" if "pended" in statuses or len(statuses) < len(decisions) else "complete"


def _disposition(claim: Any, decisions: list[Any], result: str, language: str) -> str:
    paid_cents = sum(d.plan_paid_cents or 0 for d in decisions if d is not None)
    plan_paid = format_money(paid_cents)
    if claim.frequency_code == "8":
        return translate(
            "claim_response.void",
            language,
            claim_id=claim.claim_id,
            replaces=claim.replaces_claim_id,
        )
    if claim.status in ("voided", "replaced"):
        return translate("claim_response.cancelled", language, claim_id=claim.claim_id)
    if result == "queued":
        return translate("claim_response.queued", language, claim_id=claim.claim_id)
    statuses = [d.status if d is not None else "pended" for d in decisions]
    if result == "partial":
        pended = statuses.count("pended")
        return translate(
            "claim_response.partial",
            language,
            claim_id=claim.claim_id,
            pended=pended,
            plan_paid=plan_paid,
        )
    return translate(
        "claim_response.complete",
        language,
        claim_id=claim.claim_id,
        paid=statuses.count("paid"),
        denied=statuses.count("denied"),
        plan_paid=plan_paid,
    )


def _patient(member_number: str, known: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": f"Patient/{member_number}"} if known else {}
    out["identifier"] = {"system": MEMBER_SYSTEM, "value": member_number}
    return out


def claim_response(
    claim: Any,
    lines: list[Any],
    decisions: dict[int, Any],
    *,
    coverage_id: str | None,
    identity: PlanIdentity,
    language: str,
) -> dict[str, Any]:
    """The ClaimResponse of a stored claim: its lines (by number) and their current decisions."""
    ordered = [decisions.get(line.id) for line in lines]
    result = outcome(ordered)
    decided_at = [d.decided_at for d in ordered if d is not None]
    notes: list[dict[str, Any]] = []
    items = []
    for line, decision in zip(lines, ordered, strict=True):
        item: dict[str, Any] = {"itemSequence": line.line_number}
        if decision is not None and decision.explanation_id:
            text = explanation_text(decision.explanation_id, decision.explanation_params, language)
            notes.append(
                {
                    "number": len(notes) + 1,
                    "type": "display",
                    "text": text,
                    "language": concept(BCP47, language),
                }
            )
            item["noteNumber"] = [len(notes)]
        item["adjudication"] = _adjudication(line, decision)
        items.append(item)
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": claim.claim_id,
        "identifier": [{"system": CLAIM_SYSTEM, "value": claim.claim_id}],
        "status": "cancelled" if claim.status in ("voided", "replaced") else "active",
        "type": concept(CLAIM_TYPE_SYSTEM, claim.claim_type),
        "use": "claim",
        "patient": _patient(claim.member_number, claim.member_id is not None),
        "created": instant(max(decided_at) if decided_at else claim.received_at),
        "insurer": insurer(identity),
        "requestor": {"identifier": {"system": NPI_SYSTEM, "value": claim.billing_npi}},
        "request": {"identifier": {"value": claim.patient_control_number}},
        "outcome": result,
        "disposition": _disposition(claim, ordered, result, language),
        "item": items,
        "total": _totals(lines, ordered),
    }
    if result != "queued":
        paid = sum(d.plan_paid_cents or 0 for d in ordered if d is not None)
        kind = "complete" if result == "complete" else "partial"
        resource["payment"] = {"type": concept(PAYMENT_TYPE, kind), "amount": money(paid)}
    if notes:
        resource["processNote"] = notes
    if coverage_id is not None:
        coverage = {"reference": f"Coverage/{coverage_id}"}
        resource["insurance"] = [{"sequence": 1, "focal": True, "coverage": coverage}]
    return resource


def _totals(lines: list[Any], decisions: list[Any]) -> list[dict[str, Any]]:
    sums: dict[str, int] = {"submitted": sum(line.charge_cents for line in lines)}
    for decision in decisions:
        if decision is None or decision.status not in DECIDED:
            continue
        for category in ("eligible", "deductible", "copay", "coinsurance", "benefit"):
            cents = getattr(decision, AMOUNTS[category][2]) or 0
            sums[category] = sums.get(category, 0) + cents
        liability = decision.member_share_cents or 0
        sums["memberliability"] = sums.get("memberliability", 0) + liability
    return [
        {
            "category": concept(AMOUNTS[c][0], c, AMOUNTS[c][1]),
            "amount": money(sums[c]),
        }
        for c in AMOUNTS
        if c in sums
    ]


def rejected_claim_response(
    mapped: MappedClaim, claim_resource: dict[str, Any], *, identity: PlanIdentity,
    created: datetime, language: str,
) -> dict[str, Any]:  # fmt: skip
    """The answer to a readable Claim that cannot be adjudicated: outcome `error`, not stored."""
    patient = mapped.patient
    if patient.member_number:
        reference: dict[str, Any] = _patient(patient.member_number, known=False)
    else:
        reference = {"display": patient.display or "patient not identified"}
    errors = []
    for problem in mapped.problems:
        codings = [coding(CARC_SYSTEM, "16", carc_description("16") or None)]
        if problem.rarc:
            codings.append(coding(RARC_SYSTEM, problem.rarc))
        error: dict[str, Any] = {}
        if problem.item_sequence is not None:
            error["itemSequence"] = problem.item_sequence
        error["code"] = {"coding": codings, "text": f"{problem.path}: {problem.text}"}
        errors.append(error)
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": claim_resource.get("type") or concept(CLAIM_TYPE_SYSTEM, "professional"),
        "use": "claim",
        "patient": reference,
        "created": instant(created),
        "insurer": insurer(identity),
        "outcome": "error",
        "disposition": translate("claim_response.rejected", language, problems=len(errors)),
        "error": errors,
    }
    identifiers = claim_resource.get("identifier") or []
    if identifiers:
        resource["request"] = {"identifier": identifiers[0]}
    return resource
