"""From an 837 claim as read to OpenHMO's `ClaimIn`, or to a 277CA rejection that says why.

`decide` is pure: given the claim as read (`model837.Claim837`) and who its patient is
(the member number the caller found, or the reason none was found), it builds the
claim our intake takes, or a `Rejection` carrying the 277CA status (category, status
code and entity, from the X12 claim status code lists) and every problem with the
segment position and element it came from. Our intake's own refusals (pydantic
errors on `ClaimIn`) are traced back to the segment and element of the value refused,
through the claim's `sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import ValidationError

from openhmo.claims.intake import ClaimIn
from openhmo.interop.x12.envelope import Problem, Source
from openhmo.interop.x12.model837 import Claim837
from openhmo.interop.x12.writer import cents

# 277CA STC01-2 claim status codes by the field our intake refused (X12 code list 508).
_STATUS_BY_FIELD = {
    "member_number": ("33", "IL"),
    "billing_npi": ("562", "85"),
    "rendering_npi": ("562", "82"),
    "diagnosis_codes": ("255", None),
    "diagnosis_codes.0": ("254", None),
    "procedure_code": ("454", None),
    "modifiers": ("453", None),
    "charge": ("178", None),
    "service_date": ("187", None),
    "place_of_service": ("249", None),
    "revenue_code": ("234", None),
    "replaces_claim_id": ("464", None),
    "frequency_code": ("535", None),
}
_STATUS_BY_SEGMENT = {"SV1": "454", "SV2": "454", "DTP": "187", "HI": "255", "CLM": "21"}


@dataclass(slots=True)
class Accepted:
    claim: Claim837
    claim_in: ClaimIn


@dataclass(slots=True)
class Rejection:
    claim: Claim837
    problems: list[Problem]
    category: str = "A3"  # A3 returned as unprocessable, A7 rejected for invalid information
    status: str = "21"  # missing or invalid information
    entity: str | None = None

    @property
    def reason(self) -> str:
        return "; ".join(p.reason for p in self.problems)


def _problem(
    claim: Claim837, source: Source | None, reason: str, value: str | None = None
) -> Problem:
    if source is None:
        return Problem(reason, "CLM", claim.position, claim.ordinal, claim.line, "8", loop="2300")
    return source.problem(reason, "7", value)


def _source(claim: Claim837, loc: tuple) -> tuple[str, Source | None]:
    """The most precise source known for a pydantic error location."""
    parts = [str(p) for p in loc]
    sources = claim.sources
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return key, sources[key]
    return ".".join(parts), None


def _status(key: str) -> tuple[str, str | None]:
    if key in _STATUS_BY_FIELD:
        return _STATUS_BY_FIELD[key]
    leaf = key.split(".")[-1] if not key.startswith("diagnosis_codes") else "diagnosis_codes"
    if key.startswith("lines.") and leaf.isdigit():
        return "21", None
    return _STATUS_BY_FIELD.get(leaf, ("21", None))


def _day(text: str | None) -> date | None:
    if not text or len(text) != 8:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def decide(claim: Claim837, patient: str | Problem, *, submitter: str) -> Accepted | Rejection:
    """The claim our intake takes, or the 277CA rejection with every reason found."""
    if claim.problems:
        first = claim.problems[0]
        status = _STATUS_BY_SEGMENT.get(first.segment, "21")
        return Rejection(claim, list(claim.problems), "A3", status)
    if isinstance(patient, Problem):
        return Rejection(claim, [patient], "A3", "33", "QC" if claim.patient else "IL")
    statement = _day(claim.statement_from)
    try:
        claim_in = ClaimIn(
            patient_control_number=claim.patient_control_number,
            member_number=patient,
            billing_npi=claim.billing_npi,
            rendering_npi=claim.rendering_npi,
            claim_type=claim.kind,
            frequency_code=claim.frequency_code,
            replaces_claim_id=claim.original_claim_number
            if claim.frequency_code in ("7", "8")
            else None,
            place_of_service=claim.facility_code if claim.kind == "professional" else None,
            diagnosis_code_set="ICD-9-CM" if claim.diagnosis_qualifier == "BK" else "ICD-10-CM",
            diagnosis_codes=claim.diagnosis_codes,
            referral_number=claim.referral_number,
            prior_auth_number=claim.prior_auth_number,
            emergency=claim.emergency,
            lines=[
                {
                    "line_number": ln.number,
                    "service_date": _day(ln.service_date) or statement,
                    "revenue_code": ln.revenue_code,
                    "procedure_code": ln.procedure_code,
                    "modifiers": ln.modifiers,
                    "units": ln.units,
                    "charge": ln.charge,
                    "place_of_service": ln.place_of_service,
                    "rendering_npi": ln.rendering_npi,
                }
                for ln in claim.lines
            ],
            idempotency_key=None,
            source="x12-837",
            submitter=submitter[:120],
        )
    except ValidationError as exc:
        problems: list[Problem] = []
        status: tuple[str, str | None] | None = None
        for error in exc.errors():
            key, source = _source(claim, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            problems.append(
                _problem(
                    claim, source, f"{key}: {message}", value if isinstance(value, str) else None
                )
            )
            status = status or _status(key)
        unbalanced = _unbalanced(claim, sum(cents(ln.charge) or 0 for ln in claim.lines))
        code, entity = status or ("21", None)
        return Rejection(claim, problems + ([unbalanced] if unbalanced else []), "A7", code, entity)
    unbalanced = _unbalanced(claim, claim_in.total_charge_cents)
    if unbalanced is not None:
        return Rejection(claim, [unbalanced], "A7", "400")
    return Accepted(claim, claim_in)


def _unbalanced(claim: Claim837, lines: int) -> Problem | None:
    """The guide's balancing rule: the claim's total (CLM02) is the sum of its lines."""
    total = cents(claim.total_charge)
    if total is None or total == lines:
        return None
    reason = (
        f"CLM02 {claim.total_charge} is not the sum of the service lines' charges "
        f"({lines // 100}.{lines % 100:02d})"
    )
    return _problem(claim, claim.sources.get("total_charge"), reason, claim.total_charge)
