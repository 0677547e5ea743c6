"""Whether an 835 balances, checked on the file as written (005010X221A1).

`check_balance` reads a finished file back (`syntax.read_segments`) and answers with what
does not balance, naming the transaction set, the line and the rule, so that a test or
the CLI verifies what was written, not what was meant. The rules are the guide's
section on balancing (see `remit835`):

- per service line: SVC02 - sum(the line's CAS) = SVC03;
- per claim: CLP03 - sum(every CAS of the claim, claim and lines) = CLP04;
- CLP05 (patient responsibility) = sum of the claim's PR adjustments;
- BPR02 = sum(CLP04) - sum(PLB amounts), BPR02 is never negative, and BPR04 is NON
  exactly when nothing is paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from openhmo.interop.x12.syntax import read_segments
from openhmo.interop.x12.writer import amount, cents


@dataclass(slots=True)
class _Claim:
    clp: list[str]
    line: int
    cas: list[tuple[str, int]] = field(default_factory=list)  # every CAS of the claim
    svc: list[str] | None = None
    svc_line: int = 0
    svc_cas: int = 0


def _cents(text: str) -> int:
    """An X12 decimal as cents, exactly; a fraction of a cent or no number raises."""
    found = cents(text or "0")
    if found is None:
        raise ValueError(f"{text!r} is not an amount, or has a fraction of a cent")
    return found


def _get(elements: list[str], n: int) -> str:
    return elements[n] if n < len(elements) else ""


class _Checker:
    """Walks the segments of one file; `problems` says what does not balance, and where."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sets = 0
        self._reset("")

    def _reset(self, control: str) -> None:
        self.control = control
        self.bpr: tuple[int, str, int] | None = None
        self.paid = 0
        self.plb = 0
        self.claim: _Claim | None = None

    def _problem(self, line: int, text: str) -> None:
        self.problems.append(f"835 {self.control}, line {line}: {text}")

    def _end_line(self) -> None:
        c = self.claim
        if c is None or c.svc is None:
            return
        charge, paid = _cents(_get(c.svc, 2)), _cents(_get(c.svc, 3))
        if charge - c.svc_cas != paid:
            self._problem(
                c.svc_line,
                f"SVC {_get(c.svc, 1)}: SVC02 {amount(charge)} - CAS {amount(c.svc_cas)} "
                f"!= SVC03 {amount(paid)}",
            )
        c.svc, c.svc_cas = None, 0

    def _end_claim(self) -> None:
        self._end_line()
        c = self.claim
        if c is None:
            return
        self.claim = None
        charge, paid = _cents(_get(c.clp, 3)), _cents(_get(c.clp, 4))
        patient = _cents(_get(c.clp, 5))
        adjusted = sum(cents for _, cents in c.cas)
        owed = sum(cents for group, cents in c.cas if group == "PR")
        name = f"CLP {_get(c.clp, 1)} ({_get(c.clp, 7)})"
        if charge - adjusted != paid:
            self._problem(
                c.line,
                f"{name}: CLP03 {amount(charge)} - CAS {amount(adjusted)} != CLP04 {amount(paid)}",
            )
        if patient != owed:
            self._problem(
                c.line, f"{name}: CLP05 {amount(patient)} != the PR adjustments {amount(owed)}"
            )
        self.paid += paid

    def _end_set(self, line: int) -> None:
        self._end_claim()
        self.sets += 1
        if self.bpr is None:
            self._problem(line, "no BPR")
            return
        total, method, at = self.bpr
        if total != self.paid - self.plb:
            self._problem(
                at,
                f"BPR02 {amount(total)} != sum(CLP04) {amount(self.paid)} - sum(PLB) "
                f"{amount(self.plb)}",
            )
        if total < 0:
            self._problem(at, f"BPR02 {amount(total)} is negative")
        if (total == 0) != (method == "NON"):
            self._problem(at, f"BPR04 {method} with BPR02 {amount(total)} (NON is for no payment)")

    def segment(self, elements: list[str], line: int) -> None:
        sid = elements[0]
        c = self.claim
        if sid == "ST":
            self._reset(_get(elements, 2))
        elif sid == "BPR":
            self.bpr = (_cents(_get(elements, 2)), _get(elements, 4), line)
        elif sid == "CLP":
            self._end_claim()
            self.claim = _Claim(elements, line)
        elif sid == "SVC" and c is not None:
            self._end_line()
            c.svc, c.svc_line = elements, line
        elif sid == "CAS" and c is not None:
            group = _get(elements, 1)
            for n in range(3, len(elements), 3):
                cents = _cents(elements[n])
                c.cas.append((group, cents))
                if c.svc is not None:
                    c.svc_cas += cents
        elif sid == "PLB":
            self._end_claim()
            self.plb += sum(_cents(elements[n]) for n in range(4, len(elements), 2))
        elif sid == "SE":
            self._end_set(line)


def check_balance(source: str | Path | IO[bytes]) -> list[str]:
    """What does not balance in every 835 of an X12 file; empty when all of it does.

    Each problem names the transaction set (ST02), the line of the file and the rule.
    A file with no 835 at all is a problem too.
    """
    checker = _Checker()
    for _, seg in read_segments(source):
        try:
            checker.segment(seg.elements, seg.line)
        except ValueError as exc:
            checker._problem(seg.line, f"{seg.id}: {exc}")
    if not checker.sets:
        checker.problems.append("no 835 transaction set")
    return checker.problems
