"""ICD-10-CM: is a diagnosis code a valid, billable code?

The 2026 code list (data/icd10cm_2026_all_codes_incl_7th_char.txt.gz, public domain via
the simple-icd-10-cm package) holds chapters, blocks, categories and every code with
its 7th characters. A billable code is a leaf: no other code in the list extends it.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources


@cache
def billable_codes() -> frozenset[str]:
    raw = (
        resources.files("openhmo.reference")
        .joinpath("data/icd10cm_2026_all_codes_incl_7th_char.txt.gz")
        .read_bytes()
    )
    codes = {line.strip() for line in gzip.decompress(raw).decode().splitlines()}
    codes = {c for c in codes if c and "-" not in c}
    parents = {c[:n] for c in codes for n in range(3, len(c))}
    return frozenset(codes - parents)


def normalise(code: str) -> str:
    return code.replace(".", "").strip().upper()


def is_billable(code: str | None) -> bool:
    return bool(code) and normalise(code) in billable_codes()
