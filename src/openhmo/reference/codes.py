"""X12 code lists OpenHMO ships: claim adjustment reason codes (CARC) and group codes."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources


@cache
def _table(name: str) -> dict[str, str]:
    text = resources.files("openhmo.reference").joinpath(f"data/{name}").read_text("utf-8")
    return {row["code"]: row["description"] for row in csv.DictReader(io.StringIO(text))}


def carc_description(code: str) -> str:
    """The CARC list's own words for a code (e.g. 288 -> "Referral absent")."""
    return _table("carc_claim_adjustment_reason_codes_bfd.csv").get(code, "")


def group_description(code: str) -> str:
    return _table("carc_group_codes_bfd.csv").get(code, "")
