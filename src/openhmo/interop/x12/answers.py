"""What our answers to a provider's request share: the 271 answering a 270 and the 278
response to a 278 request, both written by us as the payer.

- `text`: a value made fit for an element of ours;
- `header`: the answer's BHT, echoing the request's reference;
- `payer_nm1`: our NM1 as the information source (271) or the UMO (278);
- `echo_name`: a person's or provider's NM1 as the request sent it, without the elements
  that were in error (the guides have the answer name whom the request named);
- `echo_traces`: the request's trace numbers, back as references;
- `first_trace`: the trace number a report names a request by.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from openhmo.interop.x12.writer import DEFAULT, TransactionSet, d8


def text(value: object, size: int) -> str:
    """Text for an element: ASCII, upper case, none of our delimiters, at most `size` long."""
    plain = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    for c in (DEFAULT.element, DEFAULT.segment, DEFAULT.component, DEFAULT.repetition):
        plain = plain.replace(c, " ")
    return " ".join(plain.upper().split())[:size]


def header(out: TransactionSet, structure: str, reference: str, now: datetime) -> None:
    """BHT of an answer (BHT02 11, a response), with the request's BHT03 as its reference."""
    out.add("BHT", structure, "11", text(reference, 50), d8(now), now.strftime("%H%M"))


def payer_nm1(out: TransactionSet, entity: str, name: str, identifier: str) -> None:
    """Our NM1: an organization, named by our payer id (PI)."""
    out.add("NM1", entity, "2", text(name, 60), "", "", "", "", "PI", text(identifier, 80))


class Named(Protocol):
    """A name loop as read: its NM1's elements (`get`, NM101 at 1) and those in error."""

    bad: set[tuple[str, int]]  # (segment, element)

    def get(self, n: int) -> str: ...


def echo_name(named: Named, entity: str, kinds: str, qualifiers: Collection[str]) -> list[str]:
    """The NM1 as the request sent it, as NM101 `entity`, without the elements in error.

    NM102 is kept when it is one of `kinds` (else the first of them); NM108/NM109 when
    NM108 is one of `qualifiers` and both are sound. NM106 (prefix) is not used in the
    answers' name loops: it is left out everywhere.
    """

    def part(n: int, size: int) -> str:
        return "" if ("NM1", n) in named.bad else text(named.get(n), size)

    sent = named.get(8)
    qualifier = sent if sent in qualifiers and ("NM1", 8) not in named.bad else ""
    ident = text(named.get(9), 80) if qualifier and ("NM1", 9) not in named.bad else ""
    kind = named.get(2) if named.get(2) in tuple(kinds) else kinds[0]
    names = [part(3, 60), part(4, 35), part(5, 25), "", part(7, 10)]
    return ["NM1", entity, kind, *names, qualifier if ident else "", ident]


def echo_traces(out: TransactionSet, traces: Sequence[Sequence[str]]) -> None:
    """A request's trace numbers (TRN01 1, as read: TRN at 0) come back as references (2)."""
    for trace in traces:
        out.add("TRN", "2", *(text(v, 50) for v in trace[2:5]))


def first_trace(traces: Sequence[Sequence[str]]) -> str | None:
    """TRN02 of a request's first trace number, for the report."""
    return traces[0][2] if traces and len(traces[0]) > 2 else None
