"""278 referral requests (005010X217), read from their segments.

A 278 request carries one patient event: who asks (2010B, the PCP by NPI), for whom
(2010C subscriber, 2010D dependent), what (UM: UM01 SC specialty care or HS health
services review, UM02 I initial, UM03 service type), why (HI diagnoses, ABK/ABF), when
(DTP*AAH at the event or DTP*472 at a service level), how much (HSD*VS visits) and with
whom (NM1*SJ, the specialist by NPI, or a PRV taxonomy for a specialty).

`ReviewReader`, the handler of a 278 set (see `envelope.read_file`), reads those values
into a `Request278`, with where each came from (segment position and element, a
`Source`) and the problems of each loop. A problem in the BHT, the UMO or requester's NM1
or the UM segment rejects the set (the 999 says why; there is nothing to answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from openhmo.interop.x12.elements import Rule, rule
from openhmo.interop.x12.envelope import Problem, Source, TransactionSet
from openhmo.interop.x12.inquiry270 import SERVICE_TYPES
from openhmo.interop.x12.loops import LoopReader, parse_date
from openhmo.interop.x12.syntax import Delimiters, Segment
from openhmo.interop.x12.writer import DEFAULT

VERSION = "005010X217"

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
_DIAGNOSES = {"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR"}
_LOOPS = {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D", "EV": "2000E", "SS": "2000F"}
_PARENT = {"21": ("20",), "22": ("21",), "23": ("22",), "EV": ("22", "23"), "SS": ("EV",)}
ENTITIES = {  # NM101 of the UMO, requester, subscriber and dependent loops
    "20": frozenset({"2B", "36", "40", "FA", "PR", "X3"}),
    "21": frozenset({"1P", "2B", "36", "40", "FA", "X3"}),
    "22": frozenset({"IL"}),
    "23": frozenset({"QC"}),
}
# NM101 of the provider loops (2010EA, 2010F).
PROVIDERS = frozenset(
    {"1T", "71", "72", "73", "77", "AAJ", "DD", "DK", "DN", "FA", "G3", "P3", "QB", "QV", "SJ"}
)


@dataclass(slots=True)
class Party:
    """A name loop (NM1 and what follows it): who it is, and where that was said."""

    loop: str
    name: list[str]
    at: Source
    taxonomy: str | None = None  # PRV03
    taxonomy_at: Source | None = None
    birth: date | None = None
    birth_at: Source | None = None
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
    event_at: Source | None = None  # the event's HL
    traces: list[list[str]] = field(default_factory=list)
    um: list[str] = field(default_factory=list)
    dates: dict[str, tuple[str, str, Source]] = field(default_factory=dict)  # by DTP01
    diagnoses: list[tuple[str, str]] = field(default_factory=list)  # (qualifier, code)
    diagnoses_at: Source | None = None
    visits: tuple[str, str, Source] | None = None  # HSD01, HSD02
    providers: list[Party] = field(default_factory=list)  # 2010EA, then 2010F
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # by loop group
    rejects_set: bool = False

    @property
    def specialist(self) -> Party | None:
        return next((p for p in self.providers if p.get(1) == "SJ"), None)


class ReviewReader(LoopReader):
    """The handler of one 278 request set; see the module's docstring."""

    RULES = RULES
    VERSIONS = (VERSION,)
    READS = f"278s of {VERSION}"

    def __init__(self, ts: TransactionSet, delimiters: Delimiters) -> None:
        super().__init__(ts)
        self.component = delimiters.component
        self.result = Request278()
        self.levels: dict[str, str] = {}  # HL01 -> HL03
        self.level = ""  # HL03 of the loop being read
        self.party: Party | None = None
        self.seen_bht = False
        self.position = 1

    def _group(self) -> str:
        """Which part of the request the current loop belongs to, for its problems."""
        if self.level in ("EV", "SS"):
            return "provider" if self.loop in ("2010EA", "2010F") else "2000E"
        return {"22": "2010C", "23": "2010D"}.get(self.level, "header")

    def _own(self, problems: list[Problem]) -> None:
        """Keep problems with the part of the request they are in (`_group`), where the
        response's AAA will answer them; some reject the set."""
        if not problems:
            return
        group = self._group()
        # The set cannot be answered without its header, UMO, requester name, UM, or the
        # subscriber's identifier (the response's 2010C requires it). The problems are
        # always one segment's.
        subscriber_id = group == "2010C" and any(p.segment == "NM1" for p in problems)
        if group == "header" or subscriber_id or problems[0].segment in ("UM", "BHT"):
            self.result.rejects_set = True
        self.result.problems.setdefault(group, []).extend(problems)
        if self.party is not None and group in ("2010C", "2010D", "provider"):
            self.party.bad.update((p.segment, p.element or 0) for p in problems)

    def segment(self, seg: Segment, position: int) -> None:
        sid = seg.id
        self.position = position
        if sid not in KNOWN:
            self._charge(seg, position, f"segment {sid!r} is not a segment of a 278 request", "1")
            return
        if sid != "BHT" and not self.seen_bht:
            if not self.result.rejects_set:  # said once: every segment after is as early
                self._charge(seg, position, f"{sid} before BHT: a 278 starts with BHT", "7")
            self.result.rejects_set = True
            return
        if sid in ("HL", "NM1"):
            # These open a loop: their own problems belong to it.
            getattr(self, "_" + sid)(seg, position)
        self._check(seg, position)
        handler = getattr(self, "_" + sid, None)
        if handler is not None and sid not in ("HL", "NM1"):
            handler(seg, position)

    def _BHT(self, seg: Segment, position: int) -> None:
        if self.seen_bht:
            self._charge(seg, position, "a second BHT", "5")
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
            self._charge(seg, position, f"HL {hid} (level {code}): one per 278 request", "4")
        elif allowed is not None and self.levels.get(parent) not in allowed:
            self.result.rejects_set = True
            self._charge(
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
            self.result.event_at = self._src(seg, position, 1)

    def _NM1(self, seg: Segment, position: int) -> None:
        entity, level, result = seg.get(1), self.level, self.result
        self.loop = {"20": "2010A", "21": "2010B", "22": "2010C", "23": "2010D"}.get(
            level, "2010EA" if level == "EV" else "2010F"
        )
        party = Party(self.loop, list(seg.elements), self._src(seg, position, 9))
        self.party = party
        if not level:
            self._charge(seg, position, "NM1 before the first HL", "7")
            return
        slot = {"20": "umo", "21": "requester", "22": "subscriber", "23": "dependent"}.get(level)
        entities = ENTITIES.get(level, PROVIDERS)
        if entity not in entities:
            allowed = ", ".join(sorted(entities))
            self._charge(seg, position, f"NM101 {entity!r}: loop {self.loop} names {allowed}")
        if slot is None:
            result.providers.append(party)
            return
        if getattr(result, slot) is not None:
            self._charge(seg, position, f"a second NM1 in loop {self.loop}", "5")
            return
        setattr(result, slot, party)
        # The response names the UMO, requester and subscriber by their identifiers.
        if level != "23" and not (seg.get(8) and seg.get(9)):
            reason = f"NM108/NM109: loop {self.loop} needs an identifier"
            self._charge(seg, position, reason, "8", 9 if seg.get(8) else 8, "1")
            result.rejects_set = True
        elif level == "22" and seg.get(8) not in ("II", "MI"):
            reason = f"NM108 {seg.get(8)!r}: a subscriber is identified by MI or II"
            self._charge(seg, position, reason, "8", 8, "7")

    def _PRV(self, seg: Segment, position: int) -> None:
        if self.party is not None and seg.get(2) == "PXC":
            self.party.taxonomy = seg.get(3).strip().upper() or None
            self.party.taxonomy_at = self._src(seg, position, 3)

    def _DMG(self, seg: Segment, position: int) -> None:
        if self.party is not None:
            self.party.birth = parse_date(seg.get(2))
            self.party.birth_at = self._src(seg, position, 2)

    def _TRN(self, seg: Segment, position: int) -> None:
        if self.level == "EV" and not any(p.ordinal == seg.ordinal for p in self.ts.problems):
            self.result.traces.append(list(seg.elements[:5]))

    def _UM(self, seg: Segment, position: int) -> None:
        if self.level == "EV":
            self.result.um = [e.replace(self.component, DEFAULT.component) for e in seg.elements]
        elif self.level != "SS":
            self._charge(seg, position, "UM outside the patient event or a service level", "2")

    def _DTP(self, seg: Segment, position: int) -> None:
        if self.level not in ("EV", "SS"):
            return
        value = seg.get(3)
        start, _, end = value.partition("-")
        first, last = parse_date(start), parse_date(end or start)
        ranged = seg.get(2) == "RD8"
        if first is None or last is None or last < first or ranged != bool(end):
            self._charge(
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
        self.result.dates.setdefault(seg.get(1), (start, end, self._src(seg, position, 3)))

    def _HI(self, seg: Segment, position: int) -> None:
        if self.level != "EV":
            return
        self.result.diagnoses_at = self._src(seg, position, 1)
        for n in range(1, len(seg.elements)):
            parts = seg.elements[n].split(self.component)
            qualifier, code = parts[0], parts[1] if len(parts) > 1 else ""
            if qualifier not in _DIAGNOSES or not code:
                self._charge(
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
            self.result.visits = (seg.get(1), seg.get(2), self._src(seg, position, 2))

    def finish(self) -> Request278:
        result = self.result
        if not self.seen_bht:
            result.rejects_set = True
            self._no_header("BHT")
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
