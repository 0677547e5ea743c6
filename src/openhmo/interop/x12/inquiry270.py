"""270 eligibility and benefit inquiries (005010X279A1), read from their segments.

`InquiryReader` is the handler of a 270 transaction set (see `envelope.read_file`). It
follows the hierarchy (2000A information source, 2000B information receiver, 2000C
subscriber, 2000D dependent) and collects one `Inquiry` per patient asked about: who
(NM1, DMG), on what day (DTP*291; default the day the file is read), for which service
types (EQ01; default 30, the plan's coverage), with the trace numbers (TRN) to echo and
the problems of its own segments. A problem above the subscriber level (BHT, source or
receiver) rejects the set: the 999 says why, and no 271 is written for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from openhmo.interop.x12.elements import Rule, rule
from openhmo.interop.x12.envelope import Problem, TransactionSet
from openhmo.interop.x12.loops import LoopReader, parse_date
from openhmo.interop.x12.syntax import Delimiters, Segment

VERSIONS = ("005010X279A1", "005010X279")  # the base guide's label is read too

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


class InquiryReader(LoopReader):
    """The handler of one 270 transaction set; see the module's docstring."""

    RULES = RULES
    VERSIONS = VERSIONS
    READS = f"270s of {', '.join(VERSIONS)}"

    def __init__(self, ts: TransactionSet, delimiters: Delimiters) -> None:
        super().__init__(ts)
        self.repetition = delimiters.repetition
        self.result = Result270()
        self.levels: dict[str, Level] = {}
        self.order: list[Level] = []
        self.level: Level | None = None
        self.seen_bht = False

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
            self._charge(seg, position, f"segment {sid!r} is not a segment of a 270", "1")
            return
        if sid != "BHT" and not self.seen_bht:
            if not self.result.rejects_set:  # said once: every segment after is as early
                self._charge(seg, position, f"{sid} before BHT: a 270 starts with BHT", "7")
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
        self._check(checked, position)
        handler = getattr(self, "_" + sid, None)
        if handler is not None and sid != "HL":
            handler(seg, position)

    def _BHT(self, seg: Segment, position: int) -> None:
        if self.seen_bht:
            self.result.rejects_set = True
            self._charge(seg, position, "a second BHT", "5")
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
            self._charge(seg, position, f"HL01 {hid!r} is used twice", "8", 1, "7")
        elif code in ("21", "22", "23") and (up is None or up.code != expected):
            self.result.rejects_set = True
            self._charge(
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
            self._charge(seg, position, "NM1 outside an HL loop, or a second one in it", "5")
            return
        level.name = list(seg.elements)
        level.name_at = (position, seg.ordinal, seg.line)
        self.loop = self.loop.replace("2000", "2100")
        allowed = _ENTITIES.get(level.code)
        if allowed is not None and seg.get(1) not in allowed:
            self._charge(
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
            self._charge(seg, position, reason, "8", 8, "7")
        if level.code in ("20", "21") and not (seg.get(8) and seg.get(9)):
            reason = f"NM108/NM109: loop {self.loop} needs an identifier"
            self._charge(seg, position, reason, "8", 9 if seg.get(8) else 8, "1")

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
            self.level.birth = parse_date(seg.get(2))
            self.level.birth_at = (position, seg.ordinal, seg.line)

    def _DTP(self, seg: Segment, position: int) -> None:
        if self.level is None or seg.get(1) != "291":
            return
        start, _, last = seg.get(3).partition("-")
        day, end = parse_date(start), parse_date(last or start)
        if day is None or end is None or end < day or (seg.get(2) == "RD8") != bool(last):
            self._charge(
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
            self._charge(seg, position, "EQ outside a subscriber or dependent loop", "2")
            return
        level.asked = True
        codes = [c for c in seg.get(1).split(self.repetition) if c] if seg.get(1) else []
        bad = [c for c in codes if c not in SERVICE_TYPES]
        if bad:
            self._charge(
                seg,
                position,
                f"EQ01 {', '.join(bad)}: not a service type code",
                "8",
                1,
                "7",
            )
        if not codes and not seg.get(2):
            self._charge(seg, position, "EQ01 or EQ02 is required", "8", 1, "1")
        level.service_types.extend(c for c in codes if c in SERVICE_TYPES)

    def finish(self) -> Result270:
        result = self.result
        if not self.seen_bht:
            result.rejects_set = True
            self._no_header("BHT")
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
