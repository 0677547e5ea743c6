"""Exact money: amounts are integer cents, rates are Decimal percents.

Nothing in OpenHMO holds money in a float. Text such as "$1,250.00" or "$3000"
becomes cents here, and cents become text here, so every module agrees on the
format a member or a claims examiner reads.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

Cents = int

_MONEY = re.compile(r"^\s*(-)?\s*\$?\s*(-)?\s*(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d{1,2}))?\s*$")


class MoneyError(ValueError):
    """A text that should have been an amount of money is not one."""


def parse_money(text: str | int | Decimal) -> Cents:
    """Cents in an amount written as "$1,250", "1250.5", "$0.99" or an int of dollars.

    A Decimal with more than two places is refused rather than rounded: money that
    arrives with fractions of a cent is a data error the sender must see.
    """
    if isinstance(text, bool):
        raise MoneyError(f"{text!r} is not an amount of money")
    if isinstance(text, int):
        return text * 100
    if isinstance(text, Decimal):
        cents = text * 100
        if cents != cents.to_integral_value():
            raise MoneyError(f"{text} has fractions of a cent")
        return int(cents)
    m = _MONEY.match(str(text))
    if not m or (m.group(3) is None and m.group(4) is None):
        raise MoneyError(f"{text!r} is not an amount of money (expected e.g. $1,250.00)")
    negative = bool(m.group(1) or m.group(2))
    dollars = int((m.group(3) or "0").replace(",", ""))
    frac = (m.group(4) or "").ljust(2, "0")
    cents = dollars * 100 + int(frac or 0)
    return -cents if negative else cents


def format_money(cents: Cents, *, symbol: bool = True) -> str:
    """ "$1,250.00" for 125000 cents; negative amounts as "-$5.00"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{'$' if symbol else ''}{whole:,}.{frac:02d}"


def to_decimal(cents: Cents) -> Decimal:
    """Dollars as a Decimal with two places, for interfaces that speak dollars (X12, FHIR)."""
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01"))


def parse_percent(text: str | int | Decimal) -> Decimal:
    """A percent between 0 and 100 as a Decimal: "20%", "20.00%" and 20 all mean twenty percent."""
    if isinstance(text, Decimal | int) and not isinstance(text, bool):
        value = Decimal(text)
    else:
        raw = str(text).strip().rstrip("%").strip()
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:
            raise MoneyError(f"{text!r} is not a percent (expected e.g. 20%)") from exc
    if not Decimal(0) <= value <= Decimal(100):
        raise MoneyError(f"{text!r} is not a percent between 0% and 100%")
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def percent_of(cents: Cents, percent: Decimal) -> Cents:
    """percent% of an amount in cents, rounded half up to the cent."""
    return int((Decimal(int(cents)) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
