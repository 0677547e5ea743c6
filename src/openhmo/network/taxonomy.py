"""NUCC provider taxonomy: what a taxonomy code means, and what it lets a provider be.

The code set is the NUCC Health Care Provider Taxonomy shipped in
openhmo/reference/data (2021 edition). Which codes are PCP-eligible, pediatric or
OB/GYN is data, in pcp_taxonomies.yaml; how free-text specialties ("Family Practice",
"OB/GYN") map to codes is data too, in specialty_names.csv.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

NUCC_EDITION = "2021"
_CODE = re.compile(r"^[0-9]{3}[0-9A-Z]{6}X$")


class UnknownTaxonomy(ValueError):
    """A code that is not in the shipped NUCC taxonomy, or a specialty we cannot map."""


@dataclass(frozen=True, slots=True)
class Taxonomy:
    code: str
    grouping: str
    classification: str
    specialization: str
    display_name: str

    @property
    def specialty(self) -> str:
        """The specialty as a directory shows it: 'Internal Medicine, Geriatric Medicine'."""
        if self.specialization:
            return f"{self.classification}, {self.specialization}"
        return self.classification


@dataclass(frozen=True, slots=True)
class TaxonomyRoles:
    pcp_eligible: bool = False
    pcp_if_plan_allows: bool = False
    pediatric: bool = False
    ob_gyn: bool = False


@cache
def taxonomy_table() -> dict[str, Taxonomy]:
    raw = (
        resources.files("openhmo.reference")
        .joinpath("data/nucc_provider_taxonomy_2021.csv")
        .read_text(encoding="utf-8")
    )
    return {
        row["Code"].strip(): Taxonomy(
            row["Code"].strip(),
            row["Grouping"].strip(),
            row["Classification"].strip(),
            row["Specialization"].strip(),
            row["Display Name"].strip(),
        )
        for row in csv.DictReader(io.StringIO(raw))
    }


def is_taxonomy_code(text: str) -> bool:
    """Whether `text` is shaped like a taxonomy code (known or not)."""
    return bool(_CODE.match(text.strip().upper()))


def lookup_taxonomy(code: str) -> Taxonomy:
    code = code.strip().upper()
    try:
        return taxonomy_table()[code]
    except KeyError:
        raise UnknownTaxonomy(
            f"taxonomy code {code!r} is not in the NUCC provider taxonomy ({NUCC_EDITION})"
        ) from None


def specialty_of(code: str) -> str:
    return lookup_taxonomy(code).specialty


@cache
def _role_rules() -> list[tuple[str, dict]]:
    text = resources.files("openhmo.network").joinpath("pcp_taxonomies.yaml").read_text("utf-8")
    return [(str(entry["code"]).upper(), entry) for entry in yaml.safe_load(text)["roles"]]


def roles_of(code: str | None) -> TaxonomyRoles:
    """The roles of every rule in pcp_taxonomies.yaml whose code `code` starts with."""
    if not code:
        return TaxonomyRoles()
    code = code.strip().upper()
    found = {"pcp": False, "pcp_if_plan_allows": False, "pediatric": False, "ob_gyn": False}
    for prefix, entry in _role_rules():
        if code.startswith(prefix):
            for role in found:
                found[role] = found[role] or bool(entry.get(role))
    return TaxonomyRoles(
        found["pcp"], found["pcp_if_plan_allows"], found["pediatric"], found["ob_gyn"]
    )


def _squash(text: str) -> str:
    # "OB/GYN", "Ob-Gyn" and "obgyn" are one specialty; "&" and "and" too.
    return re.sub(r"[^A-Z0-9]", "", text.upper().replace("&", "AND"))


@cache
def _specialty_names() -> dict[str, str]:
    text = resources.files("openhmo.network").joinpath("specialty_names.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {
        _squash(row["specialty"]): row["taxonomy_code"].strip() for row in csv.DictReader(lines)
    }


def taxonomy_for_specialty(text: str) -> str:
    """The taxonomy code for a free-text specialty, or UnknownTaxonomy.

    The table in specialty_names.csv comes first; then a NUCC display name or a
    classification (without specialization) spelled the same way.
    """
    key = _squash(text)
    if not key:
        raise UnknownTaxonomy("specialty is empty")
    if key in _specialty_names():
        return _specialty_names()[key]
    if is_taxonomy_code(text) and text.strip().upper() in taxonomy_table():
        return text.strip().upper()
    for taxonomy in taxonomy_table().values():
        if _squash(taxonomy.display_name) == key:
            return taxonomy.code
    classes = [
        t.code
        for t in taxonomy_table().values()
        if not t.specialization and _squash(t.classification) == key
    ]
    if len(classes) == 1:
        return classes[0]
    raise UnknownTaxonomy(
        f"specialty {text!r} does not match a NUCC taxonomy; add it to specialty_names.csv"
    )


def search_prefix(code: str) -> str:
    """The code prefix a directory search by this code should match.

    A classification-level code ('207V00000X', '208000000X') stands for its whole
    classification, so searching it finds the specializations too ('207V', '2080');
    a specialization code stands for itself.
    """
    code = code.strip().upper()
    if code.endswith("00000X"):
        return code[:4]
    return code
