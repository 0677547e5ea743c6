"""The 271 answering a 270 (005010X279A1), written from plain data: no database here.

`benefit_segments` builds the EB loops from a `Benefits`, and `write_271` the whole
answering set from the inquiries as read (`inquiry270`) and, per inquiry, its `Answer`
(our member and their benefits) or `Reject` (an AAA).

What the 271 says: EB*1 active coverage (EB*6 inactive, with the eligibility dates) with
the coverage level (IND/ESP/ECH/FAM), insurance type (HM, PR, PS, EP, IN) and plan name;
EB*L with the PCP in loop 2120C (NM1*P3, NPI); per network tier, the deductible (EB*C)
and out-of-pocket maximum (EB*G) for the individual and the family, each as the plan
year's amount (EB06 23 calendar year, 22 another plan year) and what remains (29) from
the accumulators; per service type the copay (EB*B, per visit 27, day 7 or admission 36),
coinsurance (EB*A, EB08 a fraction: .2 is 20%), non-covered services (EB*I) and visit
limits (EB*F); EB11 Y where a referral or prior authorization is needed. A member we do
not have is answered with an AAA, with the trace number and the name as sent, never our
data. The code lists here also say our plan designs' values in the 271's codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from openhmo.categories import ServiceCategory
from openhmo.interop.x12.answers import (
    echo_name,
    echo_traces,
    header,
    payer_nm1,
    text,
)
from openhmo.interop.x12.envelope import Problem
from openhmo.interop.x12.inquiry270 import Inquiry, Level, Result270
from openhmo.interop.x12.writer import DEFAULT, amount, d8, number
from openhmo.interop.x12.writer import TransactionSet as OutSet
from openhmo.plans.cost_share import CopayUnit
from openhmo.plans.design import CoverageTier, PlanType, TierName

VERSION = "005010X279A1"

# Our service categories as service types. The PCP's office visit is 98; a specialist's
# visit, which in an HMO comes on the PCP's referral, is a consultation (3): X12 has no
# "specialist" code, and a 271 carries codes, not sentences. Specialty drugs have no
# code of their own and are left out.
CATEGORY_SERVICE_TYPE: dict[ServiceCategory, str] = {
    ServiceCategory.PREVENTIVE: "BZ",
    ServiceCategory.PCP_VISIT: "98",
    ServiceCategory.SPECIALIST_VISIT: "3",
    ServiceCategory.OB_GYN_VISIT: "BV",
    ServiceCategory.SCREENING_MAMMOGRAPHY: "CN",
    ServiceCategory.URGENT_CARE: "UC",
    ServiceCategory.EMERGENCY_ROOM: "86",
    ServiceCategory.AMBULANCE: "59",
    ServiceCategory.INPATIENT: "48",
    ServiceCategory.OUTPATIENT_SURGERY: "53",
    ServiceCategory.IMAGING: "4",
    ServiceCategory.ADVANCED_IMAGING: "62",
    ServiceCategory.LAB: "5",
    ServiceCategory.MENTAL_HEALTH_OUTPATIENT: "MH",
    ServiceCategory.MENTAL_HEALTH_INPATIENT: "A7",
    ServiceCategory.MATERNITY: "69",
    ServiceCategory.REHABILITATION: "A9",
    ServiceCategory.CHIROPRACTIC: "33",
    ServiceCategory.DME: "DM",
    ServiceCategory.SKILLED_NURSING: "AG",
    ServiceCategory.HOME_HEALTH: "42",
    ServiceCategory.HOSPICE: "45",
    ServiceCategory.DRUGS_GENERIC: "GF",
    ServiceCategory.DRUGS_PREFERRED_BRAND: "B2",
    ServiceCategory.DRUGS_NON_PREFERRED_BRAND: "B3",
}
_DRUGS = frozenset({"GF", "B2", "B3"})
_MEDICAL = frozenset(CATEGORY_SERVICE_TYPE.values()) - _DRUGS
# A broad service type asked about is answered with the narrower ones it covers.
_BROADER: dict[str, frozenset[str]] = {
    "30": frozenset(CATEGORY_SERVICE_TYPE.values()),
    "1": _MEDICAL,
    "88": _DRUGS,
    "47": frozenset({"48", "53"}),
    "MH": frozenset({"MH", "A7"}),
    "98": frozenset({"98", "3"}),
}
INSURANCE_TYPE = {
    PlanType.HMO: "HM",
    PlanType.PPO: "PR",
    PlanType.POS: "PS",
    PlanType.EPO: "EP",
    PlanType.INDEMNITY: "IN",
}
COVERAGE_LEVEL = {
    CoverageTier.SELF_ONLY: "IND",
    CoverageTier.SELF_PLUS_SPOUSE: "ESP",
    CoverageTier.SELF_PLUS_CHILDREN: "ECH",
    CoverageTier.FAMILY: "FAM",
}
NETWORK = {TierName.IN_NETWORK: "Y", TierName.OUT_OF_NETWORK: "N", TierName.ALL_PROVIDERS: "W"}
PER_UNIT = {CopayUnit.VISIT: "27", CopayUnit.DAY: "7", CopayUnit.STAY: "36"}


@dataclass(frozen=True, slots=True)
class Limit:
    """A deductible (EB01 C) or out-of-pocket maximum (G) and what remains of it."""

    kind: str  # C or G
    level: str  # IND or FAM
    network: str  # EB12: Y in network, N out of network, W not applicable (one tier)
    amount: int  # cents, the plan year's
    remaining: int  # cents
    service_type: str = "30"  # 88 for a separate drug deductible


@dataclass(frozen=True, slots=True)
class CostLine:
    """What the member pays for one service category in one network tier."""

    service_type: str
    network: str
    covered: bool = True
    copay: int | None = None  # cents
    per: str | None = None  # EB06 of the copay: 27 visit, 7 day, 36 admission
    coinsurance: Decimal | None = None  # percent: 20 is 20%
    authorization: bool = False  # a referral or prior authorization is needed
    visit_limit: tuple[str, int, str] | None = None  # (EB09 VS or DY, count, EB06 period)


@dataclass(frozen=True, slots=True)
class Pcp:
    npi: str
    last_name: str
    first_name: str = ""
    organization: bool = False


@dataclass(frozen=True, slots=True)
class Benefits:
    active: bool
    coverage_level: str | None = None  # EB02 of the plan's coverage
    insurance_type: str | None = None  # EB04
    plan_name: str | None = None  # EB05
    period: str = "23"  # EB06 of the limits: 23 calendar year, 22 service (plan) year
    pcp: Pcp | None = None
    limits: tuple[Limit, ...] = ()
    lines: tuple[CostLine, ...] = ()


def asked_service_types(asked: Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """The service types whose cost sharing answers `asked`, and the asked ones we price."""
    wanted: set[str] = set()
    echoed: list[str] = []
    for code in asked:
        if code in _BROADER:
            wanted |= _BROADER[code]
        elif code in CATEGORY_SERVICE_TYPE.values():
            wanted.add(code)
        else:
            continue  # not one we price: the guide says to answer with 30
        if code != "30" and code not in echoed:
            echoed.append(code)
    if not wanted:
        wanted = set(_BROADER["30"])
    return frozenset(wanted), echoed


def benefit_segments(benefits: Benefits, asked: Sequence[str]) -> list[list[str]]:
    """The 271's EB loops (2110C and its 2120C) for one patient, as lists of elements."""
    rep = DEFAULT.repetition
    ins = benefits.insurance_type or ""
    if not benefits.active:
        return [["EB", "6", "", "30"]]
    out = [["EB", "1", benefits.coverage_level or "", "30", ins, text(benefits.plan_name, 50)]]
    wanted, echoed = asked_service_types(asked)
    if echoed:
        out.append(["EB", "1", "", rep.join(echoed), ins])
    if benefits.pcp is not None:
        pcp = benefits.pcp
        name = (
            ["2", text(pcp.last_name, 60), ""]
            if pcp.organization
            else ["1", text(pcp.last_name, 60), text(pcp.first_name, 35)]
        )
        out += [["EB", "L"], ["LS", "2120"], ["NM1", "P3", *name, "", "", "", "XX", pcp.npi]]
        out.append(["LE", "2120"])
    for limit in benefits.limits:
        base = ["EB", limit.kind, limit.level, limit.service_type, ins, ""]
        tail = ["", "", "", "", limit.network]
        out.append([*base, benefits.period, amount(limit.amount), *tail])
        out.append([*base, "29", amount(max(0, limit.remaining)), *tail])
    # Lines that say the same for several service types travel as one EB (EB03 repeats).
    grouped: dict[tuple, list[str]] = {}
    for line in benefits.lines:
        if line.service_type not in wanted:
            continue
        auth = "Y" if line.authorization else ""
        if not line.covered:
            key = ("I", "", "", "", "", "", "", line.network)
            grouped.setdefault(key, []).append(line.service_type)
            continue
        if line.copay is not None or line.coinsurance is None:
            copay = amount(line.copay or 0)
            key = ("B", line.per or "", copay, "", "", "", auth, line.network)
            grouped.setdefault(key, []).append(line.service_type)
        if line.coinsurance is not None:
            fraction = number(line.coinsurance / 100)
            key = ("A", "", "", fraction, "", "", auth, line.network)
            grouped.setdefault(key, []).append(line.service_type)
        if line.visit_limit is not None:
            unit, count, period = line.visit_limit
            key = ("F", period, "", "", unit, str(count), "", line.network)
            grouped.setdefault(key, []).append(line.service_type)
    for (code, per, money, percent, unit, count, auth, network), types in grouped.items():
        row = [code, "", rep.join(types), ins, "", per, money, percent, unit, count, auth]
        out.append(["EB", *row, network])
    return out


@dataclass(frozen=True, slots=True)
class Person:
    """Our member as the 271 names them."""

    member_number: str
    last_name: str
    first_name: str
    birth: date
    sex: str
    plan_key: str | None = None
    address: tuple[str, str, str, str, str] | None = None  # line1, line2, city, state, zip


@dataclass(frozen=True, slots=True)
class Answer:
    person: Person
    benefits: Benefits
    plan_begin: date | None = None  # DTP*346
    eligibility_begin: date | None = None  # DTP*356
    eligibility_end: date | None = None  # DTP*357
    member_id: int | None = None  # our row, for the audit of the disclosure


@dataclass(frozen=True, slots=True)
class Reject:
    """An inquiry answered with AAA: at the subscriber (C) or dependent (D) loop."""

    level: str  # C or D
    code: str  # AAA03
    follow_up: str = "C"  # AAA04: C please correct and resubmit, N do not resubmit
    problems: tuple[Problem, ...] = ()


Outcome = Answer | Reject


def _valid(code: str) -> str:
    """AAA01: Y when the request was valid but names no one we have, N when it is in error."""
    return "Y" if code in ("71", "75", "77") else "N"


# NM108 of the member id a subscriber's NM1 is echoed with; a dependent's has none.
_MEMBER_IDS = ("MI", "II")


def _subscriber(out: OutSet, hl: int, parent: int, inquiry: Inquiry, outcome: Outcome) -> int:
    """Loops 2000C (and 2000D) of one inquiry; returns the last HL number used."""
    hl += 1
    if isinstance(outcome, Reject) and outcome.level == "D":
        dependent = inquiry.dependent
        out.add("HL", hl, parent, "22", "1")
        out.add(*echo_name(inquiry.subscriber, "IL", "12", _MEMBER_IDS))
        out.add("HL", hl + 1, hl, "23", "0")
        echo_traces(out, dependent.traces)
        out.add(*echo_name(dependent, "03", "1", ()))
        out.add("AAA", _valid(outcome.code), "", outcome.code, outcome.follow_up)
        return hl + 1
    out.add("HL", hl, parent, "22", "0")
    echo_traces(out, inquiry.patient.traces)
    if isinstance(outcome, Reject):
        level = inquiry.patient if inquiry.dependent is None else inquiry.subscriber
        out.add(*echo_name(level, "IL", "12", _MEMBER_IDS))
        out.add("AAA", _valid(outcome.code), "", outcome.code, outcome.follow_up)
        return hl
    # The patient has their own member number: the guide answers them as the subscriber.
    person = outcome.person
    out.add(
        "NM1", "IL", "1", text(person.last_name, 60), text(person.first_name, 35),
        "", "", "", "MI", person.member_number,
    )  # fmt: skip
    if person.plan_key:
        out.add("REF", "18", text(person.plan_key, 50))
    if person.address is not None:
        line1, line2, city, state, zip_code = person.address
        out.add("N3", text(line1, 55), text(line2, 55))
        out.add("N4", text(city, 30), state, zip_code)
    out.add("DMG", "D8", d8(person.birth), person.sex if person.sex in ("F", "M", "U") else "")
    for qualifier, day in (
        ("346", outcome.plan_begin),
        ("356", outcome.eligibility_begin),
        ("357", outcome.eligibility_end),
    ):
        if day is not None:
            out.add("DTP", qualifier, "D8", d8(day))
    for segment in benefit_segments(outcome.benefits, inquiry.service_types):
        out.add(*segment)
    return hl


def write_271(
    out: OutSet,
    result: Result270,
    outcomes: Sequence[Outcome],
    *,
    payer_name: str,
    payer_id: str,
    now: datetime,
) -> None:
    """The 271 answering one 270 set: its hierarchy, one 2000C per inquiry, in order."""
    header(out, "0022", result.reference, now)
    tree: dict[str, dict[str, list[tuple[Inquiry, Outcome]]]] = {}
    receivers: dict[str, Level] = {}
    for inquiry, outcome in zip(result.inquiries, outcomes, strict=True):
        receivers[inquiry.receiver.hl] = inquiry.receiver
        tree.setdefault(inquiry.source.hl, {}).setdefault(inquiry.receiver.hl, []).append(
            (inquiry, outcome)
        )
    hl = 0
    for under in tree.values():
        hl += 1
        source = hl
        out.add("HL", source, "", "20", "1")
        # We are the information source, whatever name the inquiry addressed.
        payer_nm1(out, "PR", payer_name, payer_id)
        for receiver_hl, items in under.items():
            hl += 1
            receiver = receivers[receiver_hl]
            out.add("HL", hl, source, "21", "1")
            out.add(
                "NM1", receiver.get(1), receiver.get(2), text(receiver.get(3), 60),
                text(receiver.get(4), 35), text(receiver.get(5), 25), "",
                text(receiver.get(7), 10), receiver.get(8), text(receiver.get(9), 80),
            )  # fmt: skip
            parent = hl
            for inquiry, outcome in items:
                hl = _subscriber(out, hl, parent, inquiry, outcome)
