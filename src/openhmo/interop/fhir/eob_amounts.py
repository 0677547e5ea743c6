"""The money of an ExplanationOfBenefit: every cent of a line, and the claim's totals.

A line's amounts add up: `submitted` (the charge) = `paidtoprovider` + `memberliability`
+ the line's other adjustments. The member's liability is itemised as `deductible`,
`copay` and `coinsurance`, each with its CAS reason (PR-1, PR-3, PR-2); the other
adjustments are `discount` (a paid line's contractual write-off, CO-45) or `noncovered`
(a denied line's charge, or a balance the member may be billed, PR-45), each with its
group code, CARC and RARC as the adjudication's reason. A denied line also has CARIN's
`denialreason` slice; every line has `benefitpaymentstatus` (in or out of network).
Pended lines carry only what was submitted. Amounts come from the line decision's
integer cents through common.money, never through a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openhmo.interop.fhir.common import (
    cas_reason,
    concept,
    money,
)
from openhmo.interop.fhir.patient_access import CARIN

HL7_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJUDICATION = f"{CARIN}/CodeSystem/C4BBAdjudication"
DISCRIMINATOR = f"{CARIN}/CodeSystem/C4BBAdjudicationDiscriminator"
PAYER_STATUS = f"{CARIN}/CodeSystem/C4BBPayerAdjudicationStatus"
# Amount categories, in the order items and totals list them.
CATEGORIES: dict[str, tuple[str, str]] = {
    "submitted": (HL7_ADJUDICATION, "Submitted Amount"),
    "eligible": (HL7_ADJUDICATION, "Eligible Amount"),
    "deductible": (HL7_ADJUDICATION, "Deductible"),
    "copay": (HL7_ADJUDICATION, "CoPay"),
    "coinsurance": (C4BB_ADJUDICATION, "Co-insurance"),
    "memberliability": (C4BB_ADJUDICATION, "Member liability"),
    "paidtoprovider": (C4BB_ADJUDICATION, "Paid to provider"),
    "discount": (C4BB_ADJUDICATION, "Discount"),
    "noncovered": (C4BB_ADJUDICATION, "Noncovered"),
}
# The member's share of a paid line, as the engine writes it: (column, PR CARC).
MEMBER_SHARE = {
    "deductible": ("deductible_cents", "1"),
    "copay": ("copay_cents", "3"),
    "coinsurance": ("coinsurance_cents", "2"),
}
_SHARE = {carc for _, carc in MEMBER_SHARE.values()}
_NETWORK = {"in_network": "innetwork", "out_of_network": "outofnetwork"}
_NETWORK_DISPLAY = {"innetwork": "In Network", "outofnetwork": "Out Of Network", "other": "Other"}
_DECIDED = ("paid", "denied")


def _amount(category: str, cents: int, reason: dict | None = None) -> dict[str, Any]:
    system, display = CATEGORIES[category]
    out: dict[str, Any] = {"category": concept(system, category, display)}
    if reason is not None:
        out["reason"] = reason
    out["amount"] = money(cents)
    return out


def line_adjudications(line: Any, decision: Any) -> list[dict[str, Any]]:
    out = [_amount("submitted", line.charge_cents)]
    if decision is not None and decision.status in _DECIDED:
        adjustments = list(decision.adjustments or [])
        share = {a["carc"]: a for a in adjustments if a["group"] == "PR" and a["carc"] in _SHARE}
        out.append(_amount("eligible", decision.allowed_cents or 0))
        for category, (column, carc) in MEMBER_SHARE.items():
            found = share.get(carc)
            out.append(
                _amount(
                    category, getattr(decision, column) or 0, cas_reason(found) if found else None
                )
            )
        out.append(_amount("memberliability", decision.member_share_cents or 0))
        out.append(_amount("paidtoprovider", decision.plan_paid_cents or 0))
        for a in adjustments:
            if a["group"] == "PR" and a["carc"] in share:
                continue
            write_off = decision.status == "paid" and a["group"] == "CO"
            out.append(
                _amount("discount" if write_off else "noncovered", a["amount_cents"], cas_reason(a))
            )
        if decision.status == "denied" and adjustments:
            out.append(
                {
                    "category": concept(DISCRIMINATOR, "denialreason", "Denial Reason"),
                    "reason": cas_reason(adjustments[-1]),
                }
            )
    tier = _NETWORK.get(decision.network_tier if decision is not None else None, "other")
    out.append({"category": concept(PAYER_STATUS, tier, _NETWORK_DISPLAY[tier])})
    return out


def totals(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[str, Decimal] = {}
    for item in items:
        for adj in item["adjudication"]:
            code = adj["category"]["coding"][0]["code"]
            if code in CATEGORIES and "amount" in adj:
                sums[code] = sums.get(code, Decimal(0)) + adj["amount"]["value"]
    return [
        {
            "category": concept(CATEGORIES[code][0], code, CATEGORIES[code][1]),
            "amount": money(int(sums[code].scaleb(2))),
        }
        for code in CATEGORIES
        if code in sums
    ]


def payment(decisions: list[Any]) -> dict[str, Any]:
    paid = sum((d.plan_paid_cents or 0) for d in decisions if d is not None)
    payment: dict[str, Any] = {}
    statuses = {d.status for d in decisions if d is not None}
    if decisions and None not in decisions and statuses <= set(_DECIDED):
        code = (
            "paid"
            if statuses == {"paid"}
            else ("denied" if statuses == {"denied"} else "partiallypaid")
        )
        display = {"paid": "Paid", "denied": "Denied", "partiallypaid": "Partially Paid"}[code]
        payment["type"] = concept(PAYER_STATUS, code, display)
    payment["amount"] = money(paid)
    return payment
