"""A claim and its current line decisions as a CARIN Blue Button STU 2.0.0 ExplanationOfBenefit.

Professional claims are C4BB-ExplanationOfBenefit-Professional-NonClinician; institutional
ones Inpatient-Institutional when a line bills room and board (UB-04 revenue 0100-0219),
Outpatient-Institutional otherwise.

Every cent of each line is shown and adds up (eob_amounts); every decided line also has a
processNote: the member's explanation of the decision, in the member's language. Providers
are named by NPI always, and as Practitioner/<NPI> or Organization/org-<id> where the
directory serves them; the payer is the contained Organization "#payer".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from openhmo.adjudication.explain import explanation_text
from openhmo.config import PlanIdentity
from openhmo.interop.fhir.common import (
    CLAIM_SYSTEM,
    CPT_SYSTEM,
    HCPCS_SYSTEM,
    ICD9_SYSTEM,
    ICD10_SYSTEM,
    NPI_SYSTEM,
    POS_SYSTEM,
    concept,
    money,
    reference,
)
from openhmo.interop.fhir.eob_amounts import line_adjudications, payment, totals
from openhmo.interop.fhir.patient_access import (
    BCP47,
    C4BB_IDENTIFIER_TYPE,
    CARIN,
    CARIN_VERSION,
    instant,
    meta,
    payer_organization,
    payer_reference,
)

_SD = f"{CARIN}/StructureDefinition/C4BB-ExplanationOfBenefit"
PROFILES = {
    "professional": f"{_SD}-Professional-NonClinician|{CARIN_VERSION}",
    "inpatient": f"{_SD}-Inpatient-Institutional|{CARIN_VERSION}",
    "outpatient": f"{_SD}-Outpatient-Institutional|{CARIN_VERSION}",
}
SUPPORTING_INFO = f"{CARIN}/CodeSystem/C4BBSupportingInfoType"
CARE_TEAM_ROLE = f"{CARIN}/CodeSystem/C4BBClaimCareTeamRole"
INSTITUTIONAL_SUBTYPE = f"{CARIN}/CodeSystem/C4BBInstitutionalClaimSubType"
C4BB_DIAGNOSIS_TYPE = f"{CARIN}/CodeSystem/C4BBClaimDiagnosisType"
C4BB_RELATED = f"{CARIN}/CodeSystem/C4BBRelatedClaimRelationshipCodes"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
PAYEE_TYPE = "http://terminology.hl7.org/CodeSystem/payeetype"
RELATED = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
REVENUE_SYSTEM = "https://www.nubc.org/CodeSystem/RevenueCodes"


@dataclass(frozen=True)
class Party:
    """A provider as an EOB names it: always by NPI, and by resource where we serve one."""

    npi: str
    name: str | None = None
    resource_type: str | None = None  # Practitioner or Organization
    resource_id: str | None = None

    def reference(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.resource_type and self.resource_id:
            out["reference"] = f"{self.resource_type}/{self.resource_id}"
        out["identifier"] = {"system": NPI_SYSTEM, "value": self.npi}
        if self.name:
            out["display"] = self.name
        return out

    @property
    def individual(self) -> bool:
        return self.resource_type == "Practitioner"


@dataclass
class ClaimFacts:
    """Everything an EOB shows of one claim, fetched by the shell."""

    claim: Any  # Claim row
    lines: list[Any]  # its ClaimLine rows, by line number
    decisions: dict[int, Any]  # line id -> its current LineDecision (missing: not decided yet)
    patient_id: str  # the member number
    coverage_id: str | None  # the Coverage of the member's span on the first service date
    billing: Party
    rendering: dict[str, Party]  # NPI -> party, for the claim's and lines' rendering NPIs
    referring: Party | None
    replaced_by: str | None  # the claim id of a later claim that replaced or voided this one
    language: str
    last_updated: datetime


def claim_kind(claim: Any, lines: list[Any]) -> str:
    """professional, inpatient or outpatient."""
    if claim.claim_type != "institutional":
        return "professional"
    room_and_board = any(
        "0100" <= ln.revenue_code.zfill(4) <= "0219" for ln in lines if ln.revenue_code
    )
    return "inpatient" if room_and_board else "outpatient"


def explanation_of_benefit(facts: ClaimFacts, identity: PlanIdentity) -> dict[str, Any]:
    claim, lines = facts.claim, facts.lines
    kind = claim_kind(claim, lines)
    decisions = [facts.decisions.get(ln.id) for ln in lines]
    dates = [ln.service_date for ln in lines]
    care_team, team_seq = _care_team(facts, kind)
    notes: list[dict[str, Any]] = []
    items = [
        _item(ln, d, claim, kind, team_seq, notes, facts.language)
        for ln, d in zip(lines, decisions, strict=True)
    ]
    eob: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "id": claim.claim_id,
        "meta": meta(PROFILES[kind], facts.last_updated),
        "contained": [payer_organization(identity)],
        "identifier": [
            {
                "type": concept(C4BB_IDENTIFIER_TYPE, "uc", "Unique Claim ID"),
                "system": CLAIM_SYSTEM,
                "value": claim.claim_id,
            }
        ],
        "status": "cancelled" if claim.status in ("voided", "replaced") else "active",
        "type": concept(CLAIM_TYPE, claim.claim_type, claim.claim_type.capitalize()),
    }
    if kind != "professional":
        eob["subType"] = concept(INSTITUTIONAL_SUBTYPE, kind, kind.capitalize())
    eob |= {
        "use": "claim",
        "patient": reference("Patient", facts.patient_id),
        "billablePeriod": {"start": min(dates).isoformat(), "end": max(dates).isoformat()},
        "created": instant(facts.last_updated),
        "insurer": payer_reference(identity),
        "provider": facts.billing.reference(),
    }
    related = _related(claim, facts.replaced_by)
    if related:
        eob["related"] = related
    referral = claim.referral_number or next(
        (d.referral_number for d in decisions if d is not None and d.referral_number), None
    )
    if referral:
        eob["referral"] = reference("ServiceRequest", referral)
    eob["payee"] = {
        "type": concept(PAYEE_TYPE, "provider", "Provider"),
        "party": facts.billing.reference(),
    }
    eob["outcome"] = _outcome(decisions)
    if care_team:
        eob["careTeam"] = care_team
    eob["supportingInfo"] = _supporting_info(claim)
    eob["diagnosis"] = _diagnoses(claim, kind)
    insurance: dict[str, Any] = {"focal": True}
    insurance["coverage"] = (
        reference("Coverage", facts.coverage_id)
        if facts.coverage_id
        else {"display": "no coverage on file for the service date"}
    )
    if claim.prior_auth_number:
        insurance["preAuthRef"] = [claim.prior_auth_number]
    eob["insurance"] = [insurance]
    eob["item"] = items
    amounts = totals(items)
    if amounts:
        eob["total"] = amounts
    eob["payment"] = payment(decisions)
    if notes:
        eob["processNote"] = notes
    return eob


def _care_team(facts: ClaimFacts, kind: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The care team (performing and referring providers) and each performer's sequence."""
    performers = [facts.claim.rendering_npi, *(ln.rendering_npi for ln in facts.lines)]
    npis = list(dict.fromkeys(n for n in performers if n))
    if not npis and facts.billing.individual:
        npis = [facts.billing.npi]  # an individual who bills for themself renders too
    team: list[dict[str, Any]] = []
    seq: dict[str, int] = {}
    for npi in npis:
        party = facts.rendering.get(npi) or (
            facts.billing if npi == facts.billing.npi else Party(npi)
        )
        seq[npi] = len(team) + 1
        team.append(_member(seq[npi], party, "performing", "Performing provider"))
    if facts.referring is not None and kind == "professional":
        team.append(_member(len(team) + 1, facts.referring, "referring", "Referring"))
    return team, seq


def _member(sequence: int, party: Party, role: str, display: str) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "provider": party.reference(),
        "role": concept(CARE_TEAM_ROLE, role, display),
    }


def _related(claim: Any, replaced_by: str | None) -> list[dict[str, Any]]:
    out = []
    if claim.replaces_claim_id:
        out.append(
            {
                "claim": {"identifier": {"system": CLAIM_SYSTEM, "value": claim.replaces_claim_id}},
                "relationship": concept(RELATED, "prior", "Prior Claim"),
            }
        )
    if replaced_by:
        out.append(
            {
                "claim": {"identifier": {"system": CLAIM_SYSTEM, "value": replaced_by}},
                "relationship": concept(C4BB_RELATED, "replacedby", "Replaced by claim number"),
            }
        )
    return out


def _outcome(decisions: list[Any]) -> str:
    waiting = [d is None or d.status == "pended" for d in decisions]
    if all(waiting):
        return "queued"
    return "partial" if any(waiting) else "complete"


def _supporting_info(claim: Any) -> list[dict[str, Any]]:
    return [
        {
            "sequence": 1,
            "category": concept(SUPPORTING_INFO, "clmrecvddate", "Claim Received Date"),
            "timingDate": claim.received_at.date().isoformat(),
        },
        {
            "sequence": 2,
            "category": concept(SUPPORTING_INFO, "patientaccountnumber", "Patient Account Number"),
            "valueString": claim.patient_control_number,
        },
    ]


def dotted(code: str, code_set: str = "ICD-10-CM") -> str:
    """An ICD code as its code system writes it (I10, E11.9, S09.90XA; ICD-9 E-codes E880.9)."""
    code = code.replace(".", "").strip().upper()
    cut = 4 if code_set == "ICD-9-CM" and code.startswith("E") else 3
    return code if len(code) <= cut else f"{code[:cut]}.{code[cut:]}"


def _diagnoses(claim: Any, kind: str) -> list[dict[str, Any]]:
    system = ICD9_SYSTEM if claim.diagnosis_code_set == "ICD-9-CM" else ICD10_SYSTEM
    other = ("secondary", "Secondary") if kind == "professional" else ("other", "Other")
    out = []
    for n, code in enumerate(claim.diagnosis_codes or [], start=1):
        kind_of = (
            concept(DIAGNOSIS_TYPE, "principal", "Principal Diagnosis")
            if n == 1
            else concept(C4BB_DIAGNOSIS_TYPE, *other)
        )
        out.append(
            {
                "sequence": n,
                "diagnosisCodeableConcept": concept(system, dotted(code, claim.diagnosis_code_set)),
                "type": [kind_of],
            }
        )
    return out


def _procedure(code: str) -> dict[str, Any]:
    # HCPCS Level II codes begin with a letter; CPT codes (Category II/III too) with a digit.
    return concept(HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM, code)


def _quantity(units: Decimal) -> dict[str, Any]:
    value = Decimal(units)
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return {"value": value}


def _item(
    line: Any,
    decision: Any,
    claim: Any,
    kind: str,
    team_seq: dict[str, int],
    notes: list[dict[str, Any]],
    language: str,
) -> dict[str, Any]:
    item: dict[str, Any] = {"sequence": line.line_number}
    performer = line.rendering_npi or claim.rendering_npi or claim.billing_npi
    if performer in team_seq:
        item["careTeamSequence"] = [team_seq[performer]]
    if line.revenue_code:
        item["revenue"] = concept(REVENUE_SYSTEM, line.revenue_code)
    item["productOrService"] = (
        _procedure(line.procedure_code)
        if line.procedure_code
        else concept(DATA_ABSENT, "not-applicable", "Not Applicable")
    )
    if line.modifiers:
        item["modifier"] = [_procedure(m) for m in line.modifiers]
    item["servicedDate"] = line.service_date.isoformat()
    place = line.place_of_service or claim.place_of_service
    if place and kind == "professional":
        item["locationCodeableConcept"] = concept(POS_SYSTEM, place)
    item["quantity"] = _quantity(line.units)
    item["net"] = money(line.charge_cents)
    if decision is not None and decision.explanation_id:
        number = len(notes) + 1
        text = explanation_text(decision.explanation_id, decision.explanation_params, language)
        notes.append(
            {
                "number": number,
                "type": "display",
                "text": text,
                "language": concept(BCP47, language),
            }
        )
        item["noteNumber"] = [number]
    item["adjudication"] = line_adjudications(line, decision)
    return item
