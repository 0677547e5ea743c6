"""The envelopes of an X12 file (ISA/IEA, GS/GE, ST/SE), checked, and each transaction set
handed on.

`read_file` walks a file's segments once. It checks every envelope as the 5010 control
segments define them (fixed ISA fields, dates and times, control numbers that match
between header and trailer, counts of groups, sets and segments) and gives each
transaction set's body segments, as they stream by, to the handler registered for its
transaction (837, 834, 270, 278). What it finds wrong is kept where the 999 and TA1
acknowledgements need it:

- an interchange's problems as TA1 note codes (`Interchange.problems`);
- a group's as AK905 codes (`Group.problems`);
- a transaction set's as IK5 codes (`TransactionSet.set_problems`) and its segments' and
  elements' as IK3/IK4 (`TransactionSet.problems`, each a `Problem` naming the segment's
  position in the set, the element, the code and the reason in words).

Where a reader found a value is kept as a `Source`, so that a later refusal of the value
(by our intake, our enrollment rules) names the segment and element it came from.

Nothing is thrown away: a set with a problem in its envelope is rejected as a whole, and
the next one is read; a file that is not X12 at all comes back with `fatal` set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from openhmo.interop.x12.elements import ElementProblem, Rule, check, rule
from openhmo.interop.x12.syntax import Delimiters, Segment, X12FileError, read_segments

# The functional identifier code (GS01) each transaction set travels under.
FUNCTIONAL_ID = {
    "837": "HC",
    "834": "BE",
    "270": "HS",
    "271": "HB",
    "276": "HR",
    "277": "HN",
    "278": "HI",
    "835": "HP",
    "820": "RA",
    "999": "FA",
    "997": "FA",
}

ISA_RULES = (
    rule("M ID 2 2 00,03", "Authorization Information Qualifier"),
    rule("O AN 10 10", "Authorization Information"),
    rule("M ID 2 2 00,01", "Security Information Qualifier"),
    rule("O AN 10 10", "Security Information"),
    rule("M ID 2 2 01,14,20,27,28,29,30,33,ZZ", "Interchange ID Qualifier"),
    rule("M AN 15 15", "Interchange Sender ID"),
    rule("M ID 2 2 01,14,20,27,28,29,30,33,ZZ", "Interchange ID Qualifier"),
    rule("M AN 15 15", "Interchange Receiver ID"),
    rule("M DT 6 6", "Interchange Date"),
    rule("M TM 4 4", "Interchange Time"),
    rule("M AN 1 1", "Repetition Separator"),
    rule("M ID 5 5 00501", "Interchange Control Version Number"),
    rule("M N0 9 9", "Interchange Control Number"),
    rule("M ID 1 1 0,1", "Acknowledgment Requested"),
    rule("M ID 1 1 P,T", "Interchange Usage Indicator"),
    rule("M AN 1 1", "Component Element Separator"),
)
# TA1 note codes for the ISA's elements, in order.
_ISA_NOTES = (
    "010",
    "011",
    "012",
    "013",
    "005",
    "006",
    "007",
    "008",
    "014",
    "015",
    "026",
    "017",
    "018",
    "019",
    "020",
    "027",
)
GS_RULES = (
    rule("M ID 2 2", "Functional Identifier Code"),
    rule("M AN 2 15", "Application Sender's Code"),
    rule("M AN 2 15", "Application Receiver's Code"),
    rule("M DT 8 8", "Date"),
    rule("M TM 4 8", "Time"),
    rule("M N0 1 9", "Group Control Number"),
    rule("M ID 1 2 X", "Responsible Agency Code"),
    rule("M AN 1 12", "Version / Release / Industry Identifier Code"),
)
ST_RULES = (
    rule("M ID 3 3", "Transaction Set Identifier Code"),
    rule("M AN 4 9", "Transaction Set Control Number"),
    rule("O AN 1 35", "Implementation Convention Reference"),
)


@dataclass(slots=True)
class Problem:
    """One thing wrong in a transaction set: a 999 IK3 (and IK4 when it is an element)."""

    reason: str
    segment: str
    position: int  # the segment's position in its transaction set, ST being 1
    ordinal: int  # the segment's position in the file
    line: int
    code: str = "8"  # IK304: 8 = the segment has data element errors
    element: int | None = None
    component: int | None = None
    element_code: str | None = None  # IK403
    value: str | None = None
    loop: str | None = None

    @classmethod
    def of_element(
        cls, seg: Segment, position: int, p: ElementProblem, loop: str | None = None
    ) -> Problem:
        return cls(
            p.reason,
            seg.id,
            position,
            seg.ordinal,
            seg.line,
            "8",
            p.element,
            p.component,
            p.code,
            p.value,
            loop,
        )

    def describe(self, source: str) -> str:
        where = f"{source}, line {self.line}, segment {self.ordinal} ({self.segment}"
        where += f", position {self.position} in its transaction set)" if self.position else ")"
        if self.element:
            where += f", element {self.segment}{self.element:02d}"
            if self.component:
                where += f"-{self.component}"
        return f"{where}: {self.reason}"


class Source(NamedTuple):
    """Where a value was read: the segment, the element (and component) in it, the loop.

    A named tuple, not a dataclass: a claim records one per value it reads, hundreds of
    thousands in a large file, and a tuple is the cheapest to make."""

    segment: str
    position: int
    ordinal: int
    line: int
    element: int
    component: int | None = None
    loop: str | None = None

    def problem(
        self, reason: str, element_code: str | None = None, value: str | None = None
    ) -> Problem:
        """A refusal of the value read here, naming its segment and element."""
        return Problem(
            reason,
            self.segment,
            self.position,
            self.ordinal,
            self.line,
            "8",
            self.element,
            self.component,
            element_code=element_code,
            value=value,
            loop=self.loop,
        )


@dataclass(slots=True)
class Interchange:
    sender_qualifier: str
    sender: str
    receiver_qualifier: str
    receiver: str
    date: str
    time: str
    control: str
    usage: str
    delimiters: Delimiters
    ordinal: int
    line: int
    groups: list[Group] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (TA1 note code, reason)
    # A broken ISA rejects the interchange: nothing in it is applied (TA1 "R"). Problems
    # found later (a wrong IEA, a stray segment) are noted (TA1 "E") on what was applied.
    rejected: bool = False

    @property
    def accepted(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class Group:
    functional_id: str
    sender: str
    receiver: str
    date: str
    time: str
    control: str
    version: str
    ordinal: int
    line: int
    sets: list[TransactionSet] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (AK905 code, reason)
    # A broken GS rejects the group (AK9 "R"), none of its sets applied; a wrong GE, found
    # after its sets went through, is noted (AK9 "E").
    rejected: bool = False


@dataclass(slots=True)
class TransactionSet:
    code: str  # ST01: 837, 834, ...
    control: str  # ST02
    version: str  # ST03, else GS08
    group: Group
    interchange: Interchange
    ordinal: int
    line: int
    segment_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    set_problems: list[tuple[str, str]] = field(default_factory=list)  # (IK502 code, reason)
    result: Any = None

    @property
    def status(self) -> str:
        """IK501: A accepted, E accepted with errors noted, R rejected."""
        if self.set_problems:
            return "R"
        return "E" if self.problems else "A"


class SetHandler(Protocol):
    """Reads one transaction set's body: every segment after ST and before SE."""

    def segment(self, seg: Segment, position: int) -> None: ...

    def finish(self) -> Any: ...


HandlerFactory = Callable[[TransactionSet, Delimiters], SetHandler]


@dataclass(slots=True)
class FileRead:
    source: str
    interchanges: list[Interchange] = field(default_factory=list)
    fatal: X12FileError | None = None

    def sets(self) -> Iterable[TransactionSet]:
        for interchange in self.interchanges:
            for group in interchange.groups:
                yield from group.sets


class _Skip:
    """The body of a set nobody reads (not supported, or its ST is broken)."""

    def segment(self, seg: Segment, position: int) -> None:
        pass

    def finish(self) -> None:
        return None


def _reasons(problems: list[ElementProblem]) -> str:
    return "; ".join(p.reason for p in problems)


class _Reader:
    def __init__(self, source: str, handlers: dict[str, HandlerFactory], on_set) -> None:
        self.read = FileRead(source)
        self.handlers = handlers
        self.on_set = on_set
        self.interchange: Interchange | None = None
        self.group: Group | None = None
        self.ts: TransactionSet | None = None
        self.handler: SetHandler | None = None
        self.position = 0
        self.last: Segment | None = None

    # -- the envelope segments ------------------------------------------------
    def isa(self, d: Delimiters, seg: Segment) -> None:
        if self.interchange is not None:
            self.close_interchange(None)
        ic = Interchange(
            seg.get(5),
            seg.get(6).strip(),
            seg.get(7),
            seg.get(8).strip(),
            seg.get(9),
            seg.get(10),
            seg.get(13),
            seg.get(15),
            d,
            seg.ordinal,
            seg.line,
        )
        raw = list(seg.elements)
        if len(raw) > 16:  # the separators themselves are not data to check
            raw[11], raw[16] = "U", ":"
        for p in check(raw, ISA_RULES, "\x00"):
            ic.problems.append(
                (
                    _ISA_NOTES[p.element - 1] if p.element <= len(_ISA_NOTES) else "022",
                    f"{p.reason} (segment {seg.ordinal}, line {seg.line})",
                )
            )
        ic.rejected = bool(ic.problems)
        self.interchange = ic
        self.read.interchanges.append(ic)

    def gs(self, seg: Segment) -> None:
        ic = self.interchange
        if self.group is not None:
            self.close_group(None)
        group = Group(
            seg.get(1),
            seg.get(2),
            seg.get(3),
            seg.get(4),
            seg.get(5),
            seg.get(6),
            seg.get(8),
            seg.ordinal,
            seg.line,
        )
        problems = check(seg.elements, GS_RULES, ic.delimiters.component)
        if problems:
            group.problems.append(
                (
                    "6" if any(p.element == 6 for p in problems) else "1",
                    f"GS, segment {seg.ordinal}, line {seg.line}: {_reasons(problems)}",
                )
            )
        if group.functional_id not in FUNCTIONAL_ID.values():
            group.problems.append(
                ("1", f"GS01 {group.functional_id!r} is not a functional group OpenHMO knows")
            )
        if group.version and not group.version.startswith("00501"):
            group.problems.append(
                ("2", f"GS08 {group.version!r}: OpenHMO reads X12 5010 (005010...)")
            )
        group.rejected = bool(group.problems) or ic.rejected
        ic.groups.append(group)
        self.group = group

    def st(self, seg: Segment) -> None:
        if self.ts is not None:
            self.close_set(None)
        group = self.group
        ts = TransactionSet(
            seg.get(1),
            seg.get(2),
            seg.get(3) or group.version,
            group,
            self.interchange,
            seg.ordinal,
            seg.line,
        )
        group.sets.append(ts)
        self.ts = ts
        self.position = 1
        problems = check(seg.elements, ST_RULES, self.interchange.delimiters.component)
        for p in problems:
            ts.problems.append(Problem.of_element(seg, 1, p))
        if problems:
            code = "6" if any(p.element == 1 for p in problems) else "7"
            ts.set_problems.append((code, f"ST, segment {seg.ordinal}: {_reasons(problems)}"))
        elif any(other.control == ts.control for other in group.sets[:-1]):
            ts.set_problems.append(
                (
                    "23",
                    f"ST02 {ts.control!r} is used by another transaction set "
                    f"of group {group.control}",
                )
            )
        expected = FUNCTIONAL_ID.get(ts.code)
        if ts.code not in self.handlers:
            ts.set_problems.append(
                (
                    "1",
                    f"transaction set {ts.code!r} is not one OpenHMO accepts "
                    f"({', '.join(sorted(self.handlers))})",
                )
            )
        elif expected != group.functional_id:
            ts.set_problems.append(
                (
                    "6",
                    f"a {ts.code} travels in a group with GS01 {expected!r}, "
                    f"not {group.functional_id!r}",
                )
            )
        if group.rejected and not ts.set_problems:
            ts.set_problems.append(
                (
                    "18",
                    f"its functional group {group.control} (GS, segment {group.ordinal}) is "
                    f"rejected: {'; '.join(r for _, r in group.problems) or 'its interchange is'}",
                )
            )
        if ts.set_problems:
            self.handler = _Skip()
        else:
            self.handler = self.handlers[ts.code](ts, self.interchange.delimiters)

    def se(self, seg: Segment) -> None:
        ts = self.ts
        self.position += 1
        count, control = seg.get(1), seg.get(2)
        if control != ts.control:
            ts.set_problems.append(
                (
                    "3",
                    f"SE02 {control!r} (segment {seg.ordinal}, line {seg.line}) "
                    f"does not match ST02 {ts.control!r}",
                )
            )
        if count != str(self.position):
            ts.set_problems.append(
                (
                    "4",
                    f"SE01 says {count!r} segments (segment {seg.ordinal}, line {seg.line}); "
                    f"the set has {self.position}, ST and SE included",
                )
            )
        self.close_set(seg)

    def ge(self, seg: Segment) -> None:
        if self.ts is not None:
            self.close_set(None)
        group = self.group
        count, control = seg.get(1), seg.get(2)
        if control != group.control:
            group.problems.append(
                (
                    "4",
                    f"GE02 {control!r} (segment {seg.ordinal}) "
                    f"does not match GS06 {group.control!r}",
                )
            )
        if count != str(len(group.sets)):
            group.problems.append(
                (
                    "5",
                    f"GE01 says {count!r} transaction sets (segment {seg.ordinal}); "
                    f"the group has {len(group.sets)}",
                )
            )
        self.group = None

    def iea(self, seg: Segment) -> None:
        if self.group is not None:
            self.close_group(None)
        ic = self.interchange
        count, control = seg.get(1), seg.get(2)
        if control != ic.control:
            ic.problems.append(
                (
                    "001",
                    f"IEA02 {control!r} (segment {seg.ordinal}) "
                    f"does not match ISA13 {ic.control!r}",
                )
            )
        if count != str(len(ic.groups)):
            ic.problems.append(
                (
                    "021",
                    f"IEA01 says {count!r} functional groups (segment {seg.ordinal}); "
                    f"the interchange has {len(ic.groups)}",
                )
            )
        self.interchange = None

    # -- closing what the file left open --------------------------------------
    def close_set(self, seg: Segment | None) -> None:
        ts = self.ts
        if seg is None:
            ts.set_problems.append(
                ("2", f"transaction set {ts.control} (segment {ts.ordinal}) has no SE trailer")
            )
        ts.segment_count = self.position
        try:
            ts.result = self.handler.finish()
        except Exception as exc:  # a handler's bug must not lose the rest of the file
            ts.set_problems.append(("5", f"could not be read: {exc}"))
        if ts.problems and not ts.set_problems and getattr(ts.result, "rejects_set", False):
            ts.set_problems.append(("5", "one or more segments in error"))
        self.ts = None
        self.handler = None
        if self.on_set is not None:
            self.on_set(ts)

    def close_group(self, seg: Segment | None) -> None:
        if self.ts is not None:
            self.close_set(None)
        self.group.problems.append(
            (
                "3",
                f"functional group {self.group.control} (segment {self.group.ordinal}) "
                f"has no GE trailer",
            )
        )
        self.group = None

    def close_interchange(self, seg: Segment | None) -> None:
        if self.group is not None:
            self.close_group(None)
        self.interchange.problems.append(
            (
                "023",
                f"interchange {self.interchange.control} has no IEA trailer: the file ends early",
            )
        )
        self.interchange = None

    # -- one segment ----------------------------------------------------------
    def feed(self, d: Delimiters, seg: Segment) -> None:
        sid = seg.id
        if sid == "ISA":
            self.isa(d, seg)
        elif self.interchange is None:
            self.stray(seg, "after the interchange's IEA")
        elif sid == "GS":
            self.gs(seg)
        elif sid == "IEA":
            self.iea(seg)
        elif sid == "TA1" and self.group is None and not self.interchange.groups:
            pass  # an interchange acknowledgment, before any group: nothing for us to apply
        elif self.group is None:
            self.stray(seg, "outside a functional group (GS ... GE)")
        elif sid == "ST":
            self.st(seg)
        elif sid == "GE":
            self.ge(seg)
        elif self.ts is None:
            self.stray(seg, "outside a transaction set (ST ... SE)")
        elif sid == "SE":
            self.se(seg)
        else:
            self.position += 1
            self.handler.segment(seg, self.position)

    def stray(self, seg: Segment, where: str) -> None:
        reason = f"segment {seg.ordinal} ({seg.id}), line {seg.line}, is {where}"
        if self.interchange is not None:
            self.interchange.problems.append(("024", reason))
        else:
            self.read.fatal = self.read.fatal or X12FileError(
                reason, source=self.read.source, line=seg.line, position=seg.ordinal
            )


def read_file(
    source: str | Path | IO[bytes],
    handlers: dict[str, HandlerFactory],
    *,
    on_set: Callable[[TransactionSet], None] | None = None,
    name: str | None = None,
) -> FileRead:
    """Read every interchange of a file; `on_set` is called as each transaction set ends."""
    label = name or (
        str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
    )
    reader = _Reader(label, handlers, on_set)
    try:
        for d, seg in read_segments(source):
            reader.feed(d, seg)
    except X12FileError as exc:
        exc_source = label
        if reader.interchange is not None:
            reader.interchange.problems.append(("023", exc.reason))
        else:
            reader.read.fatal = X12FileError(
                exc.reason, source=exc_source, line=exc.line, position=exc.position
            )
        if reader.ts is not None:
            reader.close_set(None)
        return reader.read
    if reader.interchange is not None:
        reader.close_interchange(None)
    return reader.read


def check_segment(
    ts: TransactionSet,
    seg: Segment,
    position: int,
    rules: tuple[Rule, ...],
    loop: str | None = None,
) -> bool:
    """Check a body segment's elements; record its problems on the set. True when it is clean."""
    delimiters = ts.interchange.delimiters
    problems = check(seg.elements, rules, delimiters.component, seg.text, delimiters.element)
    for p in problems:
        ts.problems.append(Problem.of_element(seg, position, p, loop))
    return not problems
