"""834 (005010X220A1) benefit enrollment and maintenance, read from its segments.

`EnrollmentReader` is the handler of an 834 transaction set (see `envelope.read_file`). It
follows the loops of the guide (header, 1000A sponsor, 1000B payer, 1000C broker; per
member 2000 INS, 2100A-H names and addresses, 2200 disability, 2300 health coverage, 2310
providers, 2320/2330 other coverage, 2700/2750 reporting categories) and turns each
member loop, INS up to the next INS, into a `MemberMaintenance` record, given to a sink
as soon as it ends, so a file of any size streams through one member at a time.

A record carries what the sponsor said (maintenance type and reason, identifiers, dates,
name, address, birth date and sex, each HD coverage with its dates and its 2310
providers) and where each value came from (`sources`: segment position and element), so
that whoever refuses a value can name the segment and element that held it. Elements are
checked against `rules834.RULES` (the guide's usage, type, length and codes, as data),
per loop where the codes differ. A problem in a member's own segments rejects that
member only (it is kept in `MemberMaintenance.problems`); a problem in the header
rejects the set.
Nothing here touches the database: openhmo.enrollment.maintenance applies the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from openhmo.interop.x12.elements import Rule
from openhmo.interop.x12.envelope import Problem, Source, TransactionSet
from openhmo.interop.x12.loops import LoopReader, parse_date
from openhmo.interop.x12.rules834 import (
    KNOWN,
    LOOP_RULES,
    MAINTENANCE_TYPES,
    RULES,
    VERSIONS,
)
from openhmo.interop.x12.syntax import Delimiters, Segment

# NM1 entity codes of the member-level name loops other than 2100A/B (2100C to 2100H).
_NAME_LOOPS = {"31": "2100C", "36": "2100D", "M8": "2100E", "S3": "2100F", "45": "2100H"}


@dataclass(slots=True)
class Address834:
    """The member's residence (loop 2100A N3/N4), as the sponsor wrote it."""

    line1: str = ""
    line2: str | None = None
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str | None = None
    county_code: str | None = None  # N406 when N405 is CY

    @property
    def zip5(self) -> str:
        return self.postal_code[:5]


@dataclass(slots=True)
class Provider834:
    """One provider of a coverage (loop 2310): LX, NM1 and the date it takes effect."""

    number: int
    position: int  # LX's position in the set
    entity: str = ""  # NM101: P3 primary care provider, ...
    last_name: str = ""
    first_name: str = ""
    id_qualifier: str = ""  # NM108: XX NPI, SV service provider number, 34, FI
    id_code: str = ""  # NM109
    relationship: str = ""  # NM110: 25 established patient, 26 not, 72 unknown
    effective: date | None = None  # DTP*348
    end: date | None = None  # DTP*349
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def npi(self) -> str | None:
        return self.id_code or None if self.id_qualifier == "XX" else None


@dataclass(slots=True)
class Coverage834:
    """One health coverage (loop 2300): HD, its dates, its references and providers."""

    position: int  # HD's position in the set
    maintenance_type: str = ""  # HD01
    insurance_line: str = ""  # HD03: HLT, HMO, PPO, EPO, POS, DEN, VIS ...
    plan_description: str = ""  # HD04
    coverage_level: str = ""  # HD05: EMP, ESP, ECH, FAM, IND ...
    begin: date | None = None  # DTP*348
    end: date | None = None  # DTP*349
    maintenance_effective: date | None = None  # DTP*303
    class_of_contract: str | None = None  # REF*CE
    references: dict[str, str] = field(default_factory=dict)  # REF01 -> REF02
    providers: list[Provider834] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)


@dataclass(slots=True)
class MemberMaintenance:
    """One member loop: INS up to the next INS, and where each value was read."""

    set_control: str
    position: int  # INS's position in its transaction set
    ordinal: int
    line: int
    subscriber: bool = False  # INS01 Y
    relationship: str = ""  # INS02: 18 self, 01 spouse, 19 child ...
    maintenance_type: str = ""  # INS03
    reason: str = ""  # INS04
    benefit_status: str = ""  # INS05
    employment_status: str = ""  # INS08
    death_date: date | None = None  # INS12
    subscriber_id: str = ""  # REF*0F: the subscriber's identifier, for every member
    group_policy: str | None = None  # REF*1L
    identifiers: dict[str, str] = field(default_factory=dict)  # REF01 -> REF02 (17, 23, ZZ ...)
    eligibility_begin: date | None = None  # DTP*356
    eligibility_end: date | None = None  # DTP*357
    maintenance_effective: date | None = None  # DTP*303
    dates: dict[str, date] = field(default_factory=dict)  # every member-level DTP
    name_entity: str = ""  # NM101: IL, or 74 (a corrected name)
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    suffix: str = ""
    id_qualifier: str = ""  # NM108: 34 social security number, ZZ mutually defined
    id_code: str = ""  # NM109
    previous_last_name: str = ""  # 2100B NM1*70: the name as it was wrongly sent before
    previous_first_name: str = ""
    previous_birth_date: date | None = None
    contacts: list[tuple[str, str]] = field(default_factory=list)  # PER (qualifier, number)
    address: Address834 | None = None
    birth_date: date | None = None
    sex: str = ""
    coverages: list[Coverage834] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def maintenance(self) -> str:
        return MAINTENANCE_TYPES.get(self.maintenance_type, self.maintenance_type)

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def member_identifier(self) -> str | None:
        """The member's own identifier: REF*23 (client number), REF*ZZ, REF*17, else an NM109
        the sponsor and plan agreed on (ZZ). A social security number is never one."""
        for qualifier in ("23", "ZZ", "17"):
            if self.identifiers.get(qualifier):
                return self.identifiers[qualifier]
        return self.id_code or None if self.id_qualifier == "ZZ" else None


@dataclass(slots=True)
class Header834:
    """What the 834 says about itself: BGN, the sponsor (1000A), payer (1000B), broker."""

    purpose: str = ""  # BGN01: 00 original, 15 re-submission, 22 information copy
    reference: str = ""  # BGN02
    created: date | None = None  # BGN03
    action: str = ""  # BGN08: 2 change (update), 4 verify, RX replace
    master_policy: str | None = None  # REF*38
    dates: dict[str, date] = field(default_factory=dict)  # DTP*007 file effective, ...
    sponsor_name: str = ""
    sponsor_id: str = ""
    payer_name: str = ""
    payer_id: str = ""
    broker_name: str = ""


@dataclass(slots=True)
class Result834:
    header: Header834
    members: int
    rejects_set: bool


class EnrollmentReader(LoopReader):
    """The handler of one 834 transaction set; see the module's docstring."""

    RULES = RULES
    KEEP = None  # a problem keeps the whole value, as those of the element rules do
    VERSIONS = VERSIONS
    READS = f"the 834 of {VERSIONS[0]}"

    def __init__(
        self,
        ts: TransactionSet,
        delimiters: Delimiters,
        sink: Callable[[MemberMaintenance], None],
    ) -> None:
        super().__init__(ts)
        self.sink = sink
        self.component = delimiters.component
        self.header = Header834()
        self.seen_bgn = False
        self.seen_n1: set[str] = set()
        self.member: MemberMaintenance | None = None
        self.coverage: Coverage834 | None = None
        self.provider: Provider834 | None = None
        self.members = 0
        self.rejects_set = False
        self.first_member: tuple[int, int, int] | None = None  # where the header ended

    # -- helpers ---------------------------------------------------------------
    def _own(self, problems: list[Problem]) -> None:
        """Charge problems to the member being read, else to the header (the whole set)."""
        if self.member is not None:
            self.member.problems.extend(problems)
        elif problems:
            self.rejects_set = True

    def _rules(self, seg: Segment) -> tuple[Rule, ...] | None:
        return LOOP_RULES.get((seg.id, self.loop)) or RULES.get(seg.id)

    def _date(self, seg: Segment, position: int) -> tuple[date | None, date | None]:
        """DTP03 as (first day, last day); a value that is not a date is the member's problem."""
        form, value = seg.get(2), seg.get(3)
        start, _, end = value.partition("-") if form == "RD8" else (value, "", value)
        first, last = parse_date(start), parse_date(end)
        if value and form in ("D8", "RD8") and (first is None or last is None):
            shape = "CCYYMMDD-CCYYMMDD" if form == "RD8" else "CCYYMMDD"
            reason = f"DTP03 {value!r} is not a date ({shape})"
            self._charge(seg, position, reason, "8", 3, "8")
        return first, last

    def _emit(self) -> None:
        member = self.member
        if member is None:
            return
        self.member = self.coverage = self.provider = None
        # A required segment that is missing is named (as the 999's IK3 names it), at the
        # position of the member's INS.
        where = (member.position, member.ordinal, member.line)
        missing = []
        if "name" not in member.sources:
            missing.append(("NM1", "the member's name (NM1*IL, loop 2100A) is missing", "2100A"))
        if "subscriber_id" not in member.sources:
            missing.append(("REF", "the subscriber identifier (REF*0F) is missing", "2000"))
        for segment, reason, loop in missing:
            problem = Problem(reason, segment, *where, "3", loop=loop)
            self.ts.problems.append(problem)
            member.problems.append(problem)
        self.members += 1
        self.sink(member)

    # -- the segments ------------------------------------------------------------
    def segment(self, seg: Segment, position: int) -> None:
        sid = seg.id
        if sid not in KNOWN:
            self._charge(seg, position, f"segment {sid!r} is not one of an 834", "1")
            return
        if sid == "INS":
            self._emit()  # the previous member ends here; this INS is the new member's own
            self._INS(seg, position)
            self._check(seg, position)
            return
        if not self._enter(seg, position):
            return
        self._check(seg, position)
        handler = getattr(self, "_" + sid, None)
        if handler is not None:
            handler(seg, position)

    def _enter(self, seg: Segment, position: int) -> bool:
        """Follow the loop a segment opens; False when it has no place where it stands."""
        sid, loop = seg.id, self.loop
        if self.member is None:
            if sid not in ("BGN", "REF", "DTP", "QTY", "N1", "ACT"):
                self.rejects_set = True
                self._problem(seg, position, f"{sid} before the first member (INS)", "2")
                return False
            if not self.seen_bgn and sid != "BGN":
                self.rejects_set = True
                self._problem(seg, position, f"{sid} before BGN: an 834 starts with BGN", "7")
                return False
            if sid == "N1":
                entity = seg.get(1)
                self.seen_n1.add(entity)
                self.loop = {"P5": "1000A", "IN": "1000B"}.get(entity, "1000C")
            return True
        if sid == "NM1":
            entity = seg.get(1)
            if loop in ("2310", "2320", "2330"):
                self.loop = "2310" if loop == "2310" else "2330"
            elif entity in ("IL", "74"):
                self.loop = "2100A"
            elif entity == "70":
                self.loop = "2100B"
            else:
                self.loop = _NAME_LOOPS.get(entity, "2100G")
        elif sid == "HD":
            self.loop = "2300"
        elif sid == "LX":
            if loop in ("2700", "2750"):
                self.loop = "2750"
            elif self.coverage is not None and loop in ("2300", "2310"):
                self.loop = "2310"
            else:
                problem = self._problem(seg, position, "LX outside a coverage (HD) loop", "2")
                self.member.problems.append(problem)
                return False
        elif sid == "DSB":
            self.loop = "2200"
        elif sid == "COB":
            self.loop = "2320"
        elif sid == "LS":
            self.loop = "2700"
        elif sid == "LE":
            self.loop = "2000"
        elif sid == "N1" and loop not in ("2700", "2750"):
            reason = "N1 in a member loop belongs to the reporting categories (LS ... LE)"
            self.member.problems.append(self._problem(seg, position, reason, "2"))
            return False
        elif sid in ("BGN", "QTY", "ACT"):
            self.member.problems.append(self._problem(seg, position, f"{sid} after INS", "2"))
            return False
        return True

    def _BGN(self, seg: Segment, position: int) -> None:
        if self.seen_bgn:
            self.rejects_set = True
            self._problem(seg, position, "a second BGN", "5")
            return
        self.seen_bgn = True
        h = self.header
        h.purpose, h.reference, h.action = seg.get(1), seg.get(2), seg.get(8)
        h.created = parse_date(seg.get(3))

    def _N1(self, seg: Segment, position: int) -> None:
        h = self.header
        if self.loop == "1000A":
            h.sponsor_name, h.sponsor_id = seg.get(2), seg.get(4)
        elif self.loop == "1000B":
            h.payer_name, h.payer_id = seg.get(2), seg.get(4)
        elif self.loop == "1000C":
            h.broker_name = seg.get(2)

    def _INS(self, seg: Segment, position: int) -> None:
        self.loop = "2000"
        m = MemberMaintenance(self.ts.control, position, seg.ordinal, seg.line)
        m.subscriber = seg.get(1) == "Y"
        m.relationship, m.maintenance_type, m.reason = seg.get(2), seg.get(3), seg.get(4)
        m.benefit_status, m.employment_status = seg.get(5), seg.get(8)
        names = ("subscriber", "relationship", "maintenance_type", "reason", "benefit_status")
        for n, key in enumerate(names, start=1):
            m.sources[key] = self._src(seg, position, n)
        m.sources["employment_status"] = self._src(seg, position, 8)
        self.member = m
        self.first_member = self.first_member or (position, seg.ordinal, seg.line)
        if not self.seen_bgn:
            self.rejects_set = True
            self._problem(seg, position, "the 834 has no BGN before its first INS", "3")
        if seg.get(12):
            m.death_date = parse_date(seg.get(12))
            m.sources["death_date"] = self._src(seg, position, 12)
            if m.death_date is None and seg.get(11) == "D8":
                reason = f"INS12 {seg.get(12)!r} is not a date (CCYYMMDD)"
                m.problems.append(self._problem(seg, position, reason, "8", 12, "8"))
        # The guide's rule between INS01 and INS02: the subscriber, and only they, are "self".
        if seg.get(1) == "Y" and seg.get(2) not in ("18", ""):
            reason = f"INS02 {seg.get(2)!r}: a subscriber (INS01 Y) is self (18)"
            m.problems.append(self._problem(seg, position, reason, "8", 2, "7"))
        elif seg.get(1) == "N" and seg.get(2) == "18":
            reason = "INS02 18 (self) is the subscriber's: a dependent (INS01 N) is not self"
            m.problems.append(self._problem(seg, position, reason, "8", 2, "7"))

    def _REF(self, seg: Segment, position: int) -> None:
        qualifier, value = seg.get(1), seg.get(2)
        m, loop = self.member, self.loop
        if m is None:
            if qualifier == "38":
                self.header.master_policy = value
        elif loop == "2000":
            if qualifier == "0F":
                m.subscriber_id = value
                m.sources["subscriber_id"] = self._src(seg, position, 2)
            elif qualifier == "1L":
                m.group_policy = value
                m.sources["group_policy"] = self._src(seg, position, 2)
            else:
                m.identifiers[qualifier] = value
                m.sources[f"identifiers.{qualifier}"] = self._src(seg, position, 2)
        elif loop == "2300" and self.coverage is not None:
            c = self.coverage
            c.references[qualifier] = value
            c.sources[f"references.{qualifier}"] = self._src(seg, position, 2)
            if qualifier == "CE":
                c.class_of_contract = value
                c.sources["class_of_contract"] = self._src(seg, position, 2)

    def _DTP(self, seg: Segment, position: int) -> None:
        qualifier = seg.get(1)
        first, last = self._date(seg, position)
        m, loop = self.member, self.loop
        if m is None:
            if first is not None:
                self.header.dates[qualifier] = first
            return
        src = self._src(seg, position, 3)
        if loop == "2000":
            if first is not None:
                m.dates[qualifier] = first
            key = {
                "356": "eligibility_begin",
                "357": "eligibility_end",
                "303": "maintenance_effective",
            }
            if qualifier in key:
                setattr(m, key[qualifier], first)
                m.sources[key[qualifier]] = src
        elif loop == "2300" and self.coverage is not None:
            key = {"348": "begin", "349": "end", "303": "maintenance_effective"}
            if qualifier in key:
                # A range (RD8) of benefit dates gives the begin and the end at once.
                setattr(self.coverage, key[qualifier], last if qualifier == "349" else first)
                self.coverage.sources[key[qualifier]] = src
                if qualifier == "348" and seg.get(2) == "RD8":
                    self.coverage.end = last
                    self.coverage.sources["end"] = src
        elif loop == "2310" and self.provider is not None and qualifier in ("348", "349"):
            key = "effective" if qualifier == "348" else "end"
            setattr(self.provider, key, first)
            self.provider.sources[key] = src

    def _NM1(self, seg: Segment, position: int) -> None:
        m, loop = self.member, self.loop
        if loop == "2100A":
            m.name_entity = seg.get(1)
            m.last_name, m.first_name, m.middle_name = seg.get(3), seg.get(4), seg.get(5)
            m.suffix, m.id_qualifier, m.id_code = seg.get(7), seg.get(8), seg.get(9)
            m.sources["name"] = self._src(seg, position, 3)
            m.sources["last_name"] = self._src(seg, position, 3)
            m.sources["first_name"] = self._src(seg, position, 4)
            m.sources["id_code"] = self._src(seg, position, 9)
        elif loop == "2100B":
            m.previous_last_name, m.previous_first_name = seg.get(3), seg.get(4)
            m.sources["previous_name"] = self._src(seg, position, 3)
        elif loop == "2310" and self.provider is not None:
            p = self.provider
            p.entity, p.last_name, p.first_name = seg.get(1), seg.get(3), seg.get(4)
            p.id_qualifier, p.id_code, p.relationship = seg.get(8), seg.get(9), seg.get(10)
            p.sources["entity"] = self._src(seg, position, 1)
            p.sources["id_qualifier"] = self._src(seg, position, 8)
            p.sources["id_code"] = self._src(seg, position, 9)

    def _PER(self, seg: Segment, position: int) -> None:
        if self.loop == "2100A":
            for n in (3, 5, 7):
                if seg.get(n) and seg.get(n + 1):
                    self.member.contacts.append((seg.get(n), seg.get(n + 1)))

    def _N3(self, seg: Segment, position: int) -> None:
        if self.loop == "2100A":
            m = self.member
            m.address = m.address or Address834()
            m.address.line1, m.address.line2 = seg.get(1), seg.get(2) or None
            m.sources["address"] = self._src(seg, position, 1)

    def _N4(self, seg: Segment, position: int) -> None:
        if self.loop == "2100A":
            m = self.member
            a = m.address = m.address or Address834()
            a.city, a.state, a.postal_code = seg.get(1), seg.get(2), seg.get(3)
            a.country = seg.get(4) or None
            a.county_code = seg.get(6) if seg.get(5) == "CY" else None
            for n, key in ((1, "city"), (2, "state"), (3, "zip_code")):
                m.sources[key] = self._src(seg, position, n)

    def _DMG(self, seg: Segment, position: int) -> None:
        m = self.member
        if self.loop == "2100A":
            m.birth_date, m.sex = parse_date(seg.get(2)), seg.get(3)
            m.sources["birth_date"] = self._src(seg, position, 2)
            m.sources["sex"] = self._src(seg, position, 3)
        elif self.loop == "2100B":
            m.previous_birth_date = parse_date(seg.get(2))

    def _HD(self, seg: Segment, position: int) -> None:
        c = Coverage834(position, seg.get(1), seg.get(3), seg.get(4), seg.get(5))
        for n, key in ((1, "maintenance_type"), (3, "insurance_line"), (4, "plan_description")):
            c.sources[key] = self._src(seg, position, n)
        c.sources["coverage_level"] = self._src(seg, position, 5)
        self.member.coverages.append(c)
        self.coverage, self.provider = c, None

    def _LX(self, seg: Segment, position: int) -> None:
        if self.loop != "2310":
            return
        text = seg.get(1)
        number = int(text) if text.isdigit() else len(self.coverage.providers) + 1
        self.provider = Provider834(number, position)
        self.provider.sources["number"] = self._src(seg, position, 1)
        self.coverage.providers.append(self.provider)

    def finish(self) -> Result834:
        self._emit()
        if not self.seen_bgn:
            self.rejects_set = True
            self._no_header("BGN")
        for entity, who in (("P5", "sponsor"), ("IN", "payer")):
            if entity not in self.seen_n1 and self.seen_bgn:
                self.rejects_set = True
                loop = "1000A" if entity == "P5" else "1000B"
                reason = f"the 834 has no N1*{entity} (the {who}, loop {loop})"
                where = self.first_member or (0, self.ts.ordinal, self.ts.line)
                self.ts.problems.append(Problem(reason, "N1", *where, "3", loop="header"))
        return Result834(self.header, self.members, self.rejects_set)


def collect(records: list[MemberMaintenance]):
    """A handler factory that appends every member of every 834 set to `records`."""

    def factory(ts: TransactionSet, delimiters: Delimiters) -> EnrollmentReader:
        return EnrollmentReader(ts, delimiters, records.append)

    return factory
