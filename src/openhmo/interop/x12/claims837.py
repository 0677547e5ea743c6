"""837P (005010X222A1/A2) and 837I (005010X223A2/A3) claims, read from their segments.

`ClaimsReader` is the handler of an 837 transaction set (see `envelope.read_file`): it
follows the loops (1000A submitter, 1000B receiver, 2000A billing provider, 2000B
subscriber, 2000C patient, 2300 claim, 2310 claim providers, 2320/2330 other payers,
2400 service line, 2410 drug, 2420 line providers, 2430 line adjudication) and gives
each finished claim, as a `Claim837`, to a sink as soon as its last line is read, so a
file of any size streams through in bounded memory.

A claim carries everything it was read with and where each value came from
(`sources`), so that when our intake refuses a value, the refusal names the segment
position and element that held it. A problem in a claim's own segments rejects that
claim only; a problem in the loops above it (billing provider, subscriber, patient)
rejects the claims under them; a problem in the header rejects the transaction set.

The element rules and code lists the reader checks against are data, in `rules837`; what
it reads into (`Claim837`, `Header837` ...) is in `model837`. The names other modules took
from here before those were split off (`RULES`, `KNOWN`, `Claim837` ...) still import.
"""

from __future__ import annotations

from collections.abc import Callable

from openhmo.interop.x12.envelope import Problem, TransactionSet
from openhmo.interop.x12.loops import LoopReader, parse_date
from openhmo.interop.x12.model837 import Claim837, Header837, Line837, Person, Result837
from openhmo.interop.x12.rules837 import (
    AMOUNT_QUALIFIERS,
    DX_ICD9,
    DX_ICD10,
    HI_OTHER,
    INSTITUTIONAL,
    KNOWN,
    PROFESSIONAL,
    RULES,
)
from openhmo.interop.x12.syntax import Delimiters, Segment


def _period(value: str) -> tuple[str, str]:
    start, _, end = value.partition("-")
    return start, end or start


class ClaimsReader(LoopReader):
    """The handler of one 837 transaction set; see the module's docstring."""

    RULES = RULES
    VERSIONS = PROFESSIONAL + INSTITUTIONAL
    READS = f"837P {', '.join(PROFESSIONAL)} and 837I {', '.join(INSTITUTIONAL)}"

    def __init__(
        self, ts: TransactionSet, delimiters: Delimiters, sink: Callable[[Claim837], None]
    ) -> None:
        super().__init__(ts)
        self.sink = sink
        self.component = delimiters.component
        self.kind = "institutional" if ts.version in INSTITUTIONAL else "professional"
        self.header = Header837()
        self.seen_bht = False
        # The hierarchy: HL id -> (level, the problems of its loops, what it names).
        self.levels: dict[str, dict] = {}
        self.hl: dict | None = None
        self.claim: Claim837 | None = None
        self.line: Line837 | None = None
        self.claims = 0
        self.rejects_set = False
        # The other-payer loop 2320 being read: its SBR and which of 2330A/B it has had.
        self.other_payer: dict | None = None

    # -- helpers ---------------------------------------------------------------
    def _own(self, problems: list[Problem]) -> None:
        """Charge problems to the claim being read, else the HL loop, else the header."""
        if self.claim is not None:
            self.claim.problems.extend(problems)
        elif self.hl is not None:
            self.hl["problems"].extend(problems)
        else:
            self.rejects_set = True

    def _close_other_payer(self) -> None:
        """Loop 2320 needs its subscriber (2330A, NM1*IL) and payer (2330B, NM1*PR)."""
        loop, self.other_payer = self.other_payer, None
        if loop is None or self.claim is None:
            return
        for entity, name in (
            ("IL", "2330A other subscriber name"),
            ("PR", "2330B other payer name"),
        ):
            if entity not in loop["seen"]:
                problem = Problem(
                    f"the other-payer loop 2320 (SBR at position {loop['position']}) has no "
                    f"loop {name} (NM1*{entity})",
                    "NM1",
                    loop["position"] + 1,
                    loop["ordinal"],
                    loop["line"],
                    "I7",
                    loop="2320",
                )
                self.ts.problems.append(problem)
                self.claim.problems.append(problem)

    def _emit(self) -> None:
        self._close_other_payer()
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        self.line = None
        if not claim.lines:
            self._own_claim_problem(claim, "the claim has no service line (LX)", "3", "LX")
        if not claim.diagnosis_codes:
            self._own_claim_problem(
                claim, "the claim has no diagnosis (HI with ABK or BK)", "3", "HI"
            )
        # The loops above the claim: a problem there is every claim's problem. A broken
        # file can name its HLs in a circle (an HL its own parent, an id used twice):
        # each is visited once.
        level, seen = self.hl, set()
        while level is not None and id(level) not in seen:
            seen.add(id(level))
            claim.problems.extend(level["problems"])
            level = self.levels.get(level["parent"])
        self.claims += 1
        self.sink(claim)

    def _own_claim_problem(
        self, claim: Claim837, reason: str, code: str, segment: str = "CLM"
    ) -> None:
        # A missing segment is reported where it was due: after the claim's CLM.
        problem = Problem(
            reason,
            segment,
            claim.position + (segment != "CLM"),
            claim.ordinal,
            claim.line,
            code,
            loop="2300",
        )
        self.ts.problems.append(problem)
        claim.problems.append(problem)

    # -- the segments ------------------------------------------------------------
    def segment(self, seg: Segment, position: int) -> None:
        sid = seg.id
        if sid not in KNOWN:
            self._charge(seg, position, f"segment {sid!r} is not a segment of an 837", "1")
            return
        handler = getattr(self, "_" + sid, None)
        if sid in ("HL", "CLM"):
            # These open a new loop: their own problems belong to it, not to the one before.
            handler(seg, position)
            self._check(seg, position)
            return
        self._check(seg, position)
        if handler is not None:
            handler(seg, position)
        elif self.loop == "header" and not self.seen_bht:
            self.rejects_set = True
            self._problem(seg, position, f"{sid} before BHT: an 837 starts with BHT", "7")

    def _BHT(self, seg: Segment, position: int) -> None:
        if self.seen_bht:
            self._charge(seg, position, "a second BHT", "5")
            return
        self.seen_bht = True
        self.header.purpose, self.header.reference = seg.get(2), seg.get(3)
        self.header.created = seg.get(4)

    def _HL(self, seg: Segment, position: int) -> None:
        self._emit()
        if not self.seen_bht:
            self.rejects_set = True
            self._problem(seg, position, "the 837 has no BHT before its first HL", "3")
        hid, parent, level = seg.get(1), seg.get(2), seg.get(3)
        node = {
            "level": level,
            "parent": parent,
            "problems": [],
            "data": {},
            "seg": seg,
            "position": position,
        }
        expected_parent = {"20": None, "22": "20", "23": "22"}.get(level)
        if hid in self.levels:
            node["problems"].append(
                self._problem(seg, position, f"HL01 {hid!r} is used twice", "8", 1)
            )
        if level in ("22", "23"):
            up = self.levels.get(parent)
            if up is None or up["level"] != expected_parent:
                node["problems"].append(
                    self._problem(
                        seg,
                        position,
                        f"HL02 {parent!r} names no HL of level {expected_parent} "
                        f"above this level-{level} loop",
                        "8",
                        2,
                    )
                )
            else:
                node["data"] = dict(up["data"])
        self.levels[hid] = node
        self.hl = node
        self.loop = {"20": "2000A", "22": "2000B", "23": "2000C"}.get(level, "2000")

    def _NM1(self, seg: Segment, position: int) -> None:
        entity = seg.get(1)
        loop = self.loop
        if loop == "header" or loop.startswith("1000"):
            if entity == "41":
                self.loop = "1000A"
                self.header.submitter_name, self.header.submitter_id = seg.get(3), seg.get(9)
            elif entity == "40":
                self.loop = "1000B"
                self.header.receiver_name, self.header.receiver_id = seg.get(3), seg.get(9)
            return
        if self.claim is None:
            data = self.hl["data"] if self.hl else {}
            if entity == "85":
                self.loop = "2010AA"
                data.update(
                    billing_npi=seg.get(9) if seg.get(8) == "XX" else None,
                    billing_name=seg.get(3),
                    billing_src=self._src(seg, position, 9),
                )
            elif entity == "IL":
                self.loop = "2010BA"
                data.update(
                    subscriber_id=seg.get(9) or None,
                    subscriber=Person(seg.get(3), seg.get(4)),
                    subscriber_src=self._src(seg, position, 9),
                )
                if not seg.get(9):
                    self.hl["problems"].append(
                        self._problem(
                            seg,
                            position,
                            "NM109: the subscriber's member identifier is missing",
                            "8",
                            9,
                        )
                    )
            elif entity == "PR":
                self.loop = "2010BB"
                data.update(payer_id=seg.get(9) or None)
            elif entity == "QC":
                self.loop = "2010CA"
                data.update(
                    patient=Person(seg.get(3), seg.get(4)), patient_src=self._src(seg, position, 3)
                )
            else:
                self.loop = "2010A"
            return
        claim = self.claim
        if loop in ("2320", "2330"):
            self.loop = "2330"
            if self.other_payer is not None:
                self.other_payer["seen"].add(entity)
            return
        if self.line is None:
            if (entity == "82" and claim.kind == "professional") or (
                entity == "71" and claim.kind == "institutional"
            ):
                self.loop = "2310B" if entity == "82" else "2310A"
                if seg.get(8) == "XX":
                    claim.rendering_npi = seg.get(9) or None
                    claim.sources["rendering_npi"] = self._src(seg, position, 9)
            elif entity in ("DN", "P3"):
                self.loop = "2310A"
                if seg.get(8) == "XX":
                    claim.referring_npi = seg.get(9) or None
            else:
                self.loop = "2310"
            return
        self.loop = "2420"
        if entity == "82" and seg.get(8) == "XX":
            self.line.rendering_npi = seg.get(9) or None
            claim.sources[f"lines.{len(claim.lines) - 1}.rendering_npi"] = self._src(
                seg, position, 9
            )

    def _PRV(self, seg: Segment, position: int) -> None:
        if self.claim is None and self.hl is not None and self.hl["level"] == "20":
            self.hl["data"]["billing_taxonomy"] = seg.get(3) or None

    def _REF(self, seg: Segment, position: int) -> None:
        qualifier, value = seg.get(1), seg.get(2)
        if self.claim is None:
            if self.loop == "2010AA" and qualifier == "EI":
                self.hl["data"]["billing_tax_id"] = value
            return
        if self.loop in ("2320", "2330", "2430"):
            return
        claim = self.claim
        target = "line" if self.line is not None else "claim"
        if qualifier == "6R" and self.line is not None:
            self.line.control_number = value
        elif qualifier == "9F" and (target == "claim" or not claim.referral_number):
            claim.referral_number = value
            claim.sources["referral_number"] = self._src(seg, position, 2)
        elif qualifier == "G1" and (target == "claim" or not claim.prior_auth_number):
            claim.prior_auth_number = value
            claim.sources["prior_auth_number"] = self._src(seg, position, 2)
        elif qualifier == "F8" and target == "claim":
            claim.original_claim_number = value
            claim.sources["replaces_claim_id"] = self._src(seg, position, 2)

    def _SBR(self, seg: Segment, position: int) -> None:
        if self.claim is not None:
            self._close_other_payer()
            self.line = None  # an SBR after CLM opens the other-payer loop 2320
            self.loop = "2320"
            self.other_payer = {
                "position": position,
                "ordinal": seg.ordinal,
                "line": seg.line,
                "seen": set(),
            }
            return
        if self.hl is not None:
            self.hl["data"]["relationship"] = seg.get(2) or None

    def _PAT(self, seg: Segment, position: int) -> None:
        if self.claim is None and self.hl is not None and self.hl["level"] == "23":
            self.hl["data"]["relationship"] = seg.get(1) or None

    def _DMG(self, seg: Segment, position: int) -> None:
        if self.claim is not None or self.hl is None:
            return
        data = self.hl["data"]
        person = (
            data.get("patient")
            if self.loop == "2010CA"
            else data.get("subscriber")
            if self.loop == "2010BA"
            else None
        )
        if person is not None:
            person.birth_date = parse_date(seg.get(2))
            person.sex = seg.get(3) or None

    def _CLM(self, seg: Segment, position: int) -> None:
        self._emit()
        self.loop = "2300"
        if self.hl is None or self.hl["level"] not in ("22", "23"):
            self._problem(
                seg, position, "CLM outside a subscriber (HL 22) or patient (HL 23) loop", "2"
            )
            self.rejects_set = True
        data = self.hl["data"] if self.hl else {}
        composite = seg.get(5).split(self.component)
        facility = composite[0] if composite else ""
        frequency = composite[2] if len(composite) > 2 else ""
        claim = Claim837(
            kind=self.kind,
            set_control=self.ts.control,
            position=position,
            ordinal=seg.ordinal,
            line=seg.line,
            patient_control_number=seg.get(1),
            total_charge=seg.get(2),
            facility_code=facility,
            frequency_code=frequency,
            billing_npi=data.get("billing_npi"),
            billing_name=data.get("billing_name", ""),
            billing_tax_id=data.get("billing_tax_id"),
            billing_taxonomy=data.get("billing_taxonomy"),
            payer_id=data.get("payer_id"),
            subscriber_id=data.get("subscriber_id"),
            subscriber=data.get("subscriber"),
            relationship=data.get("relationship"),
            patient=data.get("patient") if self.hl and self.hl["level"] == "23" else None,
        )
        claim.sources.update(
            patient_control_number=self._src(seg, position, 1),
            total_charge=self._src(seg, position, 2),
            place_of_service=self._src(seg, position, 5, 1),
            frequency_code=self._src(seg, position, 5, 3),
        )
        for key in ("billing_src", "subscriber_src", "patient_src"):
            if key in data:
                claim.sources[
                    key.removesuffix("_src")
                    .replace("billing", "billing_npi")
                    .replace("subscriber", "member_number")
                ] = data[key]
        self.claim = claim
        self.line = None

    def _DTP(self, seg: Segment, position: int) -> None:
        if self.claim is None or self.loop in ("2320", "2330", "2430"):
            return
        qualifier, value = seg.get(1), seg.get(3)
        start, end = _period(value)
        if self.line is not None and qualifier == "472":
            self.line.service_date, self.line.service_date_to = start, end
            self.claim.sources[f"lines.{len(self.claim.lines) - 1}.service_date"] = self._src(
                seg, position, 3
            )
            if parse_date(start) is None or parse_date(end) is None:
                self._claim_element(
                    seg,
                    position,
                    3,
                    f"DTP03 {value!r} is not a date or a range of dates "
                    "(CCYYMMDD or CCYYMMDD-CCYYMMDD)",
                )
        elif self.line is None and qualifier == "434":
            if seg.get(2) != "RD8":
                self._claim_element(
                    seg, position, 2, "DTP02: the statement period (434) is a range, RD8", "7"
                )
            self.claim.statement_from, self.claim.statement_to = start, end
            self.claim.sources["statement_from"] = self._src(seg, position, 3)

    def _claim_element(
        self, seg: Segment, position: int, element: int, reason: str, code: str = "8"
    ) -> None:
        """A problem of an element of the claim's own segments: the claim's, and the 999's."""
        self.claim.problems.append(self._problem(seg, position, reason, "8", element, code))

    def _CL1(self, seg: Segment, position: int) -> None:
        if self.claim is not None:
            self.claim.admission_type = seg.get(1) or None
            self.claim.emergency = self.claim.emergency or seg.get(1) == "1"

    def _HI(self, seg: Segment, position: int) -> None:
        claim = self.claim
        if claim is None or self.line is not None:
            return
        for n in range(1, len(seg.elements)):
            parts = seg.elements[n].split(self.component)
            qualifier = parts[0]
            code = parts[1] if len(parts) > 1 else ""
            principal = DX_ICD10.get(qualifier, DX_ICD9.get(qualifier))
            if principal is None:
                if qualifier not in HI_OTHER:
                    self._claim_element(
                        seg,
                        position,
                        n,
                        f"HI{n:02d}-1 {qualifier!r} is not a code list qualifier "
                        "of an 837 HI (e.g. ABK, ABF)",
                        "7",
                    )
                continue  # occurrence, value, condition codes: not diagnoses
            code_set = "ABK" if qualifier in DX_ICD10 else "BK"
            if claim.diagnosis_qualifier and claim.diagnosis_qualifier != code_set:
                self._claim_element(
                    seg,
                    position,
                    n,
                    f"HI{n:02d}: ICD-9-CM and ICD-10-CM diagnoses mixed on one claim",
                )
                continue
            claim.diagnosis_qualifier = code_set
            index = len(claim.diagnosis_codes)
            if principal:
                if index:
                    self._claim_element(
                        seg, position, n, f"HI{n:02d}: a second principal diagnosis ({qualifier})"
                    )
                    continue
            elif not index:
                self._claim_element(
                    seg,
                    position,
                    n,
                    f"HI{n:02d}: the principal diagnosis "
                    f"({'ABK' if code_set == 'ABK' else 'BK'}) comes first",
                )
                continue
            claim.diagnosis_codes.append(code)
            claim.sources[f"diagnosis_codes.{index}"] = self._src(seg, position, n, 2)

    def _LX(self, seg: Segment, position: int) -> None:
        claim = self.claim
        if claim is None:
            self.rejects_set = True
            self._problem(seg, position, "LX outside a claim (CLM)", "2")
            return
        self._close_other_payer()
        self.loop = "2400"
        number = int(seg.get(1)) if seg.get(1).isdigit() else len(claim.lines) + 1
        if number != len(claim.lines) + 1:
            self._claim_element(
                seg,
                position,
                1,
                f"LX01 {seg.get(1)!r}: service lines are numbered 1, 2, 3 ... "
                f"(expected {len(claim.lines) + 1})",
            )
        self.line = Line837(number=number)
        claim.lines.append(self.line)
        claim.sources[f"lines.{number - 1}"] = self._src(seg, position, 1)

    def _SV1(self, seg: Segment, position: int) -> None:
        line, claim = self.line, self.claim
        if line is None or claim is None:
            return
        if claim.kind != "professional":
            self._claim_element(
                seg,
                position,
                1,
                "SV1 (a professional service) in an institutional 837: lines are SV2",
            )
        parts = seg.get(1).split(self.component)
        i = len(claim.lines) - 1
        line.procedure_code = parts[1] if len(parts) > 1 else None
        line.modifiers = [m for m in parts[2:6] if m]
        line.charge = seg.get(2)
        line.units = seg.get(4) or "1"
        line.place_of_service = seg.get(5) or None
        line.emergency = seg.get(9) == "Y"
        claim.emergency = claim.emergency or line.emergency
        claim.sources.update(
            {
                f"lines.{i}.procedure_code": self._src(seg, position, 1, 2),
                f"lines.{i}.modifiers": self._src(seg, position, 1, 3),
                f"lines.{i}.charge": self._src(seg, position, 2),
                f"lines.{i}.units": self._src(seg, position, 4),
                f"lines.{i}.place_of_service": self._src(seg, position, 5),
            }
        )

    def _SV2(self, seg: Segment, position: int) -> None:
        line, claim = self.line, self.claim
        if line is None or claim is None:
            return
        if claim.kind != "institutional":
            self._claim_element(
                seg,
                position,
                1,
                "SV2 (an institutional service) in a professional 837: lines are SV1",
            )
        i = len(claim.lines) - 1
        parts = seg.get(2).split(self.component) if seg.get(2) else []
        line.revenue_code = seg.get(1)
        line.procedure_code = parts[1] if len(parts) > 1 else None
        line.modifiers = [m for m in parts[2:6] if m]
        line.charge = seg.get(3)
        line.units = seg.get(5) or "1"
        claim.sources.update(
            {
                f"lines.{i}.revenue_code": self._src(seg, position, 1),
                f"lines.{i}.procedure_code": self._src(seg, position, 2, 2),
                f"lines.{i}.modifiers": self._src(seg, position, 2, 3),
                f"lines.{i}.charge": self._src(seg, position, 3),
                f"lines.{i}.units": self._src(seg, position, 5),
            }
        )

    def _AMT(self, seg: Segment, position: int) -> None:
        allowed = AMOUNT_QUALIFIERS.get(self.loop)
        if self.claim is not None and allowed is not None and seg.get(1) not in allowed:
            self._claim_element(
                seg,
                position,
                1,
                f"AMT01 {seg.get(1)!r} is not an amount qualifier of loop {self.loop} "
                f"({', '.join(sorted(allowed))})",
                "7",
            )

    def _N4(self, seg: Segment, position: int) -> None:
        zip_code = seg.get(3)
        nine = len(zip_code) == 9 and zip_code.isdigit()
        if self.loop == "2010AA" and self.kind == "institutional" and not nine:
            # 5010: the billing provider's ZIP code is the full nine digits. Checked on the
            # 837I only, as pyx12's maps do: the 837P guide's own examples send five.
            problem = Problem(
                f"N403 {zip_code!r}: the billing provider's ZIP code is nine digits (ZIP+4)",
                "N4",
                position,
                seg.ordinal,
                seg.line,
                "8",
                3,
                element_code="4" if len(zip_code) < 9 else "5",
                value=zip_code[:30],
                loop=self.loop,
            )
            self.ts.problems.append(problem)
            if self.hl is not None:
                self.hl["problems"].append(problem)

    def _LIN(self, seg: Segment, position: int) -> None:
        if self.line is not None:
            self.loop = "2410"
            if seg.get(2) == "N4":
                self.line.ndc = seg.get(3)

    def _SVD(self, seg: Segment, position: int) -> None:
        if self.line is not None:
            self.loop = "2430"

    def finish(self) -> Result837:
        self._emit()
        if not self.seen_bht:
            self.rejects_set = True
            self._no_header("BHT")
        return Result837(self.header, self.claims, self.rejects_set)
