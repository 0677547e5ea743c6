"""Exact money: text to cents and back, percents, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhmo.dates import add_months, end_of_month, first_of_next_month, months_between
from openhmo.money import (
    MoneyError,
    format_money,
    parse_money,
    parse_percent,
    percent_of,
    to_decimal,
)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("$1,250.00", 125000),
        ("$3000", 300000),
        ("$0.99", 99),
        ("1250.5", 125050),
        ("$0", 0),
        ("-$5.00", -500),
        ("$-5", -500),
        (" $ 12 ", 1200),
        (12, 1200),
        (Decimal("1.25"), 125),
    ],
)
def test_parse_money(text, cents):
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    "text", ["", "$", "twelve", "$1.234", "$1,23", "1.2.3", True, Decimal("0.001")]
)
def test_parse_money_refuses_what_is_not_money(text):
    with pytest.raises(MoneyError):
        parse_money(text)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_then_parse_is_the_identity(cents):
    assert parse_money(format_money(cents)) == cents
    assert to_decimal(cents) * 100 == cents


@given(
    st.integers(min_value=0, max_value=10**10), st.decimals(min_value=0, max_value=100, places=2)
)
def test_percent_of_is_exact_half_up_and_bounded(cents, percent):
    share = percent_of(cents, percent)
    exact = Decimal(cents) * percent / 100
    assert abs(Decimal(share) - exact) <= Decimal("0.5")
    assert 0 <= share <= cents
    assert percent_of(cents, Decimal(100)) == cents and percent_of(cents, Decimal(0)) == 0
    assert share + percent_of(cents, Decimal(100) - percent) in (cents, cents + 1, cents - 1)


def test_percent_of_rounds_half_up():
    assert percent_of(5, Decimal(10)) == 1  # 0.5 cent
    assert percent_of(4, Decimal(10)) == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("20%", Decimal(20)), ("20.00%", Decimal(20)), ("12.5%", Decimal("12.5")), (0, Decimal(0))],
)
def test_parse_percent(text, value):
    assert parse_percent(text) == value


@pytest.mark.parametrize("text", ["120%", "-1%", "lots"])
def test_parse_percent_refuses(text):
    with pytest.raises(MoneyError):
        parse_percent(text)


def test_calendar_rules():
    from datetime import date

    assert first_of_next_month(date(2026, 12, 15)) == date(2027, 1, 1)
    assert end_of_month(date(2028, 2, 3)) == date(2028, 2, 29)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 2, 1), 3) == date(2026, 5, 1)
    assert months_between(date(2026, 11, 15), date(2027, 2, 1)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
