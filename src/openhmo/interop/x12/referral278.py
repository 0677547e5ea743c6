"""278 referral requests (005010X217), decided by our referral rules and answered with a 278.

A 278 request carries one patient event: who asks (2010B, the PCP by NPI), for whom
(2010C subscriber, 2010D dependent), what (UM: UM01 SC specialty care or HS health
services review, UM02 I initial, UM03 service type), why (HI diagnoses, ABK/ABF), when
(DTP*AAH at the event or DTP*472 at a service level), how much (HSD*VS visits) and with
whom (NM1*SJ, the specialist by NPI, or a PRV taxonomy for a specialty). Three parts:

- `ReviewReader`, the handler of a 278 set: it reads those values, where each came from
  (segment position and element), and the problems of each loop. A problem in the BHT,
  the UMO or requester's NM1 or the UM segment rejects the set (the 999 says why; there
  is nothing to answer).
- `write_278`, pure: the response from the request as read and a `Decision`.
- `decide` and `Processor.apply`: the database. The request becomes our referral through
  `referrals.service.request_referral` (source "x12-278"), approved at once by the plan's
  rules or left for staff; the same request sent again is answered with the referral it
  made.

The response (005010X217): HCR*A1 certified in total, with our referral number in HCR02
(the guide's "review identification number"; its response has no REF*9F), the validity
in DTP*102/007/036 and the visits in HSD*VS; HCR*A4 pended for staff review (0W), with
the number; HCR*A3 not certified, HCR03 the reason (0E the requester is not the
member's PCP, 09 the specialist is out of network); HCR*NA with 0H when the service
needs no referral; HCR*CT (contact us) for what is not decided electronically here
(admission reviews, renewals, cancellations). A request that cannot be processed gets
AAA in the loop at fault: 2010B (51 provider not on file, 43 no NPI), 2010C/2010D (75
not found, 72 no identifier, 71 birth date differs, 77 dependent not found, 78 not
covered on the date), 2000E (AF diagnoses, 57 dates, 15 missing data, 33 input errors),
or the specialist's NM1 (51, 45 specialty).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.categories import ServiceCategory
from openhmo.enrollment.models import Member
from openhmo.interop.x12.elements import Rule, rule
from openhmo.interop.x12.eligibility270 import SERVICE_TYPES
from openhmo.interop.x12.envelope import Problem, TransactionSet, check_segment
from openhmo.interop.x12.syntax import Delimiters, Segment
from openhmo.interop.x12.writer import DEFAULT, d8
from openhmo.interop.x12.writer import TransactionSet as OutSet
from openhmo.network.models import Provider
from openhmo.referrals.models import Referral
from openhmo.referrals.service import APPROVED, DENIED, ReferralError, request_referral

if TYPE_CHECKING:
    from openhmo.interop.x12.ingest import SetReport

VERSION = "005010X217"

# UM03 (service type) of a referral request, as our service category. A specialty's own
# code (BL cardiac, BK orthopedic, ...) or none at all is a specialist visit.
CATEGORY_OF_SERVICE_TYPE = {
    **dict.fromkeys(("A9", "AC", "AD", "AE", "AF", "PT"), ServiceCategory.REHABILITATION),
    "33": ServiceCategory.CHIROPRACTIC,
    "62": ServiceCategory.ADVANCED_IMAGING,
    "4": ServiceCategory.IMAGING,
    "5": ServiceCategory.LAB,
    **dict.fromkeys(("2", "53"), ServiceCategory.OUTPATIENT_SURGERY),
    **dict.fromkeys(("MH", "A8", "CF", "CH"), ServiceCategory.MENTAL_HEALTH_OUTPATIENT),
    **dict.fromkeys(("BT", "BU", "BV"), ServiceCategory.OB_GYN_VISIT),
    "86": ServiceCategory.EMERGENCY_ROOM,
    "UC": ServiceCategory.URGENT_CARE,
    "BZ": ServiceCategory.PREVENTIVE,
}

# HCR03 (X12 code source 886) and AAA03 for our referral rules' refusals, by message id.
DENIALS = {
    "referral.refused.not_pcp": "0E",  # Provider is Not Primary Care Physician
    "referral.refused.specialist_not_in_network": "09",  # Out of Network
}
INVALID = {  # message id -> (loop, AAA03)
    "referral.refused.not_covered": ("member", "78"),
    "referral.refused.no_specialist": ("2000E", "15"),
    "referral.refused.unknown_specialty": ("provider", "45"),
    "referral.refused.no_diagnosis": ("2000E", "AF"),
    "referral.refused.invalid_diagnosis": ("2000E", "AF"),
    "referral.refused.no_visits": ("2000E", "33"),
    "referral.refused.dates": ("2000E", "57"),
}

_NM1 = (
    rule("M ID 2 3", "Entity Identifier Code"),
    rule("M ID 1 1 1,2", "Entity Type Qualifier"),
    rule("O AN 1 60", "Name Last or Organization Name"),
    rule("O AN 1 35", "Name First"),
    rule("O AN 1 25", "Name Middle"),
    rule("O AN 1 10", "Name Prefix"),
    rule("O AN 1 10", "Name Suffix"),
    rule("O ID 1 2 24,34,46,II,MI,PI,XV,XX", "Identification Code Qualifier"),
    rule("O AN 2 80", "Identification Code"),
    rule("X"),
    rule("X"),
    rule("X"),
)
RULES: dict[str, tuple[Rule, ...]] = {
    "BHT": (
        rule("M ID 4 4 0007", "Hierarchical Structure Code"),
        rule("M ID 2 2 01,13,36", "Transaction Set Purpose Code"),
        rule("M AN 1 50", "Submitter Transaction Identifier"),
        rule("M DT 8 8", "Transaction Set Creation Date"),
        rule("M TM 4 8", "Transaction Set Creation Time"),
        rule("O ID 2 2 RU", "Transaction Type Code"),
    ),
    "HL": (
        rule("M AN 1 12", "Hierarchical ID Number"),
        rule("O AN 1 12", "Hierarchical Parent ID Number"),
        rule("M ID 1 2 20,21,22,23,EV,SS", "Hierarchical Level Code"),
        rule("M ID 1 1 0,1", "Hierarchical Child Code"),
    ),
    "NM1": _NM1,
    "TRN": (
        rule("M ID 1 2 1", "Trace Type Code"),
        rule("M AN 1 50", "Reference Identification"),
        rule("M AN 10 10", "Originating Company Identifier"),
        rule("O AN 1 50", "Reference Identification"),
    ),
    "UM": (
        rule("M ID 1 2 AR,HS,SC", "Request Category Code"),
        rule("M ID 1 1 1,2,3,4,I,R,S", "Certification Type Code"),
        rule(f"O ID 1 2 {','.join(sorted(SERVICE_TYPES))}", "Service Type Code"),
        rule(
            "O C",
            "Health Care Service Location Information",
            rule("M AN 1 2", "Facility Code Value"),
            rule("M ID 1 2 A,B", "Facility Code Qualifier"),
        ),
        rule(
            "O C",
            "Related Causes Information",
            rule("M ID 2 3 AA,AP,EM,OA"),
            rule("O ID 2 3 AA,AP,EM,OA"),
            rule("X"),
            rule("O ID 2 2"),
            rule("O ID 2 3"),
        ),
        rule("O ID 1 2 03,E,U", "Level of Service Code"),
        rule("O ID 1 1", "Current Health Condition Code"),
        rule("O ID 1 1", "Prognosis Code"),
        rule("O ID 1 1", "Release of Information Code"),
        rule("O ID 1 2", "Delay Reason Code"),
    ),
    "DMG": (
        rule("M ID 2 3 D8", "Date Time Period Format Qualifier"),
        rule("M DT 8 8", "Date Time Period"),
        rule("O ID 1 1 F,M,U", "Gender Code"),
    ),
    "DTP": (
        rule("M ID 3 3 439,484,ABC,431,AAH,435,096,472", "Date/Time Qualifier"),
        rule("M ID 2 3 D8,RD8", "Date Time Period Format Qualifier"),
        rule("M AN 1 35", "Date Time Period"),
    ),
    "HSD": (
        rule("O ID 2 2 DY,FL,HS,MN,VS", "Quantity Qualifier"),
        rule("O R 1 15", "Quantity"),
        rule("O ID 2 2 DA,MO,VS,WK,YR", "Unit or Basis for Measurement Code"),
        rule("O R 1 6", "Sample Selection Modulus"),
        rule("O ID 1 2", "Time Period Qualifier"),
        rule("O N0 1 3", "Number of Periods"),
        rule("O ID 1 2", "Ship/Delivery or Calendar Pattern Code"),
        rule("O ID 1 1", "Ship/Delivery Pattern Time Code"),
    ),
    "PRV": (
        rule("M ID 1 3", "Provider Code"),
        rule("O ID 2 3 PXC", "Reference Identification Qualifier"),
        rule("O AN 10 10", "Provider Taxonomy Code"),
    ),
}
# Every segment the guide allows in a 278 request's body.
KNOWN = frozenset(
    {"BHT", "HL", "NM1", "REF", "N3", "N4", "PER", "PRV", "DMG", "INS", "TRN", "UM", "DTP"}
    | {"HI", "HSD", "CRC", "CL1", "CR1", "CR2", "CR5", "CR6", "PWK", "MSG", "SV1", "SV2"}
    | {"SV3", "TOO"}
)
# AAA03 codes of a valid request whose member or provider is not ours (AAA01 Y); the
# others say the request itself is in error (N).
NOT_FOUND = frozenset({"51", "71", "75", "77", "78"})
_DIAGNOSES = {"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR"}
_LOOPS = {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D", "EV": "2000E", "SS": "2000F"}
_PARENT = {"21": ("20",), "22": ("21",), "23": ("22",), "EV": ("22", "23"), "SS": ("EV",)}
_ENTITIES = {  # NM101 of the UMO, requester, subscriber and dependent loops
    "20": frozenset({"2B", "36", "40", "FA", "PR", "X3"}),
    "21": frozenset({"1P", "2B", "36", "40", "FA", "X3"}),
    "22": frozenset({"IL"}),
    "23": frozenset({"QC"}),
}
_PROVIDERS = frozenset(
    {"1T", "71", "72", "73", "77", "AAJ", "DD", "DK", "DN", "FA", "G3", "P3", "QB", "QV", "SJ"}
)


def _day(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _text(value: object, size: int) -> str:
    """Text for an element: ASCII, upper case, none of our delimiters, at most `size` long."""
    text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    for c in (DEFAULT.element, DEFAULT.segment, DEFAULT.component, DEFAULT.repetition):
        text = text.replace(c, " ")
    return " ".join(text.upper().split())[:size]


# --- reading a 278 request -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """Where a value was read: the segment and element, for a problem that names them."""

    segment: str
    position: int
    ordinal: int
    line: int
    element: int
    loop: str

    def problem(self, reason: str, code: str = "7", value: str | None = None) -> Problem:
        return Problem(
            reason,
            self.segment,
            self.position,
            self.ordinal,
            self.line,
            "8",
            self.element,
            element_code=code,
            value=value,
            loop=self.loop,
        )


@dataclass(slots=True)
class Party:
    """A name loop (NM1 and what follows it): who it is, and where that was said."""

    loop: str
    name: list[str]
    at: Where
    taxonomy: str | None = None  # PRV03
    taxonomy_at: Where | None = None
    birth: date | None = None
    birth_at: Where | None = None
    bad: set[tuple[str, int]] = field(default_factory=set)

    def get(self, n: int) -> str:
        return self.name[n] if n < len(self.name) else ""

    @property
    def npi(self) -> str | None:
        return self.get(9).strip() if self.get(8) == "XX" and self.get(9).strip() else None


@dataclass(slots=True)
class Request278:
    """What a 278 request asks, as read, with each loop's problems."""

    reference: str = ""
    purpose: str = ""  # BHT02: 13 request, 01 cancellation
    umo: Party | None = None
    requester: Party | None = None
    subscriber: Party | None = None
    dependent: Party | None = None
    event_at: Where | None = None  # the event's HL
    traces: list[list[str]] = field(default_factory=list)
    um: list[str] = field(default_factory=list)
    dates: dict[str, tuple[str, str, Where]] = field(default_factory=dict)  # by DTP01
    diagnoses: list[tuple[str, str]] = field(default_factory=list)  # (qualifier, code)
    diagnoses_at: Where | None = None
    visits: tuple[str, str, Where] | None = None  # HSD01, HSD02
    providers: list[Party] = field(default_factory=list)  # 2010EA, then 2010F
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # by loop group
    rejects_set: bool = False

    @property
    def specialist(self) -> Party | None:
        return next((p for p in self.providers if p.get(1) == "SJ"), None)


class ReviewReader:
    """The handler of one 278 request set; see the module's docstring."""

    def __init__(self, ts: TransactionSet, delimiters: Delimiters) -> None:
        self.ts = ts
        self.component = delimiters.component
        self.result = Request278()
        self.levels: dict[str, str] = {}  # HL01 -> HL03
        self.level = ""  # HL03 of the loop being read
        self.loop = "header"
        self.party: Party | None = None
        self.seen_bht = False
        self.position = 1
        if ts.version != VERSION:
            ts.set_problems.append(("I6", f"ST03 {ts.version!r}: OpenHMO reads 278s of {VERSION}"))

    def _group(self) -> str:
        """Which part of the request the current loop belongs to, for its problems."""
        if self.level in ("EV", "SS"):
            return "provider" if self.loop in ("2010EA", "2010F") else "2000E"
        return {"22": "2010C", "23": "2010D"}.get(self.level, "header")

    def _where(self, seg: Segment, position: int, element: int) -> Where:
        return Where(seg.id, position, seg.ordinal, seg.line, element, self.loop)

    def _own(self, problems: list[Problem], seg: Segment | None = None) -> None:
        if not problems:
            return
        group = self._group()
        # The set cannot be answered without its header, UMO, requester name, UM, or the
        # subscriber's identifier (the response's 2010C requires it).
        subscriber_id = group == "2010C" and any(p.segment == "NM1" for p in problems)
        if group == "header" or subscriber_id or (seg is not None and seg.id in ("UM", "BHT")):
            self.result.rejects_set = True
        self.result.problems.setdefault(group, []).extend(problems)
        if self.party is not None and group in ("2010C", "2010D", "provider"):
            self.party.bad.update((p.segment, p.element or 0) for p in problems)

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
        self._own([problem], seg)

    def segment(self, seg: Segment, position: int) -> None:
        sid = seg.id
        self.position = position
        if sid not in KNOWN:
            self._problem(seg, position, f"segment {sid!r} is not a segment of a 278 request", "1")
            return
        if sid != "BHT" and not self.seen_bht:
            if not self.result.rejects_set:  # said once: every segment after is as early
                self._problem(seg, position, f"{sid} before BHT: a 278 starts with BHT", "7")
            self.result.rejects_set = True
            return
        if sid in ("HL", "NM1"):
            # These open a loop: their own problems belong to it.
            getattr(self, "_" + sid)(seg, position)
        if sid in RULES:
            before = len(self.ts.problems)
            check_segment(self.ts, seg, position, RULES[sid], self.loop)
            self._own(self.ts.problems[before:], seg)
        handler = getattr(self, "_" + sid, None)
        if handler is not None and sid not in ("HL", "NM1"):
            handler(seg, position)

    def _BHT(self, seg: Segment, position: int) -> None:
        if self.seen_bht:
            self._problem(seg, position, "a second BHT", "5")
            return
        self.seen_bht = True
        self.result.reference, self.result.purpose = seg.get(3), seg.get(2)

    def _HL(self, seg: Segment, position: int) -> None:
        hid, parent, code = seg.get(1), seg.get(2), seg.get(3)
        self.party = None
        self.level = code
        self.loop = _LOOPS.get(code, "2000")
        allowed = _PARENT.get(code)
        if hid in self.levels or (code in self.levels.values() and code != "SS"):
            self.result.rejects_set = True
            self._problem(seg, position, f"HL {hid} (level {code}): one per 278 request", "4")
        elif allowed is not None and self.levels.get(parent) not in allowed:
            self.result.rejects_set = True
            self._problem(
                seg,
                position,
                f"HL02 {parent!r} names no HL of level {' or '.join(allowed)} above this "
                f"level-{code} loop",
                "8",
                2,
                "7",
            )
        self.levels[hid] = code
        if code == "EV":
            self.result.event_at = self._where(seg, position, 1)

    def _NM1(self, seg: Segment, position: int) -> None:
        entity, level, result = seg.get(1), self.level, self.result
        self.loop = {"20": "2010A", "21": "2010B", "22": "2010C", "23": "2010D"}.get(
            level, "2010EA" if level == "EV" else "2010F"
        )
        party = Party(self.loop, list(seg.elements), self._where(seg, position, 9))
        self.party = party
        if not level:
            self._problem(seg, position, "NM1 before the first HL", "7")
            return
        slot = {"20": "umo", "21": "requester", "22": "subscriber", "23": "dependent"}.get(level)
        entities = _ENTITIES.get(level, _PROVIDERS)
        if entity not in entities:
            allowed = ", ".join(sorted(entities))
            self._problem(seg, position, f"NM101 {entity!r}: loop {self.loop} names {allowed}")
        if slot is None:
            result.providers.append(party)
            return
        if getattr(result, slot) is not None:
            self._problem(seg, position, f"a second NM1 in loop {self.loop}", "5")
            return
        setattr(result, slot, party)
        # The response names the UMO, requester and subscriber by their identifiers.
        if level != "23" and not (seg.get(8) and seg.get(9)):
            reason = f"NM108/NM109: loop {self.loop} needs an identifier"
            self._problem(seg, position, reason, "8", 9 if seg.get(8) else 8, "1")
            result.rejects_set = True
        elif level == "22" and seg.get(8) not in ("II", "MI"):
            reason = f"NM108 {seg.get(8)!r}: a subscriber is identified by MI or II"
            self._problem(seg, position, reason, "8", 8, "7")

    def _PRV(self, seg: Segment, position: int) -> None:
        if self.party is not None and seg.get(2) == "PXC":
            self.party.taxonomy = seg.get(3).strip().upper() or None
            self.party.taxonomy_at = self._where(seg, position, 3)

    def _DMG(self, seg: Segment, position: int) -> None:
        if self.party is not None:
            self.party.birth = _day(seg.get(2))
            self.party.birth_at = self._where(seg, position, 2)

    def _TRN(self, seg: Segment, position: int) -> None:
        if self.level == "EV" and not any(p.ordinal == seg.ordinal for p in self.ts.problems):
            self.result.traces.append(list(seg.elements[:5]))

    def _UM(self, seg: Segment, position: int) -> None:
        if self.level == "EV":
            self.result.um = [e.replace(self.component, DEFAULT.component) for e in seg.elements]
        elif self.level != "SS":
            self._problem(seg, position, "UM outside the patient event or a service level", "2")

    def _DTP(self, seg: Segment, position: int) -> None:
        if self.level not in ("EV", "SS"):
            return
        value = seg.get(3)
        start, _, end = value.partition("-")
        first, last = _day(start), _day(end or start)
        ranged = seg.get(2) == "RD8"
        if first is None or last is None or last < first or ranged != bool(end):
            self._problem(
                seg,
                position,
                f"DTP03 {value!r} is not a date (D8, CCYYMMDD) or a range of dates "
                "(RD8, CCYYMMDD-CCYYMMDD) as DTP02 says",
                "8",
                3,
                "8",
            )
            return
        # The event's dates come first; a service level's fill in what the event lacks.
        self.result.dates.setdefault(seg.get(1), (start, end, self._where(seg, position, 3)))

    def _HI(self, seg: Segment, position: int) -> None:
        if self.level != "EV":
            return
        self.result.diagnoses_at = self._where(seg, position, 1)
        for n in range(1, len(seg.elements)):
            parts = seg.elements[n].split(self.component)
            qualifier, code = parts[0], parts[1] if len(parts) > 1 else ""
            if qualifier not in _DIAGNOSES or not code:
                self._problem(
                    seg,
                    position,
                    f"HI{n:02d} {seg.elements[n]!r}: a diagnosis is a code list qualifier "
                    "(ABK, ABF, ...) and a code",
                    "8",
                    n,
                    "7",
                )
                continue
            self.result.diagnoses.append((qualifier, code))

    def _HSD(self, seg: Segment, position: int) -> None:
        if self.level in ("EV", "SS") and self.result.visits is None and seg.get(2):
            self.result.visits = (seg.get(1), seg.get(2), self._where(seg, position, 2))

    def finish(self) -> Request278:
        result = self.result
        if not self.seen_bht:
            result.rejects_set = True
            self.ts.problems.append(
                Problem("the 278 has no BHT", "BHT", 2, self.ts.ordinal + 1, self.ts.line, "3")
            )
        missing = [
            (name, level)
            for name, level, party in (
                ("UMO", "20", result.umo),
                ("requester", "21", result.requester),
                ("subscriber", "22", result.subscriber),
            )
            if party is None
        ]
        if not result.um:
            missing.append(("patient event (HL EV with UM)", "EV"))
        for name, level in missing:
            result.rejects_set = True
            self.ts.problems.append(
                Problem(
                    f"the 278 request has no {name}",
                    "HL" if level == "EV" else "NM1",
                    self.position + 1,
                    self.ts.ordinal,
                    self.ts.line,
                    "3",
                    loop=_LOOPS[level],
                )
            )
        return result


# --- the response, from plain data (pure) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """How the request is answered: an HCR action, or an AAA in the loop at fault."""

    action: str | None = None  # HCR01: A1, A3, A4, NA, CT
    number: str | None = None  # HCR02: our referral number
    reason_code: str | None = None  # HCR03
    # AAA: (the loop, 2010B 2010C 2010D 2000E or provider; AAA03; AAA04)
    aaa: tuple[str, str, str] | None = None
    visits: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    member: tuple[str, str, str] | None = None  # our member: number, last, first
    problems: tuple[Problem, ...] = ()
    referral: Referral | None = None

    @property
    def status(self) -> str:
        """For the report: HCR01 and HCR03 (A3:09), or the AAA's codes (AAA:75:C)."""
        if self.action is not None:
            return ":".join(filter(None, (self.action, self.reason_code)))
        return "AAA:" + ":".join(self.aaa[1:]) if self.aaa else ""


def _name(party: Party, entity: str, kind: str, qualifiers: tuple[str, ...]) -> list[str]:
    """The NM1 as the request sent it, without the elements in error."""

    def part(n: int, size: int) -> str:
        return "" if ("NM1", n) in party.bad else _text(party.get(n), size)

    qualifier = party.get(8) if party.get(8) in qualifiers and ("NM1", 8) not in party.bad else ""
    ident = _text(party.get(9), 80) if qualifier and ("NM1", 9) not in party.bad else ""
    kind = party.get(2) if party.get(2) in tuple(kind) else kind[0]
    # NM106 (prefix) is not used in the response's member loops: it is left out everywhere.
    names = [part(3, 60), part(4, 35), part(5, 25), "", part(7, 10)]
    return ["NM1", entity, kind, *names, qualifier if ident else "", ident]


def write_278(
    out: OutSet, request: Request278, decision: Decision, *, payer_name: str, payer_id: str, now
) -> None:
    """The 278 response to one request."""

    def aaa(where: str) -> None:
        if decision.aaa is not None and decision.aaa[0] == where:
            _, code, follow_up = decision.aaa
            out.add("AAA", "Y" if code in NOT_FOUND else "N", "", code, follow_up)

    out.add("BHT", "0007", "11", _text(request.reference, 50), d8(now), now.strftime("%H%M"))
    out.add("HL", "1", "", "20", "1")
    out.add("NM1", "X3", "2", _text(payer_name, 60), "", "", "", "", "PI", _text(payer_id, 80))
    out.add("HL", "2", "1", "21", "1")
    requester = request.requester
    entity = requester.get(1) if requester.get(1) in _ENTITIES["21"] else "1P"
    out.add(*_name(requester, entity, "12", ("XX", "24", "34", "46", "PI", "XV")))
    aaa("2010B")
    out.add("HL", "3", "2", "22", "1")
    member = decision.member
    if member is not None and request.dependent is None:
        number, last, first = member
        out.add("NM1", "IL", "1", _text(last, 60), _text(first, 35), "", "", "", "MI", number)
    else:
        out.add(*_name(request.subscriber, "IL", "1", ("MI", "II")))
    aaa("2010C")
    hl = 3
    if request.dependent is not None:
        hl += 1
        out.add("HL", hl, hl - 1, "23", "1")
        if member is not None:
            out.add("NM1", "QC", "1", _text(member[1], 60), _text(member[2], 35))
        else:
            out.add(*_name(request.dependent, "QC", "1", ()))
        aaa("2010D")
    out.add("HL", hl + 1, hl, "EV", "0")
    for trace in request.traces:
        out.add("TRN", "2", *(_text(v, 50) for v in trace[2:5]))
    aaa("2000E")
    out.add(*request.um)
    if decision.action is not None:
        out.add("HCR", decision.action, decision.number, decision.reason_code)
    if decision.action == "A1":
        out.add("DTP", "102", "D8", d8(now))
        out.add("DTP", "007", "D8", d8(decision.valid_from))
        out.add("DTP", "036", "D8", d8(decision.valid_to))
        out.add("HSD", "VS", decision.visits)
    for party in request.providers[:1] if request.specialist is None else [request.specialist]:
        entity = party.get(1) if party.get(1) in _PROVIDERS else "SJ"
        out.add(*_name(party, entity, "12", ("XX", "24", "34", "46")))
        aaa("provider")


# --- the decision, with the database -------------------------------------------------------------


def _category(request: Request278) -> ServiceCategory:
    service_type = request.um[3] if len(request.um) > 3 else ""
    return CATEGORY_OF_SERVICE_TYPE.get(service_type, ServiceCategory.SPECIALIST_VISIT)


def _aaa(where: str, code: str, problems: list[Problem], follow_up: str = "C") -> Decision:
    return Decision(aaa=(where, code, follow_up), problems=tuple(problems))


def _read_problems(request: Request278) -> Decision | None:
    """An AAA for a request whose member, event or provider loops are in error."""
    codes = {
        ("2010C", "NM1", 9): "72",
        ("2010C", "NM1", 8): "72",
        ("2010C", "NM1", 3): "73",
        ("2010C", "DMG", 2): "58",
        ("2010D", "NM1", 3): "65",
        ("2010D", "DMG", 2): "58",
        ("2000E", "HI", None): "AF",
        ("2000E", "DTP", None): "57",
        ("2000E", "SV1", None): "AG",
        ("provider", "NM1", 9): "43",
        ("provider", "PRV", None): "45",
    }
    for group in ("2010C", "2010D", "2000E", "provider"):
        problems = request.problems.get(group)
        if not problems:
            continue
        first = problems[0]
        code = codes.get((group, first.segment, first.element)) or codes.get(
            (group, first.segment, None), "15" if group != "2000E" else "33"
        )
        return _aaa(group, code, problems)
    return None


def _member(session: Session, request: Request278) -> Member | Decision:
    subscriber = request.subscriber
    sent = subscriber.get(9).strip().upper()
    if not sent:
        reason = "NM109: the subscriber's member identifier is missing"
        return _aaa("2010C", "72", [subscriber.at.problem(reason, "1")])
    member = session.scalar(select(Member).where(Member.member_number == sent))
    if member is None:
        reason = f"subscriber {sent!r} is not a member of this plan"
        return _aaa("2010C", "75", [subscriber.at.problem(reason, value=sent)])
    if subscriber.birth is not None and subscriber.birth != member.birth_date:
        reason = f"DMG02 {subscriber.birth:%Y%m%d}: not the birth date of member {sent}"
        return _aaa("2010C", "71", [(subscriber.birth_at or subscriber.at).problem(reason)])
    dependent = request.dependent
    if dependent is None:
        return member
    first = dependent.get(4).strip().upper()
    family = session.scalars(
        select(Member).where(Member.subscriber_id == member.subscriber_id).order_by(Member.id)
    ).all()
    matches = [
        m
        for m in family
        if m.id != member.id
        and (dependent.birth is None or m.birth_date == dependent.birth)
        and (not first or m.first_name.upper() == first)
    ]
    if len(matches) == 1 and (dependent.birth is not None or first):
        return matches[0]
    reason = f"dependent {first or '(no name)'} is not in the family of member {sent}"
    return _aaa("2010D", "77", [dependent.at.problem(reason)])


def _provider(session: Session, party: Party, where: str) -> Provider | Decision:
    npi = party.npi
    if npi is None:
        reason = "NM108/NM109: the provider is identified by NPI (XX)"
        return _aaa(where, "43", [party.at.problem(reason, "1")])
    found = session.scalar(select(Provider).where(Provider.npi == npi))
    if found is None:
        reason = f"NPI {npi} is not a provider OpenHMO knows"
        return _aaa(where, "51", [party.at.problem(reason, value=npi)])
    return found


def _dates(request: Request278, today: date) -> tuple[date, date | None]:
    for qualifier in ("AAH", "472"):
        if qualifier in request.dates:
            start, end, _ = request.dates[qualifier]
            return _day(start), _day(end) if end else None
    return today, None  # no date asked for: from the day the request is read


def _visits(request: Request278) -> int | Decision:
    where = request.event_at
    if request.visits is None or request.visits[0] not in ("VS", ""):
        reason = "HSD: a referral states the visits asked for (HSD01 VS, HSD02 the number)"
        return _aaa("2000E", "15", [where.problem(reason, "1")])
    _, quantity, at = request.visits
    try:
        visits = int(quantity)
    except ValueError:
        return _aaa("2000E", "33", [at.problem(f"HSD02 {quantity!r}: visits are a whole number")])
    return visits


def _refusal(request: Request278, exc: ReferralError) -> Decision:
    """Our rules' refusal as the 278 says it, pointing at the element it is about."""
    message = exc.message_id or ""
    specialist = request.specialist
    event = request.event_at
    if message in DENIALS:
        at = (
            request.requester.at
            if message == "referral.refused.not_pcp"
            else (specialist.at if specialist else event)
        )
        return Decision("A3", reason_code=DENIALS[message], problems=(at.problem(str(exc)),))
    if message == "referral.refused.not_needed":
        return Decision("NA", reason_code="0H", problems=(event.problem(str(exc)),))
    where, code = INVALID.get(message, ("2000E", "33"))
    at = {
        "referral.refused.not_covered": request.dates.get("AAH", (0, 0, event))[2],
        "referral.refused.invalid_diagnosis": request.diagnoses_at or event,
        "referral.refused.no_diagnosis": request.diagnoses_at or event,
        "referral.refused.dates": request.dates.get("AAH", (0, 0, event))[2],
        "referral.refused.no_visits": request.visits[2] if request.visits else event,
        "referral.refused.unknown_specialty": (
            specialist.taxonomy_at or specialist.at if specialist else event
        ),
    }.get(message, event)
    if where == "member":
        where = "2010D" if request.dependent is not None else "2010C"
    if where == "provider" and not request.providers:
        where = "2000E"
    return _aaa(where, code, [at.problem(str(exc))], "N" if code == "78" else "C")


def _answer(referral: Referral, member: Member) -> Decision:
    approved = referral.status == APPROVED
    return Decision(
        "A1" if approved else "A4",
        referral.referral_number,
        None if approved else "0W",  # Disposition pending review
        visits=referral.visits,
        valid_from=referral.valid_from,
        valid_to=referral.valid_to,
        member=(member.member_number, member.last_name, member.first_name),
        referral=referral,
    )


def decide(session: Session, request: Request278, *, actor: str, today: date) -> Decision:
    """Read the request against our members, providers and referral rules; store a referral."""
    found = _read_problems(request)
    if found is not None:
        return found
    member = _member(session, request)
    if isinstance(member, Decision):
        return member
    requester = _provider(session, request.requester, "2010B")
    if isinstance(requester, Decision):
        return requester
    ours = (member.member_number, member.last_name, member.first_name)
    um01, um02 = request.um[1], request.um[2]
    if um01 == "AR" or um02 != "I" or request.purpose != "13":
        # Admission reviews, renewals, revisions, appeals and cancellations are staff's.
        reason = f"UM01 {um01} / UM02 {um02} / BHT02 {request.purpose}: not decided electronically"
        return Decision("CT", member=ours, problems=(request.event_at.problem(reason),))
    specialist = None
    party = request.specialist
    if party is not None and party.npi is not None:
        specialist = _provider(session, party, "provider")
        if isinstance(specialist, Decision):
            return specialist
    prefix = party.taxonomy if party is not None and specialist is None else None
    visits = _visits(request)
    if isinstance(visits, Decision):
        return visits
    valid_from, valid_to = _dates(request, today)
    category = _category(request)
    diagnoses = [code for _, code in request.diagnoses]
    duplicate = session.scalar(
        select(Referral)
        .where(
            Referral.member_id == member.id,
            Referral.referring_provider_id == requester.id,
            Referral.specialist_provider_id == (specialist.id if specialist else None),
            Referral.category == category.value,
            Referral.visits == visits,
            Referral.valid_from == valid_from,
            Referral.source == "x12-278",
            Referral.status != DENIED,
        )
        .order_by(Referral.id)
    )
    if duplicate is not None and (valid_to is None or duplicate.valid_to == valid_to):
        return _answer(duplicate, member)  # the same request again: the same answer
    try:
        with session.begin_nested():
            referral = request_referral(
                session,
                member=member,
                referring_provider=requester,
                specialist=specialist,
                specialty_prefix=prefix,
                category=category,
                visits=visits,
                valid_from=valid_from,
                valid_to=valid_to,
                diagnosis_codes=diagnoses,
                actor=actor,
                source="x12-278",
            )
    except ReferralError as exc:
        refused = _refusal(request, exc)
        return replace(refused, member=ours) if refused.aaa is None else refused
    return _answer(referral, member)


# --- the processor for `openhmo x12 ingest` ------------------------------------------------------


class Processor:
    """Reads 278 referral requests and answers each with a 278 response (ingest.SetProcessor)."""

    code = "278"
    answer_code = "278"
    answer_version = VERSION
    answer_functional_id = "HI"

    def reader(self, ts: TransactionSet, delimiters: Delimiters) -> ReviewReader:
        return ReviewReader(ts, delimiters)

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

        request: Request278 | None = ts.result
        if request is None or request.rejects_set:
            return
        decision = decide(session, request, actor=actor, today=now.date())
        entry: dict[str, Any] = {
            "trace": request.traces[0][2] if request.traces else None,
            "member": request.subscriber.get(9) or None,
        }
        if decision.referral is not None:
            referral = decision.referral
            report.applied.append(
                entry
                | {
                    "action": decision.action,
                    "referral_number": referral.referral_number,
                    "status": referral.status,
                    "visits": referral.visits,
                    "valid_from": referral.valid_from.isoformat(),
                    "valid_to": referral.valid_to.isoformat(),
                }
            )
        else:
            report.rejected.append(
                entry
                | {
                    "status": decision.status,
                    "reasons": [p.describe(source) for p in decision.problems],
                }
            )
        if answer is not None:
            info = payer()
            write_278(
                answer, request, decision, payer_name=info.name, payer_id=info.identifier, now=now
            )


def processor() -> Processor:
    return Processor()
