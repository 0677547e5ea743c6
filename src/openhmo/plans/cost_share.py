"""Cost sharing written the way a Summary of Benefits and Coverage (SBC) writes it.

A plan design states each benefit's cost sharing as text: "$30 copay", "20% coinsurance
after deductible", "No charge", "$250 copay per day up to 5 days", "Not covered", "$500
copay per stay then 20% coinsurance after deductible". `parse_cost_share` turns such text
into a `CostShare`; `parse_cms_copay`, `parse_cms_coinsurance` and `combine` do the same
for the two cost-sharing columns of the CMS marketplace Plans & Benefits template and its
public use files; `CostShare.describe` writes the canonical text back, in en, ja or sv.

What the words mean for the deductible (DOMAIN.md §3 step 10):

- "$30", "$30 copay", "$30 copay before deductible", "20%", "20% coinsurance", "No charge",
  "... deductible does not apply": NO_DEDUCTIBLE. The member pays the copay or coinsurance
  and the deductible is untouched.
- "... after deductible", "... deductible applies", "No charge after deductible":
  AFTER_DEDUCTIBLE. The deductible takes the allowed amount first; the copay or
  coinsurance applies to what is left ("No charge after deductible": nothing once the
  deductible is met).
- "$30 copay with deductible", and a no-deductible copay combined with an after-deductible
  coinsurance ("$500 copay per stay then 20% coinsurance after deductible"):
  WITH_DEDUCTIBLE. The member pays the copay, the rest of the allowed amount goes to the
  deductible, then any coinsurance applies.

CMS's template glossary words "copay before deductible" and "copay with deductible"
slightly differently; OpenHMO follows DOMAIN.md §3 step 10 as written above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from openhmo.i18n import DEFAULT_LANGUAGE, translate
from openhmo.money import Cents, MoneyError, format_money, parse_money, parse_percent


class DeductibleRule(StrEnum):
    AFTER_DEDUCTIBLE = "after_deductible"
    NO_DEDUCTIBLE = "no_deductible"
    WITH_DEDUCTIBLE = "with_deductible"


class CopayUnit(StrEnum):
    VISIT = "visit"
    DAY = "day"
    STAY = "stay"
    PRESCRIPTION = "prescription"
    TRIP = "trip"
    ITEM = "item"
    SERVICE = "service"


class CostShareError(ValueError):
    """A text that should state cost sharing cannot be read."""


class NotACostShare(ValueError):
    """A CMS cell that states no cost sharing (empty, "Not Applicable"); `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


EMPTY = "empty: no cost sharing stated"
NOT_APPLICABLE = "Not Applicable: the other column (copay or coinsurance) states the cost sharing"


class CostShare(BaseModel, frozen=True):
    text: str
    covered: bool = True
    copay: Cents | None = Field(default=None, ge=0)
    copay_unit: CopayUnit = CopayUnit.VISIT
    copay_max_units: int | None = Field(default=None, ge=1)
    coinsurance: Decimal | None = None
    deductible: DeductibleRule = DeductibleRule.NO_DEDUCTIBLE

    @field_validator("coinsurance", mode="before")
    @classmethod
    def _percent(cls, value: object) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ValueError("coinsurance must be a Decimal, an int or text such as '20%'")
        try:
            return parse_percent(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _consistent(self) -> CostShare:
        # Every state allowed here has a text that parses back to it, so describe() never lies.
        if not self.covered and (
            self.copay is not None
            or self.coinsurance is not None
            or self.deductible is not DeductibleRule.NO_DEDUCTIBLE
        ):
            raise ValueError(
                "a service that is not covered has no copay, coinsurance or deductible"
            )
        if self.copay is None and (
            self.copay_unit is not CopayUnit.VISIT or self.copay_max_units is not None
        ):
            raise ValueError("a copay unit or limit needs a copay")
        if self.deductible is DeductibleRule.WITH_DEDUCTIBLE and self.copay is None:
            raise ValueError(
                "with_deductible needs a copay (the member pays it before the deductible)"
            )
        return self

    @property
    def is_no_charge(self) -> bool:
        return self.covered and not self.copay and not self.coinsurance

    def describe(self, language: str = DEFAULT_LANGUAGE) -> str:
        """The canonical SBC text, e.g. "$250.00 copay per day, up to 5 days"."""
        if not self.covered:
            return translate("cost_share.not_covered", language)
        texts = [_render(part, language) for part in _parts(self)]
        described = texts[0]
        for following in texts[1:]:
            described = translate("cost_share.then", language, first=described, second=following)
        return described


# --- the parts a cost share is made of -------------------------------------------------


@dataclass(frozen=True)
class _Part:
    kind: Literal["none", "copay", "coinsurance"]
    amount: Cents | Decimal | None = None
    unit: CopayUnit = CopayUnit.VISIT
    max_units: int | None = None
    rule: DeductibleRule | None = None  # None: the text says nothing about the deductible
    start: int = field(default=0, compare=False)

    @property
    def silent(self) -> bool:
        # A bare "0%" (CMS writes it beside "$150 Copay after deductible") charges nothing and
        # says nothing about the deductible, so it must not outvote the part that does.
        return self.kind == "coinsurance" and self.amount == 0 and self.rule is None


def _deductible(parts: list[_Part]) -> DeductibleRule:
    after, no, with_ = (
        DeductibleRule.AFTER_DEDUCTIBLE,
        DeductibleRule.NO_DEDUCTIBLE,
        DeductibleRule.WITH_DEDUCTIBLE,
    )
    voters = [p for p in parts if not p.silent]
    priced = [p for p in voters if p.kind != "none"]
    if voters and all(p.rule is after for p in voters):
        return after
    if len(priced) == 1 and priced[0].rule is after:
        return after
    if any(p.kind == "copay" and p.rule is with_ for p in voters):
        return with_
    copay_without = any(p.kind == "copay" and (p.rule or no) is no for p in voters)
    if copay_without and any(p.kind == "coinsurance" and p.rule is after for p in voters):
        return with_
    return no


def _second_of_a_kind(parts: list[_Part]) -> _Part | None:
    seen: set[str] = set()
    for part in parts:
        if part.kind in seen:
            return part
        if part.kind != "none":
            seen.add(part.kind)
    return None


def _build(text: str, parts: list[_Part]) -> CostShare:
    copay = next((p for p in parts if p.kind == "copay"), None)
    coinsurance = next((p for p in parts if p.kind == "coinsurance"), None)
    return CostShare(
        text=text,
        copay=copay.amount if copay else None,
        copay_unit=copay.unit if copay else CopayUnit.VISIT,
        copay_max_units=copay.max_units if copay else None,
        coinsurance=coinsurance.amount if coinsurance else None,
        deductible=_deductible(parts),
    )


def _parts(cs: CostShare) -> list[_Part]:
    """The parts whose canonical text parses back to exactly this cost share."""
    rule = None if cs.deductible is DeductibleRule.NO_DEDUCTIBLE else cs.deductible
    copay = coinsurance = None
    if cs.copay is not None:
        copay = _Part("copay", cs.copay, cs.copay_unit, cs.copay_max_units, rule)
    if cs.coinsurance is not None:
        coinsurance = _Part("coinsurance", cs.coinsurance, rule=rule)
    if copay and coinsurance and rule is DeductibleRule.WITH_DEDUCTIBLE:
        # The natural SBC wording: "$500 copay per stay then 20% coinsurance after deductible".
        copay = _Part("copay", cs.copay, cs.copay_unit, cs.copay_max_units)
        coinsurance = _Part("coinsurance", cs.coinsurance, rule=DeductibleRule.AFTER_DEDUCTIBLE)
    parts = [p for p in (copay, coinsurance) if p]
    return parts or [_Part("none", rule=rule)]


def _render(part: _Part, language: str) -> str:
    if part.kind == "none":
        text = translate("cost_share.no_charge", language)
    elif part.kind == "copay":
        text = translate(
            f"cost_share.copay.{part.unit}", language, amount=format_money(int(part.amount or 0))
        )
        if part.max_units is not None:
            plural = "one" if part.max_units == 1 else "other"
            limit = translate(
                f"cost_share.limit.{plural}.{part.unit}", language, count=part.max_units
            )
            text = translate("cost_share.with_limit", language, copay=text, limit=limit)
    else:
        text = translate("cost_share.coinsurance", language, percent=f"{part.amount:f}%")
    if part.rule is DeductibleRule.AFTER_DEDUCTIBLE:
        return translate("cost_share.after_deductible", language, charge=text)
    if part.rule is DeductibleRule.WITH_DEDUCTIBLE:
        return translate("cost_share.with_deductible", language, charge=text)
    return text


# --- reading the SBC language ----------------------------------------------------------

_UNITS = {
    "visit": CopayUnit.VISIT,
    "day": CopayUnit.DAY,
    "stay": CopayUnit.STAY,
    "admission": CopayUnit.STAY,
    "prescription": CopayUnit.PRESCRIPTION,
    "script": CopayUnit.PRESCRIPTION,
    "trip": CopayUnit.TRIP,
    "item": CopayUnit.ITEM,
    "service": CopayUnit.SERVICE,
}
_UNIT = "(?P<unit>" + "|".join(_UNITS) + ")"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_NOT_COVERED = _rx(r"(?:not\s+covered|excluded)\b")
_NO_CHARGE = _rx(r"no\s+charge\b")
# A comma or period glued to digits belongs to the amount: "$1,00" is refused whole.
_MONEY = _rx(r"\$\s*(?P<amount>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?![\w%$.]|,\d)")
_DOLLAR = _rx(r"\$\s*")
_PERCENT = _rx(r"(?P<percent>\d+(?:\.\d+)?)\s*%(?![\w%$])")
_COPAY_WORD = _rx(r"co-?pay(?:ment)?\b")
_COINSURANCE_WORD = _rx(r"co-?insurance\b")
_PER = _rx(rf"per\s+{_UNIT}\b")
_PER_WORD = _rx(r"per\b")
_LIMIT = _rx(rf",?\s*(?:up\s+to|for\s+the\s+first)\s+(?P<count>\d+)\s+{_UNIT}s?\b")
_DEDUCTIBLE_CLAUSE = _rx(
    r",?\s*(?:(?P<after>after\s+(?:the\s+)?deductible|deductible\s+applies)"
    r"|(?P<no>before\s+(?:the\s+)?deductible|deductible\s+does\s+not\s+apply)"
    r"|(?P<with>with\s+(?:the\s+)?deductible))\b"
)
_SEPARATOR = _rx(r"(?:[;,+]\s*)?(?:and\s+then|then|and|plus)\b|[;,+]")
_WORD = _rx(r"[;,+]|[^\s;,+]+(?:,[^\s;,+]+)*")

_START = "an amount such as $30, a percent such as 20%, 'No charge' or 'Not covered'"
_DEDUCTIBLE_WORDS = "'after deductible', 'before deductible', 'deductible does not apply'"
_AFTER_COPAY = (
    f"'per visit', 'up to 5 days', {_DEDUCTIBLE_WORDS}, 'with deductible', "
    "or 'then' and another part"
)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos == len(self.text)

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_space()
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()
        return match

    def fail(self, expected: str, at: int | None = None) -> CostShareError:
        pos = self.pos if at is None else at
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        word = _WORD.match(self.text, pos)
        where = f"at {word.group()!r}" if word else "at the end"
        return CostShareError(f"could not read {self.text!r} {where}: expected {expected}")


def _deductible_clause(s: _Scanner, *, copay: bool) -> DeductibleRule | None:
    match = s.take(_DEDUCTIBLE_CLAUSE)
    if not match:
        return None
    if match["after"]:
        return DeductibleRule.AFTER_DEDUCTIBLE
    if match["no"]:
        return DeductibleRule.NO_DEDUCTIBLE
    if not copay:
        raise s.fail(
            f"{_DEDUCTIBLE_WORDS} ('with deductible' goes with a copay)", match.start("with")
        )
    return DeductibleRule.WITH_DEDUCTIBLE


def _copay(s: _Scanner, match: re.Match[str]) -> _Part:
    try:
        cents = parse_money(match["amount"])
    except MoneyError:
        raise s.fail(
            "an amount in dollars and cents such as $30.00", match.start("amount")
        ) from None
    s.take(_COPAY_WORD)
    per = s.take(_PER)
    if not per and s.take(_PER_WORD):
        raise s.fail(f"a unit after 'per': {', '.join(_UNITS)}")
    unit = _UNITS[per["unit"].lower()] if per else None
    max_units = None
    if limit := s.take(_LIMIT):
        limit_unit = _UNITS[limit["unit"].lower()]
        if unit not in (None, limit_unit):
            raise s.fail(f"a limit in {unit}s, the unit of the copay", limit.start("unit"))
        unit, max_units = limit_unit, int(limit["count"])
        if max_units < 1:
            raise s.fail("a limit of at least 1, as in 'up to 5 days'", limit.start("count"))
    rule = _deductible_clause(s, copay=True)
    return _Part("copay", cents, unit or CopayUnit.VISIT, max_units, rule, match.start())


def _part(s: _Scanner) -> _Part:
    s.skip_space()
    start = s.pos
    if s.take(_NO_CHARGE):
        return _Part("none", rule=_deductible_clause(s, copay=False), start=start)
    if match := s.take(_MONEY):
        return _copay(s, match)
    if match := s.take(_PERCENT):
        try:
            percent = parse_percent(match["percent"])
        except MoneyError:
            raise s.fail("a percent between 0% and 100%", start) from None
        s.take(_COINSURANCE_WORD)
        return _Part("coinsurance", percent, rule=_deductible_clause(s, copay=False), start=start)
    if s.take(_DOLLAR):
        raise s.fail("an amount such as $30")
    raise s.fail(_START)


def parse_cost_share(text: str) -> CostShare:
    """The cost share an SBC-style text states; CostShareError says where it cannot be read."""
    s = _Scanner(text)
    if s.take(_NOT_COVERED):
        if not s.at_end():
            raise s.fail("nothing after 'Not covered'")
        return CostShare(text=text, covered=False)
    parts = [_part(s)]
    while not s.at_end():
        expected = _AFTER_COPAY if parts[-1].kind == "copay" else "'then' and another part"
        if parts[-1].kind != "copay" and parts[-1].rule is None:
            expected = f"{_DEDUCTIBLE_WORDS}, or {expected}"
        if not s.take(_SEPARATOR):
            raise s.fail(expected)
        if s.at_end():
            raise s.fail(_START)
        parts.append(_part(s))
        if second := _second_of_a_kind(parts):
            kind = "copay" if second.kind == "copay" else "coinsurance"
            raise s.fail(
                f"one {kind} at most (a cost share has one copay and one coinsurance)", second.start
            )
    return _build(text, parts)


# --- the CMS Plans & Benefits template and public use files ----------------------------


def _cms_cell(cell: str) -> CostShare:
    value = (cell or "").strip()
    if not value:
        raise NotACostShare(EMPTY)
    if value.casefold() == "not applicable":
        raise NotACostShare(NOT_APPLICABLE)
    return parse_cost_share(value)


def parse_cms_copay(cell: str) -> CostShare:
    """A CopayInnTier1/2 or CopayOutofNet cell: "$30", "$250 Copay per Stay after deductible"."""
    return _cms_cell(cell)


def parse_cms_coinsurance(cell: str) -> CostShare:
    """A CoinsInnTier1/2 or CoinsOutofNet cell: "20%", "20% Coinsurance after deductible"."""
    return _cms_cell(cell)


def combine(
    copay: CostShare | None, coinsurance: CostShare | None, text: str | None = None
) -> CostShare:
    """One cost share from what a CMS copay column and its coinsurance column each say."""
    given = [cs for cs in (copay, coinsurance) if cs is not None]
    if not given:
        raise NotACostShare(EMPTY)
    text = text if text is not None else "; ".join(cs.text for cs in given)
    if len(given) == 1:
        return given[0].model_copy(update={"text": text})
    if not any(cs.covered for cs in given):
        return CostShare(text=text, covered=False)
    if not all(cs.covered for cs in given):
        raise CostShareError(f"could not combine {text!r}: one column says not covered")
    first, second = _parts(given[0]), _parts(given[1])
    # Some issuers repeat "0%" in both columns; the same part twice says it once.
    parts = first + [p for p in second if p not in first]
    if twice := _second_of_a_kind(parts):
        raise CostShareError(f"could not combine {text!r}: both columns state a {twice.kind}")
    return _build(text, parts)
