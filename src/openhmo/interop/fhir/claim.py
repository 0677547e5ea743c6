"""A FHIR R4 Claim (the input of Claim/$submit) as the claims intake's `ClaimIn`.

What maps to what (an 837's fields, as `claims.intake` keeps them):

- patient: the member number (our member-number identifier on the reference or on the
  Patient it points to, else the id of `Patient/<member number>`); provider: the billing
  NPI (identifier, the resource it points to, or `Practitioner/<NPI>`); careTeam: the
  rendering NPI (the member with role primary/rendering/performing or `responsible`,
  else the only one; an item's careTeamSequence gives a line its own).
- type: professional or institutional; subType `emergency`: the emergency indicator.
- diagnosis: ICD-10-CM codes (http://hl7.org/fhir/sid/icd-10-cm; WHO ICD-10 codes are
  taken as ICD-10-CM and the engine judges whether they are billable), the principal
  first; or ICD-9-CM for services before October 2015.
- item: sequence (line number), productOrService (CPT or HCPCS), modifier, revenue
  (NUBC), servicedDate or servicedPeriod.start (else billablePeriod.start), quantity
  (units), net (the line's charge; without it unitPrice x quantity x factor), exact
  decimals, USD; locationCodeableConcept (CMS place of service; the first item's is also
  the claim's).
- referral (ServiceRequest/R..., or its referral-number identifier) and the focal
  insurance's preAuthRef (the prior authorization number).
- related (relationship `prior`, naming one of our claims): a replacement (frequency 7);
  with status `cancelled`, a void (8).
- identifier: the submitter's id of the claim. It becomes the patient control number
  (its first 38 characters) and, with the billing NPI, the frequency and the claim
  replaced, the idempotency key: a retried submission finds the stored claim.

Three kinds of answer, decided here:

1. malformed (a `FhirInputError`, answered 400 with the FHIRPath): what breaks FHIR's
   structure or its own code system (a CPT code that is not one, a 9-digit NPI, a charge
   in cents' fractions or not in USD, a total that is not the sum of the lines);
2. unprocessable (`MappedClaim.problems`, answered with a ClaimResponse whose outcome is
   `error`, like a 277CA rejection; nothing is stored): a readable Claim that lacks what
   an 837 must carry (no member number, no billing NPI, no CPT/HCPCS or revenue code,
   no ICD-10-CM diagnosis, a dental, vision or pharmacy claim);
3. everything else goes to intake and the engine, which deny what is well formed but
   wrong (a member we do not have: CO-31; a bad NPI check digit: CO-16 N290; ...).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from openhmo.claims.intake import ClaimIn
from openhmo.interop.fhir.common import (
    CLAIM_SYSTEM,
    CPT_SYSTEM,
    HCPCS_SYSTEM,
    ICD10_SYSTEM,
    MEMBER_SYSTEM,
    NPI_SYSTEM,
    REFERRAL_SYSTEM,
)
from openhmo.interop.fhir.reading import (
    ICD9_SYSTEMS,
    ICD10_SYSTEMS,
    PROCEDURE_SYSTEMS,
    REVENUE_SYSTEMS,
    FhirInputError,
    Person,
    Request,
    amount,
    codes,
    identifier_value,
    literal_id,
    npi,
    person,
    place_of_service,
    service_day,
)

CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
_RENDERING_ROLES = {"primary", "rendering", "performing"}
PATIENT_CONTROL_MAX = 38
KEY_MAX = 200


@dataclass(frozen=True)
class Problem:
    """Why a readable Claim cannot be adjudicated: where, what, and the remark code."""

    path: str
    text: str
    rarc: str | None = None
    item_sequence: int | None = None


@dataclass
class MappedClaim:
    """A Claim mapped: the intake's fields, or the problems that keep it from intake."""

    fields: dict[str, Any]
    problems: list[Problem]
    paths: dict[str, str]  # ClaimIn field ("lines.0.charge") -> FHIRPath in the request
    patient: Person
    total: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _care_team(claim: dict, request: Request, root: str) -> tuple[dict[int, str], str | None]:
    """Each care team member's NPI (by sequence), and the claim's rendering NPI."""
    by_sequence: dict[int, str] = {}
    chosen = None
    team = claim.get("careTeam") or []
    for i, member in enumerate(team):
        found = npi(request, member.get("provider"), f"{root}.careTeam[{i}].provider")
        if found is None:
            continue
        by_sequence[member["sequence"]] = found
        roles = {c.get("code") for c in (member.get("role") or {}).get("coding", [])}
        if chosen is None and (roles & _RENDERING_ROLES or member.get("responsible")):
            chosen = found
    if chosen is None and len(team) == 1:
        chosen = by_sequence.get(team[0]["sequence"])
    return by_sequence, chosen


def _diagnoses(claim: dict, root: str, out: MappedClaim) -> None:
    found: list[tuple[bool, int, str, str, str]] = []
    for i, d in enumerate(claim.get("diagnosis") or []):
        concept = d.get("diagnosisCodeableConcept")
        principal = any(
            c.get("code") == "principal" for t in d.get("type") or [] for c in t.get("coding", [])
        )
        for code in codes(concept, ICD10_SYSTEMS)[:1]:
            found.append(
                (not principal, d["sequence"], code, "ICD-10-CM", f"{root}.diagnosis[{i}]")
            )
        for code in codes(concept, ICD9_SYSTEMS)[:1]:
            found.append((not principal, d["sequence"], code, "ICD-9-CM", f"{root}.diagnosis[{i}]"))
    if not found:
        out.problems.append(
            Problem(
                f"{root}.diagnosis",
                "no ICD-10-CM diagnosis code (system " + ICD10_SYSTEM + ")",
                "M76",
            )
        )
        return
    found.sort(key=lambda f: (f[0], f[1]))
    sets = {f[3] for f in found}
    if len(sets) > 1:
        raise FhirInputError("diagnoses are all ICD-10-CM or all ICD-9-CM", f"{root}.diagnosis")
    out.fields["diagnosis_code_set"] = sets.pop()
    out.fields["diagnosis_codes"] = [f[2] for f in found]
    out.paths["diagnosis_codes"] = f"{root}.diagnosis"
    out.extra["diagnosis_paths"] = [f[4] for f in found]


def _frequency(claim: dict, request: Request, root: str, out: MappedClaim) -> None:
    status = claim.get("status")
    if status not in ("active", "cancelled"):
        raise FhirInputError(
            f"a submitted claim is active (or cancelled, to void one), not {status!r}",
            f"{root}.status",
        )
    replaces = None
    for i, related in enumerate(claim.get("related") or []):
        relation = {c.get("code") for c in (related.get("relationship") or {}).get("coding", [])}
        if relation and "prior" not in relation:
            continue
        ref = related.get("claim") or {}
        target = request.resolve(ref) or {}
        number = (
            identifier_value(ref.get("identifier"), (CLAIM_SYSTEM,))
            or identifier_value(target.get("identifier"), (CLAIM_SYSTEM,))
            or literal_id(ref, "Claim")
            or literal_id(ref, "ClaimResponse")
        )
        if number is not None:
            replaces = number
            out.paths["replaces_claim_id"] = f"{root}.related[{i}].claim"
            break
    if status == "cancelled" and replaces is None:
        raise FhirInputError(
            "a cancelled claim voids an earlier one: name it in related.claim "
            f"(identifier system {CLAIM_SYSTEM})",
            f"{root}.related",
        )
    out.fields["frequency_code"] = "8" if status == "cancelled" else ("7" if replaces else "1")
    out.fields["replaces_claim_id"] = replaces
    out.paths["frequency_code"] = f"{root}.status"


def _line(
    item: dict, i: int, claim: dict, root: str, team: dict[int, str], out: MappedClaim
) -> dict[str, Any]:
    path = f"{root}.item[{i}]"
    sequence = item["sequence"]
    line: dict[str, Any] = {"line_number": sequence}
    paths = {
        "line_number": f"{path}.sequence",
        "procedure_code": f"{path}.productOrService",
        "revenue_code": f"{path}.revenue",
        "modifiers": f"{path}.modifier",
        "units": f"{path}.quantity",
        "place_of_service": f"{path}.locationCodeableConcept",
        "rendering_npi": f"{path}.careTeamSequence",
        "service_date": f"{path}.servicedDate",
        "charge": f"{path}.net",
    }
    procedure = codes(item.get("productOrService"), PROCEDURE_SYSTEMS)
    revenue = codes(item.get("revenue"), REVENUE_SYSTEMS)
    if procedure:
        line["procedure_code"] = procedure[0]
    if revenue:
        line["revenue_code"] = revenue[0]
    if not procedure and not revenue:
        out.problems.append(
            Problem(
                f"{path}.productOrService",
                f"no CPT or HCPCS code (system {CPT_SYSTEM} or {HCPCS_SYSTEM})",
                "M51",
                sequence,
            )
        )
    modifiers = [
        m["coding"][0].get("code", "") for m in item.get("modifier") or [] if m.get("coding")
    ]
    if modifiers:
        line["modifiers"] = modifiers
    day = item.get("servicedDate") or (item.get("servicedPeriod") or {}).get("start")
    if day is None and (claim.get("billablePeriod") or {}).get("start"):
        day, paths["service_date"] = claim["billablePeriod"]["start"], f"{root}.billablePeriod"
    if day is None:
        out.problems.append(Problem(f"{path}.servicedDate", "no date of service", "M59", sequence))
    else:
        line["service_date"] = service_day(day, paths["service_date"])
    quantity = (item.get("quantity") or {}).get("value")
    if quantity is not None:
        line["units"] = quantity
    charge = amount(item.get("net"), f"{path}.net")
    if charge is None:
        price = amount(item.get("unitPrice"), f"{path}.unitPrice")
        if price is not None:
            charge = price * Decimal(str(quantity or 1)) * Decimal(str(item.get("factor", 1)))
            paths["charge"] = f"{path}.unitPrice"
    if charge is None:
        out.problems.append(Problem(f"{path}.net", "no charge (net or unitPrice)", "M79", sequence))
    else:
        line["charge"] = charge
    place = place_of_service(item.get("locationCodeableConcept"))
    if place:
        line["place_of_service"] = place
    for seq in item.get("careTeamSequence") or []:
        if seq in team and team[seq] != out.fields.get("rendering_npi"):
            line["rendering_npi"] = team[seq]
        break
    n = len(out.fields["lines"])
    out.paths.update({f"lines.{n}.{k}": v for k, v in paths.items()})
    out.paths[f"lines.{n}"] = path
    return line


def map_claim(request: Request) -> MappedClaim:
    """The intake's fields from a Claim, or the problems that keep it from intake."""
    claim, root = request.resource, request.root
    if claim.get("use") != "claim":
        raise FhirInputError(
            f"only claims are adjudicated here (use 'claim'), not {claim.get('use')!r}: "
            "referrals are ServiceRequests, and prior authorizations are made with staff",
            f"{root}.use",
            status=422,
            code="not-supported",
        )
    kinds = codes(claim.get("type"), (CLAIM_TYPE_SYSTEM,))
    kind = (
        kinds[0] if kinds else ((claim.get("type") or {}).get("coding") or [{}])[0].get("code", "")
    )
    patient = person(request, claim.get("patient"))
    out = MappedClaim({"lines": []}, [], {}, patient)
    if kind not in ("professional", "institutional"):
        out.problems.append(
            Problem(
                f"{root}.type",
                f"we pay medical claims, professional or institutional, not {kind!r}",
            )
        )
    out.fields["claim_type"] = kind
    out.paths.update(claim_type=f"{root}.type", lines=f"{root}.item")
    if patient.member_number is None:
        out.problems.append(
            Problem(
                f"{root}.patient",
                f"no member number (identifier system {MEMBER_SYSTEM}, or Patient/<member number>)",
                "N382",
            )
        )
    out.fields["member_number"] = patient.member_number
    out.paths["member_number"] = f"{root}.patient"
    billing = npi(request, claim.get("provider"), f"{root}.provider")
    if billing is None:
        out.problems.append(
            Problem(
                f"{root}.provider",
                f"no billing provider NPI (identifier system {NPI_SYSTEM}, or Practitioner/<NPI>)",
                "N257",
            )
        )
    out.fields["billing_npi"] = billing
    out.paths["billing_npi"] = f"{root}.provider"
    team, rendering = _care_team(claim, request, root)
    out.fields["rendering_npi"] = rendering
    out.paths["rendering_npi"] = f"{root}.careTeam"
    sub_types = (claim.get("subType") or {}).get("coding", [])
    out.fields["emergency"] = any(c.get("code") == "emergency" for c in sub_types)
    _frequency(claim, request, root, out)
    _diagnoses(claim, root, out)
    _references(claim, request, root, out)
    for i, item in enumerate(claim.get("item") or []):
        out.fields["lines"].append(_line(item, i, claim, root, team, out))
    if not out.fields["lines"]:
        out.problems.append(Problem(f"{root}.item", "a claim has at least one item", "M51"))
    first_place = next((ln.get("place_of_service") for ln in out.fields["lines"]), None)
    out.fields["place_of_service"] = first_place
    out.paths["place_of_service"] = f"{root}.item[0].locationCodeableConcept"
    _identifier(claim, root, out)
    out.total = amount(claim.get("total"), f"{root}.total")
    return out


def _references(claim: dict, request: Request, root: str, out: MappedClaim) -> None:
    ref = claim.get("referral")
    if ref:
        target = request.resolve(ref) or {}
        out.fields["referral_number"] = (
            identifier_value(ref.get("identifier"), (REFERRAL_SYSTEM,))
            or identifier_value(target.get("identifier"), (REFERRAL_SYSTEM,))
            or literal_id(ref, "ServiceRequest")
        )
        out.paths["referral_number"] = f"{root}.referral"
    insurance = claim.get("insurance") or []
    focal = next((i for i, ins in enumerate(insurance) if ins.get("focal")), 0)
    if insurance and insurance[focal].get("preAuthRef"):
        out.fields["prior_auth_number"] = insurance[focal]["preAuthRef"][0]
        out.paths["prior_auth_number"] = f"{root}.insurance[{focal}].preAuthRef[0]"


def _identifier(claim: dict, root: str, out: MappedClaim) -> None:
    identifiers = [i for i in claim.get("identifier") or [] if str(i.get("value", "")).strip()]
    if identifiers:
        system, value = identifiers[0].get("system", ""), str(identifiers[0]["value"]).strip()
        out.paths["patient_control_number"] = f"{root}.identifier[0].value"
    elif claim.get("id"):
        system, value = "", str(claim["id"])
        out.paths["patient_control_number"] = f"{root}.id"
    else:
        out.problems.append(
            Problem(
                f"{root}.identifier",
                "no identifier: the submitter's id of the claim lets "
                "a retried submission find the claim it already sent",
            )
        )
        return
    out.fields["patient_control_number"] = value[:PATIENT_CONTROL_MAX]
    out.paths["idempotency_key"] = out.paths["patient_control_number"]
    out.extra["identifier"] = (system, value)


def idempotency_key(fields: dict[str, Any], system: str, value: str) -> str:
    """The submission's key: FHIR, billing NPI, Claim.identifier, frequency, claim replaced."""
    parts = ["fhir", fields["billing_npi"] or "", system, value, fields["frequency_code"]]
    key = "|".join([*parts, fields.get("replaces_claim_id") or ""])
    if len(key) > KEY_MAX:
        key = "fhir|sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _where(loc: tuple, message: str, mapped: MappedClaim) -> str:
    """The FHIRPath of what the intake refused at `loc` ("lines.0.charge" -> item[0].net)."""
    key = ".".join(str(p) for p in loc)
    if key == "diagnosis_codes" and (m := re.search(r"diagnosis (\d+)", message)):
        paths = mapped.extra.get("diagnosis_paths", [])
        if int(m.group(1)) <= len(paths):
            return paths[int(m.group(1)) - 1]
    while key and key not in mapped.paths:
        key = key.rpartition(".")[0]
    if key:
        return mapped.paths[key]
    # Whole-claim checks: the only one is the diagnoses' code set against the dates.
    return mapped.paths.get("diagnosis_codes") or mapped.paths["lines"]


def claim_in(mapped: MappedClaim, *, submitter: str, source: str = "fhir") -> ClaimIn:
    """The intake's ClaimIn, or a FhirInputError naming the element the intake refused."""
    system, value = mapped.extra["identifier"]
    fields = dict(mapped.fields)
    fields["idempotency_key"] = idempotency_key(fields, system, value)
    try:
        claim = ClaimIn(**fields, source=source, submitter=submitter)
    except ValidationError as exc:
        problems = exc.errors()[:10]
        paths = [_where(p["loc"], p["msg"], mapped) for p in problems]
        message = "; ".join(
            f"{path}: {p['msg'].removeprefix('Value error, ')}"
            for path, p in zip(paths, problems, strict=True)
        )
        raise FhirInputError(message, paths) from None
    if mapped.total is not None and mapped.total * 100 != claim.total_charge_cents:
        raise FhirInputError(
            f"total {mapped.total} is not the sum of the items' charges "
            f"({Decimal(claim.total_charge_cents) / 100})",
            mapped.paths["lines"].removesuffix(".item") + ".total",
        )
    return claim
