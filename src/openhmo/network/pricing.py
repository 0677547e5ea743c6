"""The allowed amount of a service line under a fee schedule: a pure function of data.

Adjudication takes a snapshot of the contract's fee schedule (service.fee_schedule_snapshot)
and calls `allowed_amount` for each line; nothing here reads a database, so a batch of
claims can be priced anywhere, and the same inputs always give the same cents.

- per_code: the schedule's amount for the code, times units (per unit), per day
  (per diem) or once (per case).
- percent_of_medicare: percent x the Medicare fee x units, rounded half up to the cent
  once; a per-code amount in the schedule overrides Medicare for that code.
- case_rate: a fixed amount per case, whatever the units.

A line the schedule cannot price raises NoRate; adjudication pends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from openhmo.money import Cents, format_money
from openhmo.network.medicare import PRICING_MODIFIERS, MedicareFeeError, medicare_fee_detail

METHODS = ("per_code", "percent_of_medicare", "case_rate")
UNITS = ("per_unit", "per_diem", "per_case")

# CMS Place of Service codes priced at the Medicare facility rate: hospitals, SNFs,
# ambulatory surgery centers, inpatient psychiatric and rehabilitation facilities.
FACILITY_PLACES_OF_SERVICE = frozenset(
    {"19", "21", "22", "23", "24", "26", "31", "34", "41", "42", "51", "52", "53", "56", "61"}
)


class RateKey(NamedTuple):
    """What a rate applies to; an empty field matches any value of the line."""

    procedure_code: str
    modifier: str = ""
    billing_class: str = ""
    place_of_service: str = ""


@dataclass(frozen=True, slots=True)
class Rate:
    amount_cents: Cents
    unit: str = "per_unit"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"rate unit {self.unit!r} is not one of {', '.join(UNITS)}")
        if self.amount_cents < 0:
            raise ValueError(f"a rate cannot be negative ({self.amount_cents} cents)")


@dataclass(frozen=True)
class FeeScheduleSnapshot:
    """A fee schedule as plain data: what `allowed_amount` needs, nothing more."""

    key: str
    method: str
    percent: Decimal | None = None
    medicare_locality: str | None = None
    medicare_year: int = 2022
    rates: Mapping[RateKey, Rate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"fee schedule {self.key}: method {self.method!r} is not one of "
                f"{', '.join(METHODS)}"
            )
        if self.method == "percent_of_medicare" and (
            self.percent is None or self.percent <= 0 or not self.medicare_locality
        ):
            raise ValueError(
                f"fee schedule {self.key}: percent of Medicare needs a positive "
                "percent and a Medicare locality"
            )


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """The parts of a claim line that pricing looks at."""

    procedure_code: str
    modifiers: tuple[str, ...] = ()
    units: Decimal = Decimal(1)
    place_of_service: str = "11"
    billing_class: str = "professional"

    def __post_init__(self) -> None:
        if Decimal(self.units) <= 0:
            raise ValueError(f"{self.procedure_code}: units must be positive, not {self.units}")


@dataclass(frozen=True, slots=True)
class Priced:
    amount_cents: Cents
    method: str
    detail: str


class NoRate(LookupError):
    """The schedule has no price for the line; adjudication pends it with this reason."""

    def __init__(self, line: ServiceLine, schedule_key: str, reason: str) -> None:
        self.line, self.schedule_key, self.reason = line, schedule_key, reason
        super().__init__(
            f"no rate for {line.procedure_code} in fee schedule {schedule_key}: {reason}"
        )


def is_facility(place_of_service: str) -> bool:
    return place_of_service.strip().zfill(2) in FACILITY_PLACES_OF_SERVICE


def _round(amount: Decimal) -> Cents:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def find_rate(line: ServiceLine, schedule: FeeScheduleSnapshot) -> tuple[RateKey, Rate] | None:
    """The most specific rate for the line: modifier first, then billing class, then POS."""
    code = line.procedure_code.strip().upper()
    pos = line.place_of_service.strip().zfill(2)
    for modifier in (*(m.strip().upper() for m in line.modifiers), ""):
        for billing_class in (line.billing_class, ""):
            for place in (pos, ""):
                key = RateKey(code, modifier, billing_class, place)
                if key in schedule.rates:
                    return key, schedule.rates[key]
    return None


def _describe(key: RateKey) -> str:
    parts = [key.procedure_code + (f"-{key.modifier}" if key.modifier else "")]
    if key.billing_class:
        parts.append(key.billing_class)
    if key.place_of_service:
        parts.append(f"POS {key.place_of_service}")
    return " ".join(parts)


def _price_rate(
    line: ServiceLine, schedule: FeeScheduleSnapshot, key: RateKey, rate: Rate
) -> Priced:
    unit = "per_case" if schedule.method == "case_rate" else rate.unit
    units = Decimal(line.units)
    what = f"{schedule.key}: {_describe(key)} {format_money(rate.amount_cents)}"
    if unit == "per_case":
        return Priced(rate.amount_cents, "case_rate", f"{what} per case")
    amount = _round(Decimal(rate.amount_cents) * units)
    per = "day" if unit == "per_diem" else "unit"
    return Priced(amount, "per_code", f"{what} per {per} x {units}")


def allowed_amount(line: ServiceLine, schedule: FeeScheduleSnapshot) -> Priced:
    """The allowed amount of `line` under `schedule`, or NoRate saying why there is none."""
    found = find_rate(line, schedule)
    if found is not None:
        return _price_rate(line, schedule, *found)
    if schedule.method != "percent_of_medicare":
        raise NoRate(line, schedule.key, "the schedule has no amount for this code")
    if line.billing_class == "institutional":
        raise NoRate(
            line,
            schedule.key,
            "percent of Medicare uses the physician fee schedule; "
            "an institutional line needs a per-code amount",
        )
    modifier = next(
        (m.strip().upper() for m in line.modifiers if m.strip().upper() in PRICING_MODIFIERS), ""
    )
    try:
        fee = medicare_fee_detail(
            line.procedure_code,
            modifier,
            schedule.medicare_locality or "",
            is_facility(line.place_of_service),
            schedule.medicare_year,
        )
    except MedicareFeeError as exc:
        raise NoRate(line, schedule.key, str(exc)) from None
    units = Decimal(line.units)
    assert schedule.percent is not None  # checked when the snapshot was made
    amount = _round(Decimal(fee.cents) * schedule.percent / 100 * units)
    return Priced(
        amount,
        "percent_of_medicare",
        f"{schedule.key}: {schedule.percent}% of {format_money(fee.cents)} x {units} "
        f"[{fee.detail}]",
    )
