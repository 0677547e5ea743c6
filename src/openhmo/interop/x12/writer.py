"""Writing X12: segments, and the ISA/GS/ST envelopes around them with their counts.

`Interchange` collects functional groups of transaction sets and renders the whole
interchange: ISA's fixed-width fields padded, control numbers in header and trailer,
SE01 counting the set's segments (ST and SE included), GE01 the sets, IEA01 the groups.
Trailing empty elements and components are dropped, as the standard requires.
Amounts are written from integer cents (`amount`), never from floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from openhmo.interop.x12.syntax import Delimiters
from openhmo.money import MoneyError, parse_money

if TYPE_CHECKING:
    from openhmo.interop.x12 import envelope

DEFAULT = Delimiters("*", ":", "^", "~")
# ISA05/ISA07: the interchange id qualifiers; a sender's broken one is answered as ZZ.
ID_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})


def amount(cents: int) -> str:
    """Cents as an X12 decimal (R): "125", "125.5", "-3.07"; no trailing zeros, no float."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    if frac == 0:
        return f"{sign}{whole}"
    text = f"{frac:02d}".rstrip("0")
    return f"{sign}{whole}.{text}"


def cents(text: str) -> int | None:
    """An X12 decimal (R) as exact cents, the inverse of `amount`; None when it is not an
    amount of whole cents (a fraction of a cent is refused, never rounded)."""
    try:
        return parse_money(text)
    except MoneyError:
        return None


def number(value) -> str:
    """A quantity (Decimal or int) without needless zeros: 1, 1.5, 0.25."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def composite(*parts: object, separator: str = ":") -> str:
    """A composite element; trailing empty components are dropped."""
    values = ["" if p is None else str(p) for p in parts]
    while values and values[-1] == "":
        values.pop()
    return separator.join(values)


def d8(day) -> str:
    return day.strftime("%Y%m%d")


@dataclass(slots=True)
class TransactionSet:
    code: str
    control: str
    version: str
    segments: list[list[str]] = field(default_factory=list)

    def add(self, *elements: object) -> None:
        """A segment; None and "" become empty elements, trailing ones are dropped."""
        values = ["" if e is None else str(e) for e in elements]
        while values and values[-1] == "":
            values.pop()
        self.segments.append(values)

    def __len__(self) -> int:
        return len(self.segments) + 2  # ST and SE


@dataclass(slots=True)
class Group:
    functional_id: str
    sender: str
    receiver: str
    control: int
    version: str
    sets: list[TransactionSet] = field(default_factory=list)

    def new_set(self, code: str, version: str | None = None) -> TransactionSet:
        ts = TransactionSet(code, f"{len(self.sets) + 1:04d}", version or self.version)
        self.sets.append(ts)
        return ts


@dataclass(slots=True)
class Interchange:
    """One outgoing interchange. Sender and receiver are (qualifier, id) pairs."""

    sender: tuple[str, str]
    receiver: tuple[str, str]
    control: int
    moment: datetime
    usage: str = "P"
    delimiters: Delimiters = DEFAULT
    acknowledgment_requested: str = "0"
    groups: list[Group] = field(default_factory=list)
    ta1: list[list[str]] = field(default_factory=list)  # TA1 segments, before the groups

    def new_group(
        self,
        functional_id: str,
        version: str,
        sender: str | None = None,
        receiver: str | None = None,
    ) -> Group:
        group = Group(
            functional_id,
            sender or self.sender[1],
            receiver or self.receiver[1],
            len(self.groups) + 1,
            version,
        )
        self.groups.append(group)
        return group

    def _line(self, elements: list[str]) -> str:
        d = self.delimiters
        # Data never carries our element separator or segment terminator (a name with a
        # '*' in it, an id copied from a broken file): they would split the segment.
        clean = [e.replace(d.element, " ").replace(d.segment, " ") for e in elements[1:]]
        return d.element.join([elements[0], *clean]) + d.segment

    @staticmethod
    def _qualifier(value: str) -> str:
        return value if value in ID_QUALIFIERS else "ZZ"

    @staticmethod
    def _identifier(value: str) -> str:
        text = "".join(c if c.isascii() and (c.isalnum() or c in " .-_") else " " for c in value)
        return text[:15].ljust(15) if text.strip() else "UNKNOWN".ljust(15)

    def render(self, newline: bool = True) -> str:
        d = self.delimiters
        end = "\n" if newline else ""
        when = self.moment
        isa = [
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            self._qualifier(self.sender[0]),
            self._identifier(self.sender[1]),
            self._qualifier(self.receiver[0]),
            self._identifier(self.receiver[1]),
            when.strftime("%y%m%d"),
            when.strftime("%H%M"),
            d.repetition,
            "00501",
            f"{self.control % 1_000_000_000:09d}",
            self.acknowledgment_requested,
            self.usage if self.usage in ("P", "T") else "P",
            d.component,
        ]
        out = [self._line(isa)]
        out.extend(self._line(t) for t in self.ta1)
        for group in self.groups:
            out.append(
                self._line(
                    [
                        "GS",
                        group.functional_id,
                        group.sender,
                        group.receiver,
                        when.strftime("%Y%m%d"),
                        when.strftime("%H%M"),
                        str(group.control % 1_000_000_000),
                        "X",
                        group.version,
                    ]
                )
            )
            for ts in group.sets:
                out.append(self._line(["ST", ts.code, ts.control, ts.version]))
                out.extend(self._line(s) for s in ts.segments)
                out.append(self._line(["SE", str(len(ts)), ts.control]))
            out.append(self._line(["GE", str(len(group.sets)), str(group.control % 1_000_000_000)]))
        out.append(
            self._line(["IEA", str(len(self.groups)), f"{self.control % 1_000_000_000:09d}"])
        )
        return end.join(out) + end


def answering(
    received: envelope.Interchange, *, control: int, moment: datetime, sender: str, receiver: str
) -> Interchange:
    """The interchange answering `received`: from its receiver back to its sender, with its
    usage (production or test); `sender` and `receiver` stand in for ids it lacks."""
    return Interchange(
        sender=(received.receiver_qualifier or "ZZ", received.receiver or sender),
        receiver=(received.sender_qualifier or "ZZ", received.sender or receiver),
        control=control,
        moment=moment,
        usage=received.usage if received.usage in ("P", "T") else "P",
    )
