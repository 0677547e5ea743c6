"""What an 837 is read into: one `Claim837` per claim (CLM loop) with its `Line837`s and
the `Person`s it names, and the set's `Header837`.

`claims837.ClaimsReader` builds these;
`intake837` turns a claim into our intake model, `ack277ca` answers for it. A claim keeps
where each of its values was read (`sources`, a `Source` per value), so that a refusal
names the segment and element that held the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from openhmo.interop.x12.envelope import Problem, Source


@dataclass(slots=True)
class Line837:
    number: int
    procedure_code: str | None = None
    modifiers: list[str] = field(default_factory=list)
    revenue_code: str | None = None
    charge: str = ""
    units: str = "1"
    place_of_service: str | None = None
    emergency: bool = False
    service_date: str | None = None  # CCYYMMDD, the first day of DTP*472
    service_date_to: str | None = None
    rendering_npi: str | None = None
    control_number: str | None = None  # REF*6R
    ndc: str | None = None


@dataclass(slots=True)
class Person:
    last_name: str
    first_name: str
    birth_date: date | None = None
    sex: str | None = None


@dataclass(slots=True)
class Claim837:
    """One CLM loop with everything above it that names who and where."""

    kind: str  # professional | institutional
    set_control: str
    position: int  # CLM's position in its transaction set
    ordinal: int
    line: int
    patient_control_number: str
    total_charge: str
    facility_code: str  # 837P: place of service; 837I: facility type code (bill type 1-2)
    frequency_code: str
    billing_npi: str | None
    billing_name: str
    billing_tax_id: str | None
    billing_taxonomy: str | None
    payer_id: str | None
    subscriber_id: str | None
    subscriber: Person | None
    relationship: str | None  # SBR02 (18 = self) or PAT01
    patient: Person | None  # 2010CA, when the patient is not the subscriber
    diagnosis_qualifier: str | None = None  # ABK (ICD-10-CM) or BK (ICD-9-CM)
    diagnosis_codes: list[str] = field(default_factory=list)
    referral_number: str | None = None
    prior_auth_number: str | None = None
    original_claim_number: str | None = None  # REF*F8, for frequency 7 and 8
    rendering_npi: str | None = None
    referring_npi: str | None = None
    statement_from: str | None = None
    statement_to: str | None = None
    admission_type: str | None = None
    emergency: bool = False
    lines: list[Line837] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def service_from(self) -> str | None:
        days = [ln.service_date for ln in self.lines if ln.service_date] or [self.statement_from]
        return min((d for d in days if d), default=None)

    @property
    def service_to(self) -> str | None:
        days = [ln.service_date_to or ln.service_date for ln in self.lines] + [self.statement_to]
        return max((d for d in days if d), default=None)


@dataclass(slots=True)
class Header837:
    """What the 837 says about itself: BHT, the submitter (1000A) and receiver (1000B)."""

    reference: str = ""
    created: str = ""
    purpose: str = ""
    submitter_name: str = ""
    submitter_id: str = ""
    receiver_name: str = ""
    receiver_id: str = ""


@dataclass(slots=True)
class Result837:
    header: Header837
    claims: int
    rejects_set: bool
