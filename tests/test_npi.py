"""NPI check digits: the Luhn formula over 80840 + the first nine digits (CMS)."""

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhmo.network.npi import (
    InvalidNpi,
    is_valid_npi,
    make_npi,
    npi_check_digit,
    valid_npi,
    validate_npi,
)


def test_the_cms_example_npi_is_valid():
    # CMS's worked example: 123456789 -> check digit 3.
    assert npi_check_digit("123456789") == 3
    assert validate_npi("1234567893") == "1234567893"
    assert validate_npi(1234567893) == "1234567893"
    assert is_valid_npi(" 1234567893 ")


@pytest.mark.parametrize(
    ("npi", "message"),
    [
        ("1234567890", "NPI 1234567890 fails the check digit: expected 3, found 0"),
        ("1111111111", "NPI 1111111111 fails the check digit: expected 2, found 1"),
        ("123456789", "NPI 123456789 has 9 digits, expected 10"),
        ("12345678933", "NPI 12345678933 has 11 digits, expected 10"),
        ("12345678A3", "NPI '12345678A3' has characters that are not digits"),
        ("\u00b2234567893", "NPI '\u00b2234567893' has characters that are not digits"),
        ("", "NPI is empty"),
    ],
)
def test_an_invalid_npi_says_which_and_why(npi, message):
    with pytest.raises(InvalidNpi) as caught:
        validate_npi(npi)
    assert str(caught.value) == message
    assert not is_valid_npi(npi)
    assert isinstance(caught.value, ValueError)


def test_the_transparency_in_coverage_sample_npis_fail_the_check_digit():
    samples = [1111111111, 2222222222, 3333333333, 4444444444, 5555555555, 1234567890]
    assert not any(is_valid_npi(n) for n in samples)


def test_check_digit_needs_nine_digits():
    with pytest.raises(InvalidNpi, match="first nine digits"):
        npi_check_digit("12345")


@given(st.integers(min_value=100_000_000, max_value=299_999_999))
def test_make_npi_always_makes_a_valid_npi(first9):
    npi = make_npi(first9)
    assert len(npi) == 10 and npi.startswith(str(first9))
    assert is_valid_npi(npi)


@given(
    st.integers(min_value=100_000_000, max_value=299_999_999),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_mistyped_digit_is_caught(first9, position, delta):
    npi = make_npi(first9)
    wrong = npi[:position] + str((int(npi[position]) + delta) % 10) + npi[position + 1 :]
    assert not is_valid_npi(wrong)


_NPI_LIKE = st.one_of(
    st.integers(min_value=0, max_value=999_999_999).map(make_npi),
    st.text(alphabet="0123456789", min_size=8, max_size=12),
    st.text(alphabet=" 0123456789A\u00b2\u0661\t", max_size=12),
    st.none(),
)


@given(st.lists(_NPI_LIKE, max_size=40))
def test_the_column_check_decides_as_the_one_by_one_check(npis):
    # The engine checks a partition's NPIs as a column (valid_npi); intake, the
    # directory and the 834 use validate_npi. Both must say the same of every text.
    column = pl.DataFrame({"npi": npis}, schema={"npi": pl.String})
    got = column.select(valid_npi(pl.col("npi"))).to_series().to_list()
    assert got == [None if n is None else is_valid_npi(n) for n in npis]
