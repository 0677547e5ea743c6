"""270 eligibility and benefit inquiries (005010X279A1), answered with a 271.

Three parts, kept apart so that the mapping is tested without a database:

- `InquiryReader`, the handler of a 270 transaction set (see `envelope.read_file`). It
  follows the hierarchy (2000A information source, 2000B information receiver, 2000C
  subscriber, 2000D dependent) and collects one `Inquiry` per patient asked about: who
  (NM1, DMG), on what day (DTP*291; default the day the file is read), for which service
  types (EQ01; default 30, the plan's coverage), with the trace numbers (TRN) to echo and
  the problems of its own segments. A problem above the subscriber level (BHT, source or
  receiver) rejects the set: the 999 says why, and no 271 is written for it.
- Pure mapping: `benefit_segments` builds the 271's EB loops from a `Benefits`, and
  `write_271` the whole answering set from the inquiries and their `Answer` or `Reject`.
- The database: `lookup` finds the member (the dependent by birth date and first name
  under the subscriber's number), asks `eligibility_on`, and reads the plan design, the
  PCP and the family's accumulators of the plan year into a `Benefits`.

What the 271 says (005010X279A1): EB*1 active coverage (EB*6 inactive, with the
eligibility dates) with the coverage level (IND/ESP/ECH/FAM), insurance type (HM, PR,
PS, EP, IN) and plan name; EB*L with the PCP in loop 2120C (NM1*P3, NPI); per network
tier, the deductible (EB*C) and out-of-pocket maximum (EB*G) for the individual and the
family, each as the plan year's amount (EB06 23 calendar year, 22 another plan year) and
what remains (29) from the accumulators; per service type the copay (EB*B, per visit 27,
day 7 or admission 36), coinsurance (EB*A, EB08 a fraction: .2 is 20%), non-covered
services (EB*I) and visit limits (EB*F); EB11 Y where a referral or prior authorization
is needed. A member we do not have is answered AAA*Y**75*C (71 when the birth date differs,
77 when the subscriber is ours but the dependent is not; AAA*N with 72 when no
identifier was sent, 58 for a birth date that is not a date, ...), with the trace number
and the name as sent, never our data.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.categories import ServiceCategory
from openhmo.claims.models import FAMILY_HOLDER, Accumulator
from openhmo.enrollment.eligibility import eligibility_on
from openhmo.enrollment.models import Member, MemberCoverage
from openhmo.enrollment.pcp import pcp_of
from openhmo.enrollment.service import coverage_plan, current_address, tier_on
from openhmo.history.record import record_access
from openhmo.interop.x12.elements import Rule, rule
from openhmo.interop.x12.envelope import Problem, TransactionSet, check_segment
from openhmo.interop.x12.syntax import Delimiters, Segment
from openhmo.interop.x12.writer import DEFAULT, amount, d8, number
from openhmo.interop.x12.writer import TransactionSet as OutSet
from openhmo.network.models import Provider
from openhmo.plans.cost_share import CopayUnit, CostShare
from openhmo.plans.design import CoverageTier, PlanDesign, PlanType, PlanYear, TierName
from openhmo.plans.store import design_of

if TYPE_CHECKING:
    from openhmo.interop.x12.ingest import SetReport

VERSIONS = ("005010X279A1", "005010X279")  # the base guide's label is read too
ANSWER_VERSION = "005010X279A1"

# Service Type Codes (X12 element 1365) the 005010X279A1 guide allows in EQ01.
SERVICE_TYPES = frozenset(
    """
    1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 30 32 33 34 35
    36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65
    66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95
    96 97 98 99 A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB AC AD AE AF AG AH AI AJ AK AL AM AN AO AQ
    AR B1 B2 B3 BA BB BC BD BE BF BG BH BI BJ BK BL BM BN BP BQ BR BS BT BU BV BW BX BY BZ C1
    CA CB CC CD CE CF CG CH CI CJ CK CL CM CN CO CP CQ DG DM DS GF GN GY IC MH NI ON PT PU RN
    RT TC TN UC
    """.split()  # noqa: SIM905 (the code list as the guide prints it)
)

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

_NM1 = (
    rule("M ID 2 3", "Entity Identifier Code"),
    rule("M ID 1 1 1,2", "Entity Type Qualifier"),
    rule("O AN 1 60", "Name Last or Organization Name"),
    rule("O AN 1 35", "Name First"),
    rule("O AN 1 25", "Name Middle"),
    rule("X"),
    rule("O AN 1 10", "Name Suffix"),
    rule("O ID 1 2", "Identification Code Qualifier"),
    rule("O AN 2 80", "Identification Code"),
    rule("X"),
    rule("X"),
    rule("X"),
)
RULES: dict[str, tuple[Rule, ...]] = {
    "BHT": (
        rule("M ID 4 4 0022", "Hierarchical Structure Code"),
        rule("M ID 2 2 01,13", "Transaction Set Purpose Code"),
        rule("O AN 1 50", "Submitter Transactional Identifier"),
        rule("M DT 8 8", "Transaction Set Creation Date"),
        rule("M TM 4 8", "Transaction Set Creation Time"),
        rule("O ID 2 2 RT", "Transaction Type Code"),
    ),
    "HL": (
        rule("M AN 1 12", "Hierarchical ID Number"),
        rule("O AN 1 12", "Hierarchical Parent ID Number"),
        rule("M ID 1 2 20,21,22,23", "Hierarchical Level Code"),
        rule("M ID 1 1 0,1", "Hierarchical Child Code"),
    ),
    "NM1": _NM1,
    "TRN": (
        rule("M ID 1 2 1", "Trace Type Code"),
        rule("M AN 1 50", "Reference Identification"),
        rule("M AN 10 10", "Originating Company Identifier"),
        rule("O AN 1 50", "Reference Identification"),
    ),
    "DMG": (
        rule("M ID 2 3 D8", "Date Time Period Format Qualifier"),
        rule("M DT 8 8", "Date Time Period"),
        rule("O ID 1 1 F,M", "Gender Code"),
    ),
    "DTP": (
        rule("M ID 3 3 102,291", "Date/Time Qualifier"),
        rule("M ID 2 3 D8,RD8", "Date Time Period Format Qualifier"),
        rule("M AN 1 35", "Date Time Period"),
    ),
    "EQ": (
        rule("O AN 1 300", "Service Type Code"),
        rule("O AN 1 300", "Composite Medical Procedure Identifier"),
        rule("O ID 3 3 FAM", "Coverage Level Code"),
        rule("X"),
        rule("O AN 1 300", "Composite Diagnosis Code Pointer"),
    ),
}
# Every segment the guide allows in a 270's body; anything else is not a 270's.
KNOWN = frozenset(
    {"BHT", "HL", "NM1", "TRN", "REF", "N3", "N4", "PRV", "DMG", "INS", "HI", "DTP", "EQ"}
    | {"AMT", "III"}
)
_ENTITIES = {
    "20": frozenset({"2B", "36", "GP", "P5", "PR"}),
    "21": frozenset({"1P", "2B", "36", "80", "FA", "GP", "P5", "PR"}),
    "22": frozenset({"IL"}),
    "23": frozenset({"03"}),
}
_QUALIFIERS = {  # NM108
    "20": frozenset({"24", "46", "FI", "NI", "PI", "XV", "XX"}),
    "21": frozenset({"24", "34", "FI", "PI", "PP", "SV", "XV", "XX"}),
    "22": frozenset({"II", "MI"}),
}
_LOOPS = {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D"}


def _day(text: str) -> date | None:
    """A CCYYMMDD date, or None when the text is not one."""
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


# --- reading a 270 ---------------------------------------------------------------------------


@dataclass(slots=True)
class Level:
    """One HL loop of the inquiry and what its segments said."""

    hl: str
    parent: str
    code: str  # HL03: 20 source, 21 receiver, 22 subscriber, 23 dependent
    position: int
    ordinal: int
    line: int
    name: list[str] | None = None  # NM1 elements, NM101 at [1]
    name_at: tuple[int, int, int] | None = None  # NM1's position, ordinal, line
    traces: list[list[str]] = field(default_factory=list)  # TRN elements
    birth: date | None = None
    birth_at: tuple[int, int, int] | None = None  # DMG's position, ordinal, line
    day: date | None = None
    service_types: list[str] = field(default_factory=list)
    asked: bool = False  # an EQ was read
    children: int = 0
    problems: list[Problem] = field(default_factory=list)
    bad: set[tuple[str, int]] = field(default_factory=set)  # (segment, element) in error

    def get(self, n: int) -> str:
        return self.name[n] if self.name and n < len(self.name) else ""


@dataclass(slots=True)
class Inquiry:
    """One patient asked about: the subscriber, or a dependent under them."""

    source: Level
    receiver: Level
    subscriber: Level
    dependent: Level | None = None

    @property
    def patient(self) -> Level:
        return self.dependent or self.subscriber

    @property
    def day(self) -> date | None:
        return self.patient.day or self.subscriber.day

    @property
    def service_types(self) -> list[str]:
        return self.patient.service_types or ["30"]

    @property
    def traces(self) -> list[list[str]]:
        return self.patient.traces

    @property
    def member_id(self) -> str:
        return self.subscriber.get(9).strip().upper()


@dataclass(slots=True)
class Result270:
    reference: str = ""  # BHT03, echoed in the 271
    inquiries: list[Inquiry] = field(default_factory=list)
    rejects_set: bool = False


class InquiryReader:
    """The handler of one 270 transaction set; see the module's docstring."""

    def __init__(self, ts: TransactionSet, delimiters: Delimiters) -> None:
        self.ts = ts
        self.repetition = delimiters.repetition
        self.result = Result270()
        self.levels: dict[str, Level] = {}
        self.order: list[Level] = []
        self.level: Level | None = None
        self.loop = "header"
        self.seen_bht = False
        if ts.version not in VERSIONS:
            ts.set_problems.append(
                ("I6", f"ST03 {ts.version!r}: OpenHMO reads 270s of {', '.join(VERSIONS)}")
            )

    def _problem(
        self,
        seg: Segment,
        position: int,
        reason: str,
        code: str = "8",
        element: int | None = None,
        element_code: str | None = None,
    ) -> None:
        problem = Problem(
            reason,
            seg.id,
            position,
            seg.ordinal,
            seg.line,
            code,
            element,
            element_code=element_code,
            value=seg.get(element)[:99] if element else None,
            loop=self.loop,
        )
        self.ts.problems.append(problem)
        self._own([problem])

    def _own(self, problems: list[Problem]) -> None:
        """A problem in a patient's loops is that inquiry's; above them, the whole set's."""
        level = self.level
        if level is None or level.code in ("20", "21"):
            if problems:
                self.result.rejects_set = True
            return
        level.problems.extend(problems)
        level.bad.update((p.segment, p.element or 0) for p in problems)

    def segment(self, seg: Segment, position: int) -> None:
        sid = seg.id
        if sid not in KNOWN:
            self._problem(seg, position, f"segment {sid!r} is not a segment of a 270", "1")
            return
        if sid != "BHT" and not self.seen_bht:
            if not self.result.rejects_set:  # said once: every segment after is as early
                self._problem(seg, position, f"{sid} before BHT: a 270 starts with BHT", "7")
            self.result.rejects_set = True
            return
        if sid == "HL":
            self._HL(seg, position)
        checked = seg
        if sid == "EQ":
            self.loop = self.loop.replace("2100", "2110")
            # EQ01 repeats (ISA11): its codes are checked one by one in _EQ.
            elements = [*seg.elements[:1], "", *seg.elements[2:]]
            checked = Segment(elements, seg.ordinal, seg.line)
        if sid in RULES:
            before = len(self.ts.problems)
            check_segment(self.ts, checked, position, RULES[sid], self.loop)
            self._own(self.ts.problems[before:])
        handler = getattr(self, "_" + sid, None)
        if handler is not None and sid != "HL":
            handler(seg, position)

    def _BHT(self, seg: Segment, position: int) -> None:
        if self.seen_bht:
            self.result.rejects_set = True
            self._problem(seg, position, "a second BHT", "5")
            return
        self.seen_bht = True
        self.result.reference = seg.get(3)

    def _HL(self, seg: Segment, position: int) -> None:
        hid, parent, code = seg.get(1), seg.get(2), seg.get(3)
        level = Level(hid, parent, code, position, seg.ordinal, seg.line)
        self.loop = _LOOPS.get(code, "2000")
        expected = {"20": None, "21": "20", "22": "21", "23": "22"}.get(code)
        up = self.levels.get(parent)
        self.level = level
        if hid in self.levels:
            self.result.rejects_set = True
            self._problem(seg, position, f"HL01 {hid!r} is used twice", "8", 1, "7")
        elif code in ("21", "22", "23") and (up is None or up.code != expected):
            self.result.rejects_set = True
            self._problem(
                seg,
                position,
                f"HL02 {parent!r} names no HL of level {expected} above this level-{code} loop",
                "8",
                2,
                "7",
            )
        elif up is not None:
            up.children += 1
        self.levels[hid] = level
        self.order.append(level)

    def _NM1(self, seg: Segment, position: int) -> None:
        level = self.level
        if level is None or level.name is not None:
            self._problem(seg, position, "NM1 outside an HL loop, or a second one in it", "5")
            return
        level.name = list(seg.elements)
        level.name_at = (position, seg.ordinal, seg.line)
        self.loop = self.loop.replace("2000", "2100")
        allowed = _ENTITIES.get(level.code)
        if allowed is not None and seg.get(1) not in allowed:
            self._problem(
                seg,
                position,
                f"NM101 {seg.get(1)!r}: loop {self.loop} names {', '.join(sorted(allowed))}",
                "8",
                1,
                "7",
            )
        qualifiers = _QUALIFIERS.get(level.code, frozenset())
        if seg.get(8) and seg.get(8) not in qualifiers:
            allowed = ", ".join(sorted(qualifiers)) or "none"
            reason = f"NM108 {seg.get(8)!r}: loop {self.loop} takes {allowed}"
            self._problem(seg, position, reason, "8", 8, "7")
        if level.code in ("20", "21") and not (seg.get(8) and seg.get(9)):
            reason = f"NM108/NM109: loop {self.loop} needs an identifier"
            self._problem(seg, position, reason, "8", 9 if seg.get(8) else 8, "1")

    def _TRN(self, seg: Segment, position: int) -> None:
        level = self.level
        # A trace number in error is not echoed: the 271 would carry the error back.
        if (
            level is not None
            and level.code in ("22", "23")
            and not any(p.ordinal == seg.ordinal for p in level.problems)
        ):
            level.traces.append(list(seg.elements[:5]))

    def _DMG(self, seg: Segment, position: int) -> None:
        if self.level is not None:
            self.level.birth = _day(seg.get(2))
            self.level.birth_at = (position, seg.ordinal, seg.line)

    def _DTP(self, seg: Segment, position: int) -> None:
        if self.level is None or seg.get(1) != "291":
            return
        start, _, last = seg.get(3).partition("-")
        day, end = _day(start), _day(last or start)
        if day is None or end is None or end < day or (seg.get(2) == "RD8") != bool(last):
            self._problem(
                seg,
                position,
                f"DTP03 {seg.get(3)!r} is not a date or a range of dates (CCYYMMDD or "
                "CCYYMMDD-CCYYMMDD)",
                "8",
                3,
                "8",
            )
            return
        self.level.day = day

    def _EQ(self, seg: Segment, position: int) -> None:
        level = self.level
        if level is None or level.code not in ("22", "23"):
            self._problem(seg, position, "EQ outside a subscriber or dependent loop", "2")
            return
        level.asked = True
        codes = [c for c in seg.get(1).split(self.repetition) if c] if seg.get(1) else []
        bad = [c for c in codes if c not in SERVICE_TYPES]
        if bad:
            self._problem(
                seg,
                position,
                f"EQ01 {', '.join(bad)}: not a service type code",
                "8",
                1,
                "7",
            )
        if not codes and not seg.get(2):
            self._problem(seg, position, "EQ01 or EQ02 is required", "8", 1, "1")
        level.service_types.extend(c for c in codes if c in SERVICE_TYPES)

    def finish(self) -> Result270:
        result = self.result
        if not self.seen_bht:
            result.rejects_set = True
            self.ts.problems.append(
                Problem("the 270 has no BHT", "BHT", 2, self.ts.ordinal + 1, self.ts.line, "3")
            )
        for level in self.order:
            if level.name is None:
                problem = Problem(
                    f"HL {level.hl} (level {level.code}) has no NM1 naming who it is",
                    "NM1",
                    level.position + 1,
                    level.ordinal,
                    level.line,
                    "3",
                    loop=_LOOPS.get(level.code, "2000").replace("2000", "2100"),
                )
                self.ts.problems.append(problem)
                level.problems.append(problem)
                if level.code in ("20", "21"):
                    result.rejects_set = True
        for level in self.order:
            up = self.levels.get(level.parent)
            if level.code == "22" and (level.asked or not level.children):
                receiver = up
                source = self.levels.get(receiver.parent) if receiver else None
                if receiver and source:
                    result.inquiries.append(Inquiry(source, receiver, level))
            elif level.code == "23" and up is not None:
                receiver = self.levels.get(up.parent)
                source = self.levels.get(receiver.parent) if receiver else None
                if receiver and source:
                    result.inquiries.append(Inquiry(source, receiver, up, level))
        return result


# --- the answer, from plain data (pure) --------------------------------------------------------


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


def _text(value: object, size: int) -> str:
    """Text for an element: ASCII, upper case, none of our delimiters, at most `size` long."""
    text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    for c in (DEFAULT.element, DEFAULT.segment, DEFAULT.component, DEFAULT.repetition):
        text = text.replace(c, " ")
    return " ".join(text.upper().split())[:size]


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
    out = [["EB", "1", benefits.coverage_level or "", "30", ins, _text(benefits.plan_name, 50)]]
    wanted, echoed = asked_service_types(asked)
    if echoed:
        out.append(["EB", "1", "", rep.join(echoed), ins])
    if benefits.pcp is not None:
        pcp = benefits.pcp
        name = (
            ["2", _text(pcp.last_name, 60), ""]
            if pcp.organization
            else ["1", _text(pcp.last_name, 60), _text(pcp.first_name, 35)]
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


def _echo_name(level: Level, entity: str, with_id: bool) -> list[str]:
    """The NM1 as the 270 sent it, without the elements that were in error."""

    def part(n: int, size: int) -> str:
        return "" if ("NM1", n) in level.bad else _text(level.get(n), size)

    kind = level.get(2) if level.get(2) in ("1", "2") and with_id else "1"
    qualifier = part(8, 2) if with_id and level.get(8) in ("MI", "II") else ""
    ident = part(9, 80) if qualifier else ""
    if not ident:
        qualifier = ""
    names = [part(3, 60), part(4, 35), part(5, 25), "", part(7, 10)]
    return ["NM1", entity, kind, *names, qualifier, ident]


def _valid(code: str) -> str:
    """AAA01: Y when the request was valid but names no one we have, N when it is in error."""
    return "Y" if code in ("71", "75", "77") else "N"


def _trn(out: OutSet, level: Level) -> None:
    # A 270's trace numbers (TRN01 1) come back as references (TRN01 2).
    for trace in level.traces:
        out.add("TRN", "2", *(_text(v, 50) for v in trace[2:5]))


def _subscriber(out: OutSet, hl: int, parent: int, inquiry: Inquiry, outcome: Outcome) -> int:
    """Loops 2000C (and 2000D) of one inquiry; returns the last HL number used."""
    hl += 1
    if isinstance(outcome, Reject) and outcome.level == "D":
        dependent = inquiry.dependent
        out.add("HL", hl, parent, "22", "1")
        out.add(*_echo_name(inquiry.subscriber, "IL", True))
        out.add("HL", hl + 1, hl, "23", "0")
        _trn(out, dependent)
        out.add(*_echo_name(dependent, "03", False))
        out.add("AAA", _valid(outcome.code), "", outcome.code, outcome.follow_up)
        return hl + 1
    out.add("HL", hl, parent, "22", "0")
    _trn(out, inquiry.patient)
    if isinstance(outcome, Reject):
        level = inquiry.patient if inquiry.dependent is None else inquiry.subscriber
        out.add(*_echo_name(level, "IL", True))
        out.add("AAA", _valid(outcome.code), "", outcome.code, outcome.follow_up)
        return hl
    # The patient has their own member number: the guide answers them as the subscriber.
    person = outcome.person
    out.add(
        "NM1", "IL", "1", _text(person.last_name, 60), _text(person.first_name, 35),
        "", "", "", "MI", person.member_number,
    )  # fmt: skip
    if person.plan_key:
        out.add("REF", "18", _text(person.plan_key, 50))
    if person.address is not None:
        line1, line2, city, state, zip_code = person.address
        out.add("N3", _text(line1, 55), _text(line2, 55))
        out.add("N4", _text(city, 30), state, zip_code)
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
    out.add("BHT", "0022", "11", _text(result.reference, 50), d8(now), now.strftime("%H%M"))
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
        out.add("NM1", "PR", "2", _text(payer_name, 60), "", "", "", "", "PI", _text(payer_id, 80))
        for receiver_hl, items in under.items():
            hl += 1
            receiver = receivers[receiver_hl]
            out.add("HL", hl, source, "21", "1")
            out.add(
                "NM1", receiver.get(1), receiver.get(2), _text(receiver.get(3), 60),
                _text(receiver.get(4), 35), _text(receiver.get(5), 25), "",
                _text(receiver.get(7), 10), receiver.get(8), _text(receiver.get(9), 80),
            )  # fmt: skip
            parent = hl
            for inquiry, outcome in items:
                hl = _subscriber(out, hl, parent, inquiry, outcome)


# --- the database ------------------------------------------------------------------------------

# AAA03 for a problem in a patient's own segments, by (loop level, segment, element).
_REJECT_CODES = {
    ("22", "NM1", 9): "72",
    ("22", "NM1", 8): "72",
    ("22", "NM1", 3): "73",
    ("22", "NM1", 4): "73",
    ("22", "DMG", 2): "58",
    ("22", "DMG", 3): "74",
    ("23", "NM1", 3): "65",
    ("23", "NM1", 4): "65",
    ("23", "DMG", 2): "58",
    ("23", "DMG", 3): "66",
}


def _level_reject(inquiry: Inquiry) -> Reject | None:
    """The AAA answering an inquiry whose own segments are in error (None when they are not)."""
    for level, where in ((inquiry.subscriber, "C"), (inquiry.dependent, "D")):
        if level is None or not level.problems:
            continue
        first = level.problems[0]
        if first.segment == "DTP":
            code = "56"
        else:
            code = _REJECT_CODES.get((level.code, first.segment, first.element or 0), "15")
        return Reject(where, code, "C", tuple(level.problems))
    return None


def _not_found(level: Level, reason: str, birth: bool = False) -> Problem:
    """A problem at the patient's NM109, or their DMG02 (`birth`)."""
    at = level.birth_at if birth else level.name_at
    position, ordinal, line = at or (level.position, level.ordinal, level.line)
    value = f"{level.birth:%Y%m%d}" if birth and level.birth else level.get(9)[:99] or None
    return Problem(
        reason,
        "DMG" if birth else "NM1",
        position,
        ordinal,
        line,
        "8",
        2 if birth else 9,
        element_code="7",
        value=value,
        loop="2100C" if level.code == "22" else "2100D",
    )


def find_patient(session: Session, inquiry: Inquiry) -> Member | Reject:
    """Our member the inquiry asks about, or the AAA that says why there is none."""
    found = _level_reject(inquiry)
    if found is not None:
        return found
    subscriber = inquiry.subscriber
    sent = inquiry.member_id
    if not sent:
        reason = "NM109: the subscriber's member identifier is missing"
        return Reject("C", "72", "C", (_not_found(subscriber, reason),))
    member = session.scalar(select(Member).where(Member.member_number == sent))
    if member is None:
        reason = f"subscriber {sent!r} is not a member of this plan"
        return Reject("C", "75", "C", (_not_found(subscriber, reason),))
    if subscriber.birth is not None and subscriber.birth != member.birth_date:
        reason = f"DMG02 {subscriber.birth:%Y%m%d}: not the birth date of member {sent}"
        return Reject("C", "71", "C", (_not_found(subscriber, reason, birth=True),))
    dependent = inquiry.dependent
    if dependent is None:
        return member
    family = session.scalars(
        select(Member).where(Member.subscriber_id == member.subscriber_id).order_by(Member.id)
    ).all()
    first = dependent.get(4).strip().upper()
    matches = [
        m
        for m in family
        if (dependent.birth is None or m.birth_date == dependent.birth)
        and (not first or m.first_name.upper() == first)
    ]
    if len(matches) == 1 and (dependent.birth is not None or first):
        return matches[0]
    born = f"{dependent.birth:%Y%m%d}" if dependent.birth else "no birth date"
    reason = f"dependent {first or '(no name)'} ({born}) is not in the family of member {sent}"
    return Reject("D", "77", "C", (_not_found(dependent, reason),))


def _met(session: Session, family_id: int, design: PlanDesign, plan_year: PlanYear) -> dict:
    rows = session.scalars(
        select(Accumulator).where(
            Accumulator.family_id == family_id,
            Accumulator.plan_key == design.id,
            Accumulator.plan_year == plan_year.year,
        )
    )
    return {(a.holder, a.pool, a.kind): a.amount_cents for a in rows}


def _limits(
    met: dict, member_id: int, values, kind: str, pool: str, code: str,
    self_only: bool, network: str, service_type: str = "30",
) -> list[Limit]:  # fmt: skip
    """IND and FAM limits of one accumulator kind, as the adjudication engine applies them.

    Self-only coverage has the individual amount only; an aggregate deductible has the
    family amount only. A member's remaining is also capped by the family's, since
    either one being met meets theirs (DOMAIN.md §4).
    """
    aggregate = getattr(values, "kind", "embedded") == "aggregate"
    mine = met.get((member_id, pool, kind), 0)
    family = met.get((FAMILY_HOLDER, pool, kind), 0)
    out: list[Limit] = []
    family_left = None if self_only else values.family - family
    if self_only or not aggregate:
        left = values.individual - mine
        if family_left is not None:
            left = min(left, family_left)
        out.append(Limit(code, "IND", network, values.individual, left, service_type))
    if not self_only:
        out.append(Limit(code, "FAM", network, values.family, family_left, service_type))
    return out


def _cost_lines(design: PlanDesign, plan_year: PlanYear, period: str) -> list[CostLine]:
    lines: list[CostLine] = []
    for category, benefit in plan_year.benefits.items():
        code = CATEGORY_SERVICE_TYPE.get(category)
        if code is None:
            continue
        referral = (
            design.rules.referral_required
            and category in design.referrals.required_for
            and category not in design.referrals.direct_access
        )
        authorization = referral or design.needs_prior_authorization(plan_year, category)
        limit = None
        if benefit.limit is not None:
            unit = "DY" if benefit.limit.unit == "days" else "VS"
            per = {"plan_year": period, "stay": "36", "lifetime": "32"}[benefit.limit.per]
            limit = (unit, benefit.limit.count, per)
        for tier, share in benefit.cost.items():
            lines.append(_cost_line(code, NETWORK[tier], share, authorization, limit))
    return lines


def _cost_line(code: str, network: str, share: CostShare, authorization: bool, limit) -> CostLine:
    if not share.covered:
        return CostLine(code, network, covered=False)
    return CostLine(
        code,
        network,
        copay=share.copay,
        per=PER_UNIT.get(share.copay_unit) if share.copay is not None else None,
        coinsurance=share.coinsurance,
        authorization=authorization,
        visit_limit=limit,
    )


def benefits_of(
    session: Session, member: Member, design: PlanDesign, coverage, day: date
) -> Benefits:
    """The member's benefits on `day` under `coverage` of plan `design` (which covers them)."""
    tier = tier_on(session, coverage, day)
    plan_year = design.plan_year_on(day)
    assignment = pcp_of(session, member, day)
    pcp = None
    if assignment is not None:
        doctor = session.get(Provider, assignment.provider_id)
        organization = doctor.entity_type == "organization" or not doctor.last_name
        pcp = Pcp(
            doctor.npi,
            (doctor.organization_name or doctor.npi) if organization else doctor.last_name,
            "" if organization else doctor.first_name or "",
            organization,
        )
    base = Benefits(
        True, COVERAGE_LEVEL.get(tier), INSURANCE_TYPE.get(design.type), design.name, pcp=pcp
    )
    if plan_year is None:
        return base
    calendar = (plan_year.starts.month, plan_year.starts.day) == (1, 1) and (
        plan_year.ends.month,
        plan_year.ends.day,
    ) == (12, 31)
    period = "23" if calendar else "22"
    met = _met(session, member.subscriber_id or member.id, design, plan_year)
    self_only = tier is CoverageTier.SELF_ONLY
    limits: list[Limit] = []
    for tier_name, network_tier in plan_year.tiers.items():
        # Cross-accumulating tiers share one pool, as the engine keeps them.
        pool = (
            "combined"
            if plan_year.accumulation == "cross"
            and tier_name in (TierName.IN_NETWORK, TierName.OUT_OF_NETWORK)
            else tier_name.value
        )
        network = NETWORK[tier_name]
        args = (met, member.id)
        limits += _limits(
            *args, network_tier.deductible, "deductible", pool, "C", self_only, network
        )
        if network_tier.drug_deductible is not None:
            limits += _limits(
                *args, network_tier.drug_deductible, "drug_deductible", pool, "C",
                self_only, network, "88",
            )  # fmt: skip
        limits += _limits(
            *args, network_tier.out_of_pocket_max, "out_of_pocket", pool, "G", self_only, network
        )
    lines = tuple(_cost_lines(design, plan_year, period))
    return replace(base, period=period, limits=tuple(limits), lines=lines)


def _person(session: Session, member: Member, plan_key: str | None, day: date) -> Person:
    home = current_address(session, member, day)
    address = (home.line1, home.line2 or "", home.city, home.state, home.zip_code) if home else None
    return Person(
        member.member_number,
        member.last_name,
        member.first_name,
        member.birth_date,
        member.sex,
        plan_key,
        address,
    )


def lookup(session: Session, inquiry: Inquiry, day: date) -> Outcome:
    """The answer to one inquiry on `day`: the member's coverage and benefits, or an AAA."""
    member = find_patient(session, inquiry)
    if isinstance(member, Reject):
        return member
    eligibility = eligibility_on(session, member.member_number, day)
    spans = session.scalars(
        select(MemberCoverage)
        .where(MemberCoverage.member_id == member.id)
        .order_by(MemberCoverage.effective_date)
    ).all()
    # The span of that day, else the last one before it, else the first after it.
    before = [s for s in spans if s.effective_date <= day]
    span = before[-1] if before else (spans[0] if spans else None)
    coverage = eligibility.coverage or (span.coverage if span is not None else None)
    design = design_of(coverage_plan(session, coverage)) if coverage is not None else None
    person = _person(session, member, design.id if design else None, day)
    begin = span.effective_date if span is not None else None
    end = span.termination_date if span is not None else None
    if not eligibility.covered or design is None:
        return Answer(person, Benefits(False), None, begin, end, member.id)
    plan_year = design.plan_year_on(day)
    benefits = benefits_of(session, member, design, coverage, day)
    starts = plan_year.starts if plan_year else None
    return Answer(person, benefits, starts, begin, end, member.id)


# --- the processor for `openhmo x12 ingest` ----------------------------------------------------


def _trace(inquiry: Inquiry) -> str | None:
    return inquiry.traces[0][2] if inquiry.traces and len(inquiry.traces[0]) > 2 else None


class Processor:
    """Reads 270 sets and answers each with a 271 (see ingest.SetProcessor)."""

    code = "270"
    answer_code = "271"
    answer_version = ANSWER_VERSION
    answer_functional_id = "HB"

    def reader(self, ts: TransactionSet, delimiters: Delimiters) -> InquiryReader:
        return InquiryReader(ts, delimiters)

    def apply(
        self,
        session: Session,
        ts: TransactionSet,
        report: SetReport,
        answer: OutSet | None,
        *,
        actor: str,
        now: datetime,
        source: str,
    ) -> None:
        from openhmo.interop.x12.ingest import payer  # the shell, imported when it runs

        result: Result270 | None = ts.result
        if result is None:
            return
        outcomes: list[Outcome] = []
        for inquiry in result.inquiries:
            day = inquiry.day or now.date()
            outcome = lookup(session, inquiry, day)
            outcomes.append(outcome)
            entry: dict[str, Any] = {
                "trace": _trace(inquiry),
                "member": inquiry.member_id or None,
                "date": day.isoformat(),
            }
            if isinstance(outcome, Reject):
                report.rejected.append(
                    entry
                    | {
                        "status": f"AAA:{outcome.code}:{outcome.follow_up}",
                        "reasons": [p.describe(source) for p in outcome.problems],
                    }
                )
                continue
            person = outcome.person
            # A 271 discloses the member's coverage to a provider: the read is audited.
            record_access(
                session,
                actor=actor,
                member_id=outcome.member_id,
                purpose=f"eligibility inquiry (X12 270) from {inquiry.receiver.get(9) or '?'}",
                what=f"271 eligibility and benefits on {day.isoformat()}",
            )
            report.applied.append(
                entry
                | {
                    "member_number": person.member_number,
                    "status": "active" if outcome.benefits.active else "inactive",
                    "plan": person.plan_key,
                    "service_types": inquiry.service_types,
                }
            )
        if answer is not None and result.inquiries:
            payer_info = payer()
            write_271(
                answer,
                result,
                outcomes,
                payer_name=payer_info.name,
                payer_id=payer_info.identifier,
                now=now,
            )


def processor() -> Processor:
    return Processor()
