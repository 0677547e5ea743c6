"""837P and 837I written from claims, as a provider's billing system would send them.

OpenHMO receives 837s; it writes them for the tests, the benchmark and the demo (a
round trip from our claims to X12 and back must give the same claims). Each claim
goes under its billing provider (2000A) and subscriber (2000B); a patient who is not
the subscriber and has no member number of their own would go in 2000C, but every
OpenHMO member has one, so the patient is always sent as the subscriber, as the 5010
guides ask for a patient with a unique member identifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from openhmo.claims.intake import ClaimIn
from openhmo.interop.x12.writer import Interchange, TransactionSet, amount, composite, d8, number

PROFESSIONAL_VERSION = "005010X222A1"
INSTITUTIONAL_VERSION = "005010X223A2"


@dataclass(frozen=True, slots=True)
class Patient:
    member_number: str
    last_name: str
    first_name: str
    birth_date: date
    sex: str = "U"


@dataclass(frozen=True, slots=True)
class BillingProvider:
    npi: str
    name: str
    tax_id: str = "123456789"
    address: tuple[str, str, str, str] = ("1 MAIN ST", "SPRINGFIELD", "IL", "627010000")


def _claim(ts: TransactionSet, claim: ClaimIn, patient: Patient, hl: int, parent: int) -> None:
    ts.add("HL", hl, parent, 22, 0)
    ts.add("SBR", "P", 18, None, None, None, None, None, None, "HM")
    ts.add(
        "NM1",
        "IL",
        1,
        patient.last_name,
        patient.first_name,
        None,
        None,
        None,
        "MI",
        patient.member_number,
    )
    ts.add("DMG", "D8", d8(patient.birth_date), patient.sex if patient.sex in ("F", "M") else "U")
    ts.add("NM1", "PR", 2, "OPENHMO HEALTH PLAN", None, None, None, None, "PI", "OPENHMO")
    institutional = claim.claim_type == "institutional"
    facility = (
        composite("13", "A", claim.frequency_code)
        if institutional
        else composite(claim.place_of_service or "11", "B", claim.frequency_code)
    )
    ts.add(
        "CLM",
        claim.patient_control_number,
        amount(claim.total_charge_cents),
        None,
        None,
        facility,
        "Y" if not institutional else None,
        "A",
        "Y",
        "Y" if not institutional else "I",
    )
    if institutional:
        first = min(ln.service_date for ln in claim.lines)
        last = max(ln.service_date for ln in claim.lines)
        ts.add("DTP", "434", "RD8", f"{d8(first)}-{d8(last)}")
        ts.add("CL1", "1" if claim.emergency else "3", None, "01")
    if claim.prior_auth_number:
        ts.add("REF", "G1", claim.prior_auth_number)
    if claim.referral_number:
        ts.add("REF", "9F", claim.referral_number)
    if claim.replaces_claim_id:
        ts.add("REF", "F8", claim.replaces_claim_id)
    icd9 = claim.diagnosis_code_set == "ICD-9-CM"
    principal, other = ("BK", "BF") if icd9 else ("ABK", "ABF")
    codes = [
        composite(principal if i == 0 else other, c) for i, c in enumerate(claim.diagnosis_codes)
    ]
    ts.add("HI", *codes)
    if claim.rendering_npi:
        ts.add(
            "NM1",
            "82" if not institutional else "71",
            1,
            "RENDERING",
            "PROVIDER",
            None,
            None,
            None,
            "XX",
            claim.rendering_npi,
        )
    for n, line in claim.numbered_lines():
        ts.add("LX", n)
        procedure = (
            composite("HC", line.procedure_code, *line.modifiers) if line.procedure_code else None
        )
        if institutional:
            ts.add(
                "SV2",
                line.revenue_code or "0999",
                procedure,
                amount(line.charge_cents),
                "UN",
                number(line.units),
            )
        else:
            pointers = composite(*range(1, min(len(claim.diagnosis_codes), 4) + 1))
            ts.add(
                "SV1",
                procedure,
                amount(line.charge_cents),
                "UN",
                number(line.units),
                line.place_of_service,
                None,
                pointers,
                None,
                "Y" if claim.emergency else None,
            )
        ts.add("DTP", "472", "D8", d8(line.service_date))
        if line.rendering_npi and line.rendering_npi != claim.rendering_npi:
            ts.add(
                "NM1", "82", 1, "RENDERING", "PROVIDER", None, None, None, "XX", line.rendering_npi
            )


def fill(
    ts: TransactionSet,
    claims: Iterable[tuple[ClaimIn, Patient, BillingProvider]],
    *,
    reference: str,
    moment: datetime,
) -> int:
    """Write the claims into one 837 transaction set; the number of claims written."""
    ts.add("BHT", "0019", "00", reference, moment.strftime("%Y%m%d"), moment.strftime("%H%M"), "CH")
    ts.add("NM1", "41", 2, "OPENHMO TEST SUBMITTER", None, None, None, None, "46", "SUBMITTER1")
    ts.add("PER", "IC", "CLAIMS DESK", "TE", "5555550100")
    ts.add("NM1", "40", 2, "OPENHMO HEALTH PLAN", None, None, None, None, "46", "OPENHMO")
    hl = 0
    count = 0
    current: str | None = None
    parent = 0
    for claim, patient, provider in claims:
        if provider.npi != current:
            hl += 1
            parent = hl
            current = provider.npi
            ts.add("HL", hl, None, 20, 1)
            ts.add("PRV", "BI", "PXC", "207Q00000X")
            ts.add("NM1", "85", 2, provider.name, None, None, None, None, "XX", provider.npi)
            ts.add("N3", provider.address[0])
            ts.add("N4", *provider.address[1:])
            ts.add("REF", "EI", provider.tax_id)
        hl += 1
        _claim(ts, claim, patient, hl, parent)
        count += 1
    return count


def _submitted(control: int, moment: datetime) -> Interchange:
    """The interchange a submitter sends us (its ISA; `stream` writes the rest itself)."""
    return Interchange(
        sender=("ZZ", "SUBMITTER1"),
        receiver=("ZZ", "OPENHMO"),
        control=control,
        moment=moment,
        usage="P",
    )


def interchange(
    claims: Iterable[tuple[ClaimIn, Patient, BillingProvider]],
    *,
    control: int = 1,
    moment: datetime | None = None,
    claims_per_set: int = 5000,
    institutional: bool = False,
) -> Interchange:
    """An interchange of 837 sets of at most `claims_per_set` claims (the guides' advice)."""
    moment = moment or datetime(2026, 1, 1, 12, 0)
    out = _submitted(control, moment)
    group = out.new_group("HC", INSTITUTIONAL_VERSION if institutional else PROFESSIONAL_VERSION)
    batch: list = []
    for item in claims:
        batch.append(item)
        if len(batch) == claims_per_set:
            fill(group.new_set("837"), batch, reference=f"{len(group.sets)}", moment=moment)
            batch = []
    if batch or not group.sets:
        fill(group.new_set("837"), batch, reference=f"{len(group.sets) + 1}", moment=moment)
    return out


def stream(
    claims: Iterable[tuple[ClaimIn, Patient, BillingProvider]],
    *,
    control: int = 1,
    moment: datetime | None = None,
    claims_per_set: int = 5000,
) -> Iterator[str]:
    """A large professional 837 file piece by piece (a set at a time), for files of any size."""
    moment = moment or datetime(2026, 1, 1, 12, 0)
    sets = 0
    text = _submitted(control, moment).render(newline=False)
    isa = text[: text.index("~") + 1]
    yield isa
    yield f"GS*HC*SUBMITTER1*OPENHMO*{moment:%Y%m%d}*{moment:%H%M}*1*X*{PROFESSIONAL_VERSION}~"
    batch: list = []

    def flush() -> str:
        nonlocal sets
        sets += 1
        ts = TransactionSet("837", f"{sets:04d}", PROFESSIONAL_VERSION)
        fill(ts, batch, reference=str(sets), moment=moment)
        body = "".join("*".join(s) + "~" for s in ts.segments)
        return f"ST*837*{ts.control}*{PROFESSIONAL_VERSION}~{body}SE*{len(ts)}*{ts.control}~"

    for item in claims:
        batch.append(item)
        if len(batch) == claims_per_set:
            yield flush()
            batch = []
    if batch:
        yield flush()
    yield f"GE*{sets}*1~IEA*1*{control:09d}~"
