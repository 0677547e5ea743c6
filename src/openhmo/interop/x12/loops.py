"""What the readers of transaction sets share: `LoopReader`, the base of the 837, 834, 270
and 278 readers, and `parse_date`.

Each reader is the handler of one transaction set (see `envelope.read_file`): it gets the
set's body segment by segment, follows the loops of its guide (`loop` names the one being
read) and keeps each problem twice: on the transaction set, for the 999, and with the
part of the set the problem spoils (a claim, a member, an inquiry, or the whole set), so
that only that part is refused. Which part that is differs by transaction, so each reader
says it in its own `_own`; the rest is here:

- `_src`: where a value was read (a `Source`), for a refusal that must name it later;
- `_problem`: a problem at the segment being read, recorded on the set; `_charge` also
  charges it to the part being read (`_own`);
- `_check`: the segment against its element rules (`RULES`, or `_rules` where they depend
  on the loop), its problems recorded and charged;
- `_no_header`: the set lacks the segment its body must start with (BHT, BGN);
- the version check: a set whose ST03 (or GS08) is not one of `VERSIONS` is rejected
  (IK502 I6), saying what the reader does read (`READS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import ClassVar

from openhmo.interop.x12.elements import Rule
from openhmo.interop.x12.envelope import Problem, Source, TransactionSet, check_segment
from openhmo.interop.x12.syntax import Segment


def parse_date(text: str | None) -> date | None:
    """CCYYMMDD as a date; None when it is not one."""
    if not text or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


class LoopReader:
    """The helpers of a transaction set's reader; see the module's docstring."""

    # Element rules by segment id; `_rules` picks a segment's rules where it stands.
    RULES: ClassVar[Mapping[str, tuple[Rule, ...]]] = {}
    # How much of a refused value a problem keeps for the 999's IK404, which holds 99
    # characters (ack999 cuts a longer one, after taking out our delimiters); None: all.
    KEEP: ClassVar[int | None] = 99
    # The implementation guides (ST03) this reader reads, and how to say so.
    VERSIONS: ClassVar[tuple[str, ...]] = ()
    READS: ClassVar[str] = ""

    def __init__(self, ts: TransactionSet) -> None:
        self.ts = ts
        if self.VERSIONS and ts.version not in self.VERSIONS:
            ts.set_problems.append(("I6", f"ST03 {ts.version!r}: OpenHMO reads {self.READS}"))
        self.loop = "header"

    def _own(self, problems: list[Problem]) -> None:
        """Charge problems to the part of the set being read (or reject the set)."""
        raise NotImplementedError

    def _src(
        self, seg: Segment, position: int, element: int, component: int | None = None
    ) -> Source:
        return Source(seg.id, position, seg.ordinal, seg.line, element, component, self.loop)

    def _problem(
        self,
        seg: Segment,
        position: int,
        reason: str,
        code: str = "8",
        element: int | None = None,
        element_code: str | None = None,
    ) -> Problem:
        """A problem of `seg` (IK304 `code`; IK4 when it is an element's) in the current
        loop, recorded on the set. It keeps the element's value (IK404) when it says what
        is wrong with it (`element_code`, IK403)."""
        value = seg.get(element)[: self.KEEP] if element and element_code else None
        problem = Problem(
            reason,
            seg.id,
            position,
            seg.ordinal,
            seg.line,
            code,
            element,
            element_code=element_code,
            value=value,
            loop=self.loop,
        )
        self.ts.problems.append(problem)
        return problem

    def _charge(
        self,
        seg: Segment,
        position: int,
        reason: str,
        code: str = "8",
        element: int | None = None,
        element_code: str | None = None,
    ) -> Problem:
        """`_problem`, charged to the part of the set being read."""
        problem = self._problem(seg, position, reason, code, element, element_code)
        self._own([problem])
        return problem

    def _rules(self, seg: Segment) -> tuple[Rule, ...] | None:
        return self.RULES.get(seg.id)

    def _check(self, seg: Segment, position: int) -> bool:
        """Check `seg` against its element rules; charge its problems. True when clean."""
        rules = self._rules(seg)
        if rules is None:
            return True
        before = len(self.ts.problems)
        clean = check_segment(self.ts, seg, position, rules, self.loop)
        if not clean:
            self._own(self.ts.problems[before:])
        return clean

    def _no_header(self, segment: str) -> None:
        """The set has no `segment` (BHT, BGN): said where it was due, right after ST."""
        ts = self.ts
        ts.problems.append(
            Problem(f"the {ts.code} has no {segment}", segment, 2, ts.ordinal + 1, ts.line, "3")
        )
