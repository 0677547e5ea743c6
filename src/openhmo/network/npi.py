"""National Provider Identifier: the ten-digit number with a Luhn check digit.

CMS computes the tenth digit with the Luhn formula over the nine-digit identifier
prefixed by 80840 (the card-issuer prefix of US health identifiers). An NPI that
fails the check is a typing error or made up, and a claim or directory entry
carrying one must be refused with the reason.
"""

from __future__ import annotations

import polars as pl

# The prefix 80840 adds a constant 24 to the Luhn sum, so it need not be spelled out.
_PREFIX_SUM = 24


class InvalidNpi(ValueError):
    """A text that should be an NPI is not one; the message says which and why."""


def _luhn_sum(first9: str) -> int:
    total = _PREFIX_SUM
    # Counting from the right of the nine digits (the check digit will sit to
    # their right), every other digit starting with the rightmost is doubled.
    for position, ch in enumerate(reversed(first9)):
        digit = int(ch)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def npi_check_digit(first9: str) -> int:
    """The check digit that completes the nine digits `first9` into a valid NPI."""
    first9 = str(first9)
    if len(first9) != 9 or not first9.isdigit():
        raise InvalidNpi(f"{first9!r} is not the first nine digits of an NPI")
    return (10 - _luhn_sum(first9) % 10) % 10


def validate_npi(npi: str | int) -> str:
    """The NPI as ten-digit text, or InvalidNpi saying what is wrong with it."""
    text = str(npi).strip()
    if not text:
        raise InvalidNpi("NPI is empty")
    # (ASCII digits only: str.isdigit also takes superscripts, which int() refuses.)
    if not (text.isascii() and text.isdigit()):
        raise InvalidNpi(f"NPI {text!r} has characters that are not digits")
    if len(text) != 10:
        raise InvalidNpi(f"NPI {text} has {len(text)} digits, expected 10")
    expected = npi_check_digit(text[:9])
    if int(text[9]) != expected:
        raise InvalidNpi(f"NPI {text} fails the check digit: expected {expected}, found {text[9]}")
    return text


def is_valid_npi(npi: str | int) -> bool:
    try:
        validate_npi(npi)
    except InvalidNpi:
        return False
    return True


def valid_npi(npi: pl.Expr) -> pl.Expr:
    """Whether each text of `npi` is a valid NPI, as `is_valid_npi` decides, for a whole
    column at once (null stays null): the adjudication engine checks every NPI of a
    partition, tens of thousands, where a Python call each took 18 ms."""
    text = npi.str.strip_chars()
    digits = [text.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(10)]
    # Counting from the check digit's left neighbour, every other digit is doubled.
    doubled = [(2 * d) - pl.when(2 * d > 9).then(9).otherwise(0) for d in digits[8::-2]]
    total = pl.sum_horizontal(*doubled, *digits[7::-2]) + _PREFIX_SUM
    expected = (10 - total % 10) % 10
    return (
        pl.when(npi.is_null())
        .then(None)
        .otherwise(text.str.contains(r"^[0-9]{10}$") & (digits[9] == expected))
    )


def make_npi(first9: str | int) -> str:
    """A valid NPI from nine digits, for synthetic providers (demo data, tests)."""
    first9 = str(first9).zfill(9)
    return first9 + str(npi_check_digit(first9))
