"""Synthetic claims of any size, with no database: a whole HMO world as Polars frames.

Batch adjudication benchmarks and what-if runs need millions of realistic claim lines
and the context that decides them, faster than the demo (which goes through the
database and the real enrollment, billing and referral services) can make them. This
module builds the same kind of world directly in memory:

- the five example plan designs (`openhmo.plans.loader.example_designs`);
- a provider network of real NUCC taxonomies (the demo's roster, `demo/data/network.yaml`,
  scaled with the membership), contracts in `openhmo-core` on the demo's
  percent-of-Medicare fee schedules and their per-code amounts, a per-code pharmacy
  schedule, out-of-network providers, and the qualifying payment amounts computed as
  `openhmo.claims.context_db` computes them (median in-network allowed amount of a code);
- families of realistic sizes (singles, couples, single parents, couples with one to four
  children) spread over the plans (HMO mostly), joining on January 1 or later, a few
  ending mid-year, some in a premium grace period, PCPs for HMO and POS members;
- a year of care, about 12 claims per member-year (DOMAIN.md §6), skewed by a per-member
  frailty so that a few members use most of it: PCP visits (some with in-office labs),
  lab claims, preventive visits, specialist series with and without the PCP's referral,
  OB/GYN visits, screening mammograms, emergencies in and out of network (professional,
  facility and ambulance claims, some admitted), urgent care, imaging, advanced imaging
  with and without prior authorization, therapy, behavioural health and chiropractic
  series, hospital stays, maternity, DME rentals, pharmacy fills, out-of-network visits
  that are not emergencies, care after coverage ended, duplicates, replacements (7) and
  voids (8), and the odd claim filed too late.

`generate_world(members, year, seed)` gives `(claims, context)` in memory;
`write_world(members, year, out_dir, seed)` writes `claims.parquet` and a context
snapshot (`openhmo.batch.snapshot`) chunk by chunk, so memory stays bounded at any size.
The same seed and size give the same world, row for row: every random draw comes from a
numpy Generator seeded by (seed, purpose, chunk), and chunks are made in order.

Claims are ordered by family (the subscriber's member id, which is also the order of
member numbers `OHM<family>-<nn>`), then service date, received_at, claim_id and line
number: the order adjudication decides them in. Claim ids are given in that order.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import yaml

from openhmo.adjudication.context import CLAIM_LINES, SCHEMAS, Context, empty
from openhmo.batch.snapshot import write_snapshot
from openhmo.categories import ServiceCategory
from openhmo.money import parse_money
from openhmo.network.npi import make_npi
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
)
from openhmo.network.taxonomy import roles_of, specialty_of
from openhmo.plans.design import PlanDesign
from openhmo.plans.loader import example_designs, load_design

Progress = Callable[[int], None]

NETWORK = "openhmo-core"
CHUNK_MEMBERS = 25_000
# Row groups of claims.parquet hold whole families and about this many lines, so a
# reader can take families partition by partition without reading the whole file.
ROW_GROUP_LINES = 128 * 1024
EPOCH = date(1970, 1, 1)
US_PER_DAY = 86_400 * 1_000_000

# The share of members by plan type (split evenly between designs of one type).
PLAN_MIX = {"HMO": 0.55, "EPO": 0.10, "POS": 0.10, "PPO": 0.18, "indemnity": 0.07}
# How often a member of a plan type sees a specialist outside the network by choice:
# PPO and POS members may (they pay more), HMO and EPO members rarely do (CO-242).
SPECIALIST_OON = {"HMO": 0.02, "EPO": 0.02, "POS": 0.10, "PPO": 0.15, "indemnity": 0.10}
THERAPIST_OON = {"HMO": 0.04, "EPO": 0.04, "POS": 0.15, "PPO": 0.20, "indemnity": 0.15}

FAMILY_SHAPES = (("single", 0.34), ("couple", 0.24), ("single_parent", 0.10), ("kids", 0.32))
CHILDREN = ((1, 0.42), (2, 0.38), (3, 0.15), (4, 0.05))

CITIES = (
    "Boston", "Cambridge", "Somerville", "Quincy", "Newton", "Brookline", "Framingham",
    "Lowell", "Lynn", "Salem", "Worcester", "Brockton", "Waltham", "Medford", "Malden",
    "Peabody", "Plymouth", "Weymouth", "Dedham", "Needham", "Woburn", "Lawrence",
)  # fmt: skip

# --- what the claims say ------------------------------------------------------------------

COMMON_DX = (
    "J069", "I10", "E119", "M5450", "F411", "J45909", "R051", "K219", "N390", "J029",
    "H6590", "L309", "R109", "M25561", "E785", "M542", "R519", "G4733", "E039", "J329",
)  # fmt: skip
ER_DX = ("R0789", "S93401A", "R109", "J45909", "S0990XA", "R0602", "S6290XA", "R1310")
URGENT_DX = ("J069", "J029", "S93401A", "N390", "H6590", "J209")
GYN_DX = ("N390", "N952", "N760")
CHRONIC_DX = ("I10", "E119", "E785", "F329", "J45909", "F411", "E039")
ACUTE_DX = ("J029", "J069", "N390", "H6590", "J0190")
DX = tuple(
    dict.fromkeys(
        COMMON_DX
        + ER_DX
        + URGENT_DX
        + GYN_DX
        + CHRONIC_DX
        + ACUTE_DX
        + ("Z00129", "Z0000", "Z1231", "M25511", "F419", "Z3480", "O80", "M5416", "R42")
    )
)
DX_INDEX = {code: i for i, code in enumerate(DX)}

PLACES = ("11", "81", "20", "22", "23", "41", "21", "12")
POS = {p: i for i, p in enumerate(PLACES)}
CLAIM_TYPES = ("professional", "institutional", "pharmacy")
PROF, INST, PHARM = 0, 1, 2

# Line templates: (procedure code, revenue code, units, charge per unit in cents,
# modifiers, drug tier). Units "claim" take the claim's units (days of a stay, miles,
# the quantity dispensed). Charges are the provider's charge master before its own
# factor; every code here has an in-network price (Medicare or a per-code amount).
TEMPLATES: dict[str, list[tuple]] = {
    "pcp_99213": [("99213", None, 1, 17500, (), None)],
    "pcp_99214": [("99214", None, 1, 26000, (), None)],
    "pcp_99213_labs": [
        ("99213", None, 1, 17500, (), None),
        ("36415", None, 1, 1200, (), None),
        ("85025", None, 1, 3200, (), None),
    ],
    "pcp_99214_labs": [
        ("99214", None, 1, 26000, (), None),
        ("36415", None, 1, 1200, (), None),
        ("80053", None, 1, 4800, (), None),
        ("83036", None, 1, 4000, (), None),
    ],
    "lab_panel": [
        ("80053", None, 1, 4800, (), None),
        ("85025", None, 1, 3200, (), None),
        ("36415", None, 1, 1200, (), None),
    ],
    "lab_lipid": [("80061", None, 1, 6500, (), None), ("36415", None, 1, 1200, (), None)],
    "lab_a1c": [("83036", None, 1, 4000, (), None), ("36415", None, 1, 1200, (), None)],
    "lab_ua": [("81001", None, 1, 2000, (), None)],
    "prev_99391": [("99391", None, 1, 26000, (), None)],
    "prev_99392": [("99392", None, 1, 27000, (), None)],
    "prev_99393": [("99393", None, 1, 27000, (), None)],
    "prev_99394": [("99394", None, 1, 29000, (), None)],
    "prev_99395": [("99395", None, 1, 31000, (), None)],
    "prev_99396": [("99396", None, 1, 33000, (), None)],
    "prev_99396_labs": [
        ("99396", None, 1, 33000, (), None),
        ("80061", None, 1, 6500, (), None),
        ("36415", None, 1, 1200, (), None),
    ],
    "spec_new": [("99204", None, 1, 38000, (), None)],
    "spec_follow": [("99214", None, 1, 26000, (), None)],
    "spec_follow_labs": [
        ("99214", None, 1, 26000, (), None),
        ("36415", None, 1, 1200, (), None),
        ("80053", None, 1, 4800, (), None),
    ],
    "obgyn": [("99213", None, 1, 19000, (), None)],
    "mammo": [("77067", None, 1, 28000, (), None)],
    "er_99283": [("99283", None, 1, 45000, (), None)],
    "er_99284": [("99284", None, 1, 65000, (), None)],
    "er_99285": [("99285", None, 1, 95000, (), None)],
    "er_fac": [(None, "0450", 1, 240000, (), None)],
    "er_fac_xray": [(None, "0450", 1, 240000, (), None), (None, "0320", 1, 60000, (), None)],
    "er_fac_lab": [(None, "0450", 1, 240000, (), None), (None, "0300", 1, 35000, (), None)],
    "er_fac_full": [
        (None, "0450", 1, 240000, (), None),
        (None, "0300", 1, 35000, (), None),
        (None, "0320", 1, 60000, (), None),
    ],
    "ambulance": [
        ("A0427", None, 1, 180000, (), None),
        ("A0425", None, "claim", 2500, (), None),
    ],
    "urgent": [("99213", None, 1, 19000, (), None)],
    "urgent_strep": [("99213", None, 1, 19000, (), None), ("87880", None, 1, 4500, (), None)],
    "xray_chest": [("71046", None, 1, 12000, (), None)],
    "xray_shoulder": [("73030", None, 1, 11000, (), None)],
    "mri_brain": [("70551", None, 1, 190000, (), None)],
    "mri_lumbar": [("72148", None, 1, 210000, (), None)],
    "ct_abdomen": [("74177", None, 1, 240000, (), None)],
    "pt": [("97110", None, 2, 9000, ("GP",), None), ("97140", None, 1, 8000, ("GP",), None)],
    "psych_60": [("90837", None, 1, 22000, (), None)],
    "psych_45": [("90834", None, 1, 16000, (), None)],
    "psychiatry": [("99214", None, 1, 30000, (), None)],
    "chiro": [("98941", None, 1, 9500, (), None)],
    "inpatient": [(None, "0120", "claim", 420000, (), None)],
    "hospitalist": [("99223", None, 1, 52000, (), None)],
    "prenatal": [("59400", None, 1, 520000, (), None)],
    "delivery": [(None, "0720", 1, 380000, (), None), (None, "0122", "claim", 350000, (), None)],
    "cpap": [("E0601", None, 1, 25000, (), None)],
    "oon_visit": [("99214", None, 1, 30000, (), None)],
    "rx_metformin": [("00093715001", None, "claim", 45, (), "generic")],
    "rx_lisinopril": [("00093105801", None, "claim", 40, (), "generic")],
    "rx_atorvastatin": [("00378395105", None, "claim", 60, (), "generic")],
    "rx_sertraline": [("00093717198", None, "claim", 55, (), "generic")],
    "rx_amoxicillin": [("00093310905", None, "claim", 35, (), "generic")],
    "rx_brand": [("00006027754", None, "claim", 1200, (), "preferred_brand")],
    "rx_inhaler": [("00173068220", None, "claim", 1100, (), "preferred_brand")],
    "rx_nonpreferred": [("00002771501", None, "claim", 1800, (), "non_preferred_brand")],
    "rx_specialty": [("00074433902", None, "claim", 320000, (), "specialty")],
}
TEMPLATE_IDS = {name: i for i, name in enumerate(TEMPLATES)}
T = TEMPLATE_IDS
PREVENTIVE_BY_AGE = ((1, "prev_99391"), (5, "prev_99392"), (12, "prev_99393"), (18, "prev_99394"))
CHRONIC_RX = (("rx_metformin", "rx_lisinopril", "rx_atorvastatin", "rx_sertraline"), "rx_brand")

# Per-code amounts the demo's network.yaml does not list, for codes the Medicare sample
# does not price (every in-network line must find a price, or it pends).
EXTRA_RATES = {
    "80061": "$19.00",
    "87880": "$17.00",
    "73030": "$40.00",
    "72148": "$560.00",
    "74177": "$640.00",
    "99223": "$210.00",
    "90834": "$140.00",
    "A0425": "$9.00",
    "0300": "$160.00",
    "0320": "$310.00",
    "0720": "$2,900.00",
    "0122": "$2,600.00",
}
PER_DIEM = frozenset({"0120", "0122"})
PHARMACY_SCHEDULE = "core-pharmacy"
# What the pharmacy network pays per unit dispensed (cents).
DRUG_RATES = {
    "00093715001": 15,
    "00093105801": 12,
    "00378395105": 20,
    "00093717198": 18,
    "00093310905": 12,
    "00006027754": 950,
    "00173068220": 900,
    "00002771501": 1400,
    "00074433902": 290000,
}

# Kinds of claim (internal: the summary and the referral flags use them).
KINDS = (
    "pcp", "lab", "preventive", "specialist", "ob_gyn", "mammography", "er_professional",
    "er_facility", "ambulance", "urgent_care", "imaging", "advanced_imaging", "therapy",
    "behavioral", "chiropractic", "inpatient_facility", "inpatient_professional",
    "maternity_professional", "maternity_facility", "dme", "drug", "oon_visit", "after_end",
)  # fmt: skip
K = {name: i for i, name in enumerate(KINDS)}
# The service category a kind of claim falls in, where it may need a referral.
KIND_CATEGORY = {
    "specialist": ServiceCategory.SPECIALIST_VISIT,
    "advanced_imaging": ServiceCategory.ADVANCED_IMAGING,
    "therapy": ServiceCategory.REHABILITATION,
    "chiropractic": ServiceCategory.CHIROPRACTIC,
}
EMERGENCY_KINDS = ("er_professional", "er_facility", "ambulance")

# Specialists (taxonomy prefixes) a PCP refers to; the HMO sends the last two to review.
SPECIALTIES = (
    "207RC", "207N", "207RG", "2084N", "207Y", "207W", "207RE", "2088", "207RX", "207X", "2086",
)  # fmt: skip
REVIEW_SPECIALTIES = ("207X", "2086")


# --- the world that does not depend on members -----------------------------------------


@dataclass
class Network:
    """Providers, contracts, fee schedules and QPAs, plus the pools claims draw from."""

    providers: pl.DataFrame
    contracts: pl.DataFrame
    fee_schedules: pl.DataFrame
    fee_rates: pl.DataFrame
    qpa: pl.DataFrame
    npi: pl.Series  # by provider index
    taxonomy: np.ndarray
    charge_factor: np.ndarray  # the provider's charge master against the template's
    contract_start: np.ndarray  # day numbers; no contract: start after every date
    contract_end: np.ndarray
    pools: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (in network, out of network)


def _network_spec() -> dict:
    text = resources.files("openhmo.demo").joinpath("data/network.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _people() -> dict:
    text = resources.files("openhmo.demo").joinpath("data/people.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _day(d: date) -> int:
    return (d - EPOCH).days


def build_network(members: int, year: int, seed: int) -> Network:
    """The provider network for `members` members: the demo's roster, one copy per
    10,000 members (at least one), 8% of individuals and some facilities out of network."""
    rng = np.random.default_rng([seed, 1])
    spec = _network_spec()
    people = _people()
    copies = max(1, math.ceil(members / 10_000))
    far = _day(date(year + 100, 1, 1))
    rows: list[dict] = []
    contract_rows: list[dict] = []
    taxonomies: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    # Kinds that must have someone out of network (emergencies and choices depend on it).
    need_oon = {"207P00000X", "282N00000X", "103T00000X", "207Q00000X", "207RC0000X"}
    serial = seed * 7919 % 10_000_000

    def add(taxonomy: str, name: str, entity: str, schedule: str | None, oon: bool) -> None:
        nonlocal serial
        serial += 1
        number = make_npi(f"1{serial % 100_000_000:08d}")
        rows.append(
            {
                "npi": number,
                "name": name,
                "taxonomy_code": taxonomy,
                "specialty": specialty_of(taxonomy),
                "entity_type": entity,
            }
        )
        taxonomies.append(taxonomy)
        if oon or schedule is None:
            starts.append(far)
            ends.append(far)
            return
        start = date(year - 1, 1, 1)
        end = None
        # A few specialists leave the network at mid-year: later claims are out of network.
        if entity == "individual" and not roles_of(taxonomy).pcp_eligible and rng.random() < 0.02:
            end = date(year, 6, 30)
        contract_rows.append(
            {
                "npi": number,
                "network_key": NETWORK,
                "start": start,
                "end": end,
                "fee_schedule_key": schedule,
            }
        )
        starts.append(_day(start))
        ends.append(_day(end) if end else far)

    female, male, last = people["female_first"], people["male_first"], people["last"]
    credentials = {
        "363LF0000X": "NP",
        "103T00000X": "PhD",
        "1041C0700X": "LICSW",
        "225100000X": "DPT",
        "111N00000X": "DC",
    }
    share = spec["out_of_network_share"]
    for taxonomy, count in spec["individuals"].items():
        total = count * copies
        oon = rng.random(total) < share
        if taxonomy in need_oon and not oon.any():
            oon[-1] = True
        schedule = "core-primary-care" if roles_of(taxonomy).pcp_eligible else "core-professional"
        for i in range(total):
            names = female if rng.random() < 0.5 else male
            first = names[rng.integers(len(names))]
            name = f"{first} {last[rng.integers(len(last))]}, {credentials.get(taxonomy, 'MD')}"
            add(taxonomy, name, "individual", schedule, bool(oon[i]))
    for facility in spec["facilities"]:
        taxonomy = facility["taxonomy"]
        total = facility["count"] * copies
        # Hospitals and urgent care centres outside the network take emergencies.
        oon = rng.random(total) < (0.12 if facility["kind"] in ("hospital", "urgent_care") else 0)
        if taxonomy in need_oon and not oon.any():
            oon[-1] = True
        schedule = PHARMACY_SCHEDULE if facility["kind"] == "pharmacy" else "core-facility"
        for i in range(total):
            city = CITIES[rng.integers(len(CITIES))]
            add(
                taxonomy, facility["name"].format(city=city), "organization", schedule, bool(oon[i])
            )

    providers = pl.DataFrame(rows, schema=SCHEMAS["providers"])
    taxonomy = np.array(taxonomies)
    contract_start = np.array(starts, dtype=np.int64)
    contract_end = np.array(ends, dtype=np.int64)
    in_network = contract_start < far

    def pool(predicate: Callable[[str], bool]) -> tuple[np.ndarray, np.ndarray]:
        hit = np.array([predicate(t) for t in taxonomies], dtype=bool)
        return np.flatnonzero(hit & in_network), np.flatnonzero(hit & ~in_network)

    pools = {
        "adult_pcp": pool(lambda t: t in ("207Q00000X", "207R00000X", "208D00000X", "363LF0000X")),
        "pediatrics": pool(lambda t: t == "208000000X"),
        "obgyn": pool(lambda t: t.startswith("207V")),
        "emergency": pool(lambda t: t.startswith("207P")),
        "hospitalist": pool(lambda t: t == "207R00000X"),
        "therapist": pool(lambda t: t.startswith("2251")),
        "behavioral": pool(lambda t: t.startswith(("103T", "1041C", "2084P"))),
        "chiropractor": pool(lambda t: t.startswith("111N")),
        "hospital": pool(lambda t: t.startswith("282N")),
        "urgent_care": pool(lambda t: t.startswith("261QU")),
        "lab": pool(lambda t: t.startswith("291U")),
        "imaging": pool(lambda t: t.startswith("261QR")),
        "ambulance": pool(lambda t: t.startswith("3416")),
        "pharmacy": pool(lambda t: t.startswith("3336")),
        "dme": pool(lambda t: t.startswith("332B")),
        "individual": pool(lambda t: not t.startswith(("28", "26", "29", "33", "34"))),
    }
    for prefix in SPECIALTIES:
        pools[prefix] = pool(lambda t, p=prefix: t.startswith(p))

    schedules, rates = _fee_schedules(spec)
    snapshots = _snapshots(schedules, rates)
    used = {c["fee_schedule_key"] for c in contract_rows}
    return Network(
        providers=providers,
        contracts=pl.DataFrame(contract_rows, schema=SCHEMAS["contracts"]),
        fee_schedules=pl.DataFrame(schedules, schema=SCHEMAS["fee_schedules"]),
        fee_rates=pl.DataFrame(rates, schema=SCHEMAS["fee_rates"]),
        qpa=pl.DataFrame(_qpa([s for s in snapshots if s.key in used]), schema=SCHEMAS["qpa"]),
        npi=providers["npi"],
        taxonomy=taxonomy,
        charge_factor=np.clip(rng.lognormal(0.0, 0.2, len(rows)), 0.7, 1.8),
        contract_start=contract_start,
        contract_end=contract_end,
        pools=pools,
    )


def _fee_schedules(spec: dict) -> tuple[list[dict], list[dict]]:
    schedules = [
        {
            "fee_schedule_key": s["key"],
            "method": s["method"],
            "percent": Decimal(str(s["percent"])),
            "medicare_locality": s["locality"],
        }
        for s in spec["fee_schedules"]
    ]
    schedules.append(
        {
            "fee_schedule_key": PHARMACY_SCHEDULE,
            "method": "per_code",
            "percent": None,
            "medicare_locality": None,
        }
    )
    amounts = {**spec["per_code_rates"], **EXTRA_RATES}
    rates = [
        {
            "fee_schedule_key": s["key"],
            "procedure_code": code,
            "modifier": None,
            "billing_class": None,
            "place_of_service": None,
            "unit": "per_diem" if code in PER_DIEM else "per_unit",
            "amount_cents": parse_money(amount),
        }
        for s in spec["fee_schedules"]
        for code, amount in amounts.items()
    ]
    rates += [
        {
            "fee_schedule_key": PHARMACY_SCHEDULE,
            "procedure_code": code,
            "modifier": None,
            "billing_class": None,
            "place_of_service": None,
            "unit": "per_unit",
            "amount_cents": cents,
        }
        for code, cents in DRUG_RATES.items()
    ]
    return schedules, rates


def _snapshots(schedules: list[dict], rates: list[dict]) -> list[FeeScheduleSnapshot]:
    by_key: dict[str, dict[RateKey, Rate]] = {}
    for r in rates:
        by_key.setdefault(r["fee_schedule_key"], {})[RateKey(r["procedure_code"])] = Rate(
            r["amount_cents"], r["unit"]
        )
    return [
        FeeScheduleSnapshot(
            key=s["fee_schedule_key"],
            method=s["method"],
            percent=s["percent"],
            medicare_locality=s["medicare_locality"],
            rates=by_key.get(s["fee_schedule_key"], {}),
        )
        for s in schedules
    ]


def _qpa(snapshots: list[FeeScheduleSnapshot]) -> list[dict]:
    """The QPA of every code the claims use, as openhmo.claims.context_db computes it:
    the median allowed amount of one unit across the schedules contracts use."""
    codes = sorted({line[0] or line[1] for lines in TEMPLATES.values() for line in lines})
    out = []
    for code in codes:
        for billing_class in ("professional", "institutional"):
            line = ServiceLine(procedure_code=code, billing_class=billing_class)
            amounts = []
            for snapshot in snapshots:
                try:
                    amounts.append(allowed_amount(line, snapshot).amount_cents)
                except (NoRate, ValueError):
                    continue
            if amounts:
                ordered = sorted(amounts)
                mid = len(ordered) // 2
                median = (
                    ordered[mid]
                    if len(ordered) % 2
                    else int(
                        (Decimal(ordered[mid - 1] + ordered[mid]) / 2).quantize(
                            Decimal(1), rounding=ROUND_HALF_UP
                        )
                    )
                )
                out.append(
                    {
                        "procedure_code": code,
                        "modifier": "",
                        "billing_class": billing_class,
                        "amount_cents": median,
                    }
                )
    return out


def _template_lines() -> pl.DataFrame:
    rows = []
    for name, lines in TEMPLATES.items():
        for number, (code, revenue, units, cents, modifiers, tier) in enumerate(lines, 1):
            rows.append(
                {
                    "template": TEMPLATE_IDS[name],
                    "line_number": number,
                    "procedure_code": code,
                    "revenue_code": revenue,
                    "fixed_units": None if units == "claim" else units,
                    "unit_charge": cents,
                    "modifiers": list(modifiers),
                    "drug_tier": tier,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "template": pl.Int16,
            "line_number": pl.Int64,
            "procedure_code": pl.String,
            "revenue_code": pl.String,
            "fixed_units": pl.Int64,
            "unit_charge": pl.Int64,
            "modifiers": pl.List(pl.String),
            "drug_tier": pl.String,
        },
    )


# --- plans ----------------------------------------------------------------------------------


@dataclass
class Plans:
    designs: dict[str, PlanDesign]
    keys: list[str]
    types: list[str]
    weights: np.ndarray
    referral: np.ndarray  # [plan, kind] the kind's category needs a referral
    prior_auth: dict[str, np.ndarray]  # category -> [plan] needs an authorization
    pcp: np.ndarray  # [plan] members choose a PCP
    without_year: list[str]  # plans with no plan year for the year generated


@cache
def _example_designs() -> dict[str, PlanDesign]:
    # Designs are immutable (frozen models); reading and validating them takes a while.
    designs = {}
    for path in example_designs():
        design = load_design(path)
        designs[design.id] = design
    return designs


def load_plans(year: int) -> Plans:
    """The example plans, and what the generator needs to know of each for `year`."""
    designs = dict(_example_designs())
    keys = sorted(designs)
    types = [designs[k].type.value for k in keys]
    per_type = {t: types.count(t) for t in set(types)}
    weights = np.array([PLAN_MIX.get(t, 0.05) / per_type[t] for t in types])
    referral = np.zeros((len(keys), len(KINDS)), dtype=bool)
    categories = [
        ServiceCategory.ADVANCED_IMAGING,
        ServiceCategory.INPATIENT,
        ServiceCategory.DME,
        ServiceCategory.DRUGS_SPECIALTY,
    ]
    prior_auth = {c.value: np.zeros(len(keys), dtype=bool) for c in categories}
    without_year = []
    for p, key in enumerate(keys):
        design = designs[key]
        if design.rules.referral_required:
            needed = set(design.referrals.required_for) - set(design.referrals.direct_access)
            for kind, category in KIND_CATEGORY.items():
                referral[p, K[kind]] = category in needed
        plan_year = design.plan_year_on(date(year, 7, 1))
        if plan_year is None:
            without_year.append(key)
        for category in categories:
            prior_auth[category.value][p] = (
                design.needs_prior_authorization(plan_year, category)
                if plan_year is not None
                else category in design.prior_authorization
            )
    return Plans(
        designs=designs,
        keys=keys,
        types=types,
        weights=weights / weights.sum(),
        referral=referral,
        prior_auth=prior_auth,
        pcp=np.array([designs[k].rules.pcp_required for k in keys], dtype=bool),
        without_year=without_year,
    )


# --- families -------------------------------------------------------------------------------


def family_sizes(members: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes of the families (summing to exactly `members`) and whether each has a spouse."""
    rng = np.random.default_rng([seed, 0])
    sizes: list[np.ndarray] = []
    spouses: list[np.ndarray] = []
    total = 0
    while total < members:
        n = max(16, int((members - total) / 2.2) + 16)
        shape = rng.choice(len(FAMILY_SHAPES), n, p=[w for _, w in FAMILY_SHAPES])
        kids = rng.choice([k for k, _ in CHILDREN], n, p=[w for _, w in CHILDREN])
        spouse = (shape == 1) | (shape == 3)
        size = 1 + spouse + np.where(shape >= 2, kids, 0)
        sizes.append(size)
        spouses.append(spouse)
        total += int(size.sum())
    size = np.concatenate(sizes)
    spouse = np.concatenate(spouses)
    cum = np.cumsum(size)
    last = int(np.searchsorted(cum, members))  # the family that reaches `members`
    size = size[: last + 1].copy()
    spouse = spouse[: last + 1].copy()
    size[-1] -= int(cum[last] - members)
    spouse[-1] &= size[-1] > 1
    return size.astype(np.int64), spouse


@dataclass
class Counters:
    """Ids handed out so far (chunks are made in order, so ids are the same every run)."""

    member: int = 0
    family: int = 0
    claim: int = 0
    referral: int = 0
    auth: int = 0


@dataclass
class Chunk:
    claims: pl.DataFrame  # CLAIM_LINES, ordered by family
    family_of_line: np.ndarray  # family id of each line (row groups cut between families)
    eligibility: pl.DataFrame
    grace_periods: pl.DataFrame
    pcp: pl.DataFrame
    referrals: pl.DataFrame
    prior_auths: pl.DataFrame
    stats: dict[str, int]


@dataclass
class _Members:
    """One chunk's members as arrays (index = member within the chunk)."""

    family: np.ndarray  # family index within the chunk
    member_id: np.ndarray
    family_id: np.ndarray
    plan: np.ndarray
    age: np.ndarray
    female: np.ndarray
    lo: np.ndarray  # first covered day of the year (day number)
    hi: np.ndarray  # last covered day of the year; hi < lo: none
    end: np.ndarray  # termination day, or a day after the year
    frailty: np.ndarray
    doctor: np.ndarray  # provider index of the member's own doctor (PCP for HMO/POS)
    pharmacy: np.ndarray


class _Builder:
    """Claims of a chunk as column arrays, kind by kind, before they become frames."""

    COLUMNS = (
        ("member", np.int64, None),
        ("day", np.int64, None),
        ("template", np.int16, None),
        ("billing", np.int64, None),
        ("ctype", np.int8, PROF),
        ("pos", np.int8, -1),
        ("dx1", np.int16, None),
        ("dx2", np.int16, -1),
        ("emergency", bool, False),
        ("referral", np.int64, -1),
        ("referral_on_file", bool, False),
        ("auth", np.int64, -1),
        ("units", np.int64, 1),
        ("kind", np.int8, None),
    )

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in self.COLUMNS}

    def add(self, **columns) -> None:
        n = len(columns["member"])
        if n == 0:
            return
        for name, dtype, default in self.COLUMNS:
            value = columns.get(name, default)
            if value is None:
                raise ValueError(f"claims of kind {columns.get('kind')}: {name} is required")
            self.parts[name].append(np.broadcast_to(np.asarray(value, dtype=dtype), n))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: (np.concatenate(self.parts[name]) if self.parts[name] else np.zeros(0, dtype))
            for name, dtype, _ in self.COLUMNS
        }


class _ChunkMaker:
    def __init__(self, network: Network, plans: Plans, year: int, seed: int):
        self.network, self.plans, self.year, self.seed = network, plans, year, seed
        self.year_lo = _day(date(year, 1, 1))
        self.year_hi = _day(date(year, 12, 31))
        self.month_start = np.array(
            [_day(date(year, m, 1)) for m in range(1, 13)] + [_day(date(year + 1, 1, 1))]
        )
        self.people = _people()
        self.templates = _template_lines()
        self.dx = pl.Series(DX)

    # --- members ----------------------------------------------------------------------

    def members(
        self, rng: np.random.Generator, sizes: np.ndarray, spouse: np.ndarray, counters: Counters
    ) -> tuple[_Members, dict[str, pl.DataFrame]]:
        nf = len(sizes)
        n = int(sizes.sum())
        plans = self.plans
        family = np.repeat(np.arange(nf), sizes)
        first_of_family = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        position = np.arange(n) - first_of_family[family]
        member_id = counters.member + 1 + np.arange(n)
        family_id = member_id[first_of_family][family]  # the subscriber's member id
        coverage_id = counters.family + 1 + np.arange(nf)

        plan_f = rng.choice(len(plans.keys), nf, p=plans.weights)
        joins_late = rng.random(nf) < 0.15
        start_month = np.where(joins_late, rng.integers(2, 10, nf), 1)  # 1..12
        start_f = self.month_start[start_month - 1]
        # About 6% of families end mid-year: non-payment, a move, or by choice.
        ends = (rng.random(nf) < 0.06) & (start_month < 11)
        end_month = np.minimum(start_month + 1 + rng.integers(0, 11, nf), 11)
        end_f = np.where(ends, self.month_start[end_month] - 1, -1)  # last day of the month
        reasons = np.array(["non_payment", "moved_out_of_service_area", "voluntary"])
        reason_f = reasons[rng.choice(3, nf, p=[0.45, 0.2, 0.35])]
        subsidized_f = rng.random(nf) < 0.3
        has_kids = sizes > 1 + spouse
        tier_f = np.where(
            sizes == 1,
            "self_only",
            np.where(
                spouse & has_kids,
                "family",
                np.where(spouse, "self_plus_spouse", "self_plus_children"),
            ),
        )

        # Ages on July 1: subscriber 22-64, spouse within five years, children younger.
        sub_age = rng.integers(22, 65, nf)
        role = np.where(position == 0, 0, np.where((position == 1) & spouse[family], 1, 2))
        age = np.where(
            role == 0,
            sub_age[family],
            np.where(
                role == 1,
                np.clip(sub_age[family] + rng.integers(-5, 6, n), 22, 64),
                (rng.random(n) * (np.minimum(25, sub_age[family] - 20) + 1)).astype(np.int64),
            ),
        )
        mid = _day(date(self.year, 7, 1))
        birth = mid - age * 365 - rng.integers(0, 365, n) - age // 4
        # A few families have a baby during the year, covered from birth.
        born_in_year = self.year_lo + rng.integers(31, 330, n)
        newborn = (
            (role == 2)
            & (position == sizes[family] - 1)
            & (sub_age[family] < 45)
            & (rng.random(n) < 0.04)
            & ((end_f[family] < 0) | (born_in_year <= end_f[family]))
        )
        birth = np.where(newborn, born_in_year, birth)
        age = np.where(newborn, 0, age)
        sub_sex_f = rng.random(nf) < 0.5
        female = np.where(
            role == 0,
            sub_sex_f[family],
            np.where(role == 1, ~sub_sex_f[family] ^ (rng.random(n) < 0.05), rng.random(n) < 0.49),
        )
        start = np.where(newborn, np.maximum(start_f[family], birth), start_f[family])
        end = np.where(end_f[family] >= 0, end_f[family], self.year_hi + 10_000)
        lo = np.maximum(start, self.year_lo)
        hi = np.minimum(end, self.year_hi)

        # Frailty: most members use little care, a few use a lot (a gamma of mean one),
        # more with age; babies see the doctor often.
        age_factor = np.select(
            [age < 1, age < 18, age < 40, age < 55], [1.6, 0.8, 0.75, 1.1], default=1.5
        )
        frailty = rng.gamma(0.7, 1 / 0.7, n) * age_factor

        # Doctors: a family doctor per family, a pediatrician for most children. HMO,
        # POS and EPO members stay in the network; PPO and indemnity members may not.
        net = self.network
        adult_in, adult_out = net.pools["adult_pcp"]
        peds_in, _ = net.pools["pediatrics"]
        in_net_f = plans.pcp[plan_f] | (np.array(plans.types)[plan_f] == "EPO")
        stray_f = ~in_net_f & (rng.random(nf) < 0.10) & (len(adult_out) > 0)
        family_doctor = np.where(
            stray_f,
            adult_out[rng.integers(0, max(1, len(adult_out)), nf)] if len(adult_out) else 0,
            adult_in[rng.integers(0, len(adult_in), nf)],
        )
        pediatrician = peds_in[rng.integers(0, len(peds_in), nf)]
        child = age < 18
        doctor = np.where(
            child & (rng.random(n) < 0.6), pediatrician[family], family_doctor[family]
        )
        pharm_in, _ = net.pools["pharmacy"]
        pharmacy = pharm_in[rng.integers(0, len(pharm_in), nf)][family]
        plan = plan_f[family]

        people = self.people
        firsts_f = pl.Series(people["female_first"])
        firsts_m = pl.Series(people["male_first"])
        lasts = pl.Series(people["last"])
        first_name = pl.select(
            pl.when(pl.Series(female))
            .then(firsts_f.gather(rng.integers(0, len(firsts_f), n)))
            .otherwise(firsts_m.gather(rng.integers(0, len(firsts_m), n)))
        ).to_series()
        last_name = lasts.gather(rng.integers(0, len(lasts), nf)).gather(family)

        ended = end_f[family] >= 0
        eligibility = pl.DataFrame(
            {
                "family_id": family_id,
                "position": position,
                "member_id": member_id,
                "coverage_id": coverage_id[family],
                "plan_key": pl.Series(plans.keys).gather(plan),
                "coverage_tier": tier_f[family],
                "start": pl.Series(start).cast(pl.Int32).cast(pl.Date),
                "end": pl.Series(np.where(ended, end_f[family], 0)).cast(pl.Int32).cast(pl.Date),
                "ended": ended,
                "termination_reason": reason_f[family],
                "subsidized": subsidized_f[family],
                "sex": np.where(female, "F", "M"),
                "birth_date": pl.Series(birth).cast(pl.Int32).cast(pl.Date),
                "first_name": first_name,
                "last_name": last_name,
            }
        ).select(
            # The enrollment service's numbering: the subscriber's number, then -00, -01...
            member_number=pl.concat_str(
                pl.lit("OHM"),
                pl.col("family_id").cast(pl.String).str.zfill(9),
                pl.lit("-"),
                pl.col("position").cast(pl.String).str.zfill(2),
            ),
            member_id=pl.col("member_id"),
            family_id=pl.col("family_id"),
            coverage_id=pl.col("coverage_id"),
            plan_key=pl.col("plan_key"),
            coverage_tier=pl.col("coverage_tier"),
            start=pl.col("start"),
            end=pl.when(pl.col("ended")).then(pl.col("end")),
            termination_reason=pl.when(pl.col("ended")).then(pl.col("termination_reason")),
            subsidized=pl.col("subsidized"),
            sex=pl.col("sex"),
            birth_date=pl.col("birth_date"),
            name=pl.concat_str(pl.col("first_name"), pl.lit(" "), pl.col("last_name")),
        )
        eligibility = eligibility.select(
            [pl.col(c).cast(t) for c, t in SCHEMAS["eligibility"].items()]
        )

        # Open premium grace periods (a few coverages behind on premiums).
        grace = rng.random(nf) < 0.025
        grace_month = np.minimum(start_month + 1 + rng.integers(0, 8, nf), 10)
        grace_start = self.month_start[grace_month - 1]
        grace_periods = pl.DataFrame(
            {
                "coverage_id": coverage_id[grace],
                "starts": pl.Series(grace_start[grace]).cast(pl.Int32).cast(pl.Date),
                "ends": pl.Series(grace_start[grace] + 89).cast(pl.Int32).cast(pl.Date),
                "subsidized": subsidized_f[grace],
            },
            schema=SCHEMAS["grace_periods"],
        )
        chooses = plans.pcp[plan]
        pcp = pl.DataFrame(
            {
                "member_id": member_id[chooses],
                "npi": net.npi.gather(doctor[chooses]),
                "start": pl.Series(start[chooses]).cast(pl.Int32).cast(pl.Date),
                "end": pl.Series([None] * int(chooses.sum()), dtype=pl.Date),
            },
            schema=SCHEMAS["pcp"],
        )
        counters.member += n
        counters.family += nf
        m = _Members(
            family=family,
            member_id=member_id,
            family_id=family_id,
            plan=plan,
            age=age,
            female=female,
            lo=lo,
            hi=hi,
            end=end,
            frailty=frailty,
            doctor=doctor,
            pharmacy=pharmacy,
        )
        return m, {"eligibility": eligibility, "grace_periods": grace_periods, "pcp": pcp}

    # --- a year of care ----------------------------------------------------------------

    def care(
        self, rng: np.random.Generator, m: _Members, counters: Counters
    ) -> tuple[dict[str, np.ndarray], pl.DataFrame, pl.DataFrame]:
        """Claims (as arrays), referrals and prior authorizations of the chunk's members."""
        b = _Builder()
        net, plans = self.network, self.plans
        n = len(m.member_id)
        covered = m.hi >= m.lo
        span = np.where(covered, m.hi - m.lo + 1, 0)
        share = span / (self.year_hi - self.year_lo + 1)
        u = m.frailty * share
        types = np.array(plans.types)[m.plan]
        referrals: list[pl.DataFrame] = [empty("referrals")]
        auths: list[pl.DataFrame] = [empty("prior_auths")]

        def day_in(who: np.ndarray) -> np.ndarray:
            return m.lo[who] + (rng.random(len(who)) * span[who]).astype(np.int64)

        def draw(pool: str, count: int, oon: np.ndarray | None = None) -> np.ndarray:
            inside, outside = net.pools[pool]
            picked = inside[rng.integers(0, len(inside), count)]
            if oon is not None and len(outside):
                picked = np.where(oon, outside[rng.integers(0, len(outside), count)], picked)
            return picked

        def repeat(counts: np.ndarray) -> np.ndarray:
            return np.repeat(np.arange(n), np.where(covered, counts, 0))

        def choose(options: tuple, count: int, p=None) -> np.ndarray:
            return np.asarray(options)[rng.choice(len(options), count, p=p)]

        def dx(options: tuple, count: int) -> np.ndarray:
            return np.array([DX_INDEX[c] for c in options], dtype=np.int16)[
                rng.integers(0, len(options), count)
            ]

        def series(who: np.ndarray, first: np.ndarray, visits: np.ndarray, every: np.ndarray):
            """Visits of episodes (episode index, visit number, day), within coverage."""
            episode = np.repeat(np.arange(len(who)), visits)
            starts = np.concatenate([[0], np.cumsum(visits)[:-1]])
            k = np.arange(len(episode)) - starts[episode]
            day = first[episode] + k * every[episode]
            keep = day <= m.hi[who[episode]]
            return episode[keep], k[keep], day[keep]

        def new_referrals(
            who, first, provider, visits, category, carried
        ) -> tuple[np.ndarray, np.ndarray]:
            """Referrals for episodes of `who` that need one: most are on file (a few
            still awaiting review), some are missing; returns (referral id or -1, on file)."""
            count = len(who)
            on_file = rng.random(count) < 0.85
            ids = np.full(count, -1, dtype=np.int64)
            ids[on_file] = counters.referral + 1 + np.arange(int(on_file.sum()))
            counters.referral += int(on_file.sum())
            review = np.isin(
                np.array([t[:4] for t in net.taxonomy[provider]]), REVIEW_SPECIALTIES
            ) | (visits > 6)
            status = np.where(review & (rng.random(count) < 0.12), "requested", "approved")
            by_prefix = rng.random(count) < 0.1
            valid_from = first - rng.integers(0, 11, count)
            keep = on_file
            referrals.append(
                pl.DataFrame(
                    {
                        "referral_number": ids[keep],
                        "member_id": m.member_id[who[keep]],
                        "referring_npi": net.npi.gather(m.doctor[who[keep]]),
                        "specialist_npi": net.npi.gather(provider[keep]),
                        "specialty_prefix": pl.Series(net.taxonomy[provider[keep]]).str.slice(0, 5),
                        "by_prefix": by_prefix[keep],
                        "category": pl.Series([category] * int(keep.sum()), dtype=pl.String),
                        "visits": visits[keep],
                        "valid_from": valid_from[keep],
                        "status": status[keep],
                    }
                ).select(
                    referral_number=pl.lit("R")
                    + pl.col("referral_number").cast(pl.String).str.zfill(9),
                    member_id="member_id",
                    referring_npi="referring_npi",
                    # A referral names the specialist, or (a tenth of them) only the specialty.
                    specialist_npi=pl.when(~pl.col("by_prefix")).then("specialist_npi"),
                    specialty_prefix=pl.when(pl.col("by_prefix")).then("specialty_prefix"),
                    category="category",
                    visits="visits",
                    valid_from=pl.col("valid_from").cast(pl.Int32).cast(pl.Date),
                    valid_to=(pl.col("valid_from") + 179).cast(pl.Int32).cast(pl.Date),
                    status="status",
                )
            )
            # The claim names the referral most of the time; the engine also finds it
            # by member, dates and specialist when it does not.
            return np.where(on_file & carried, ids, -1), on_file

        def new_auths(who, day, needed, category, codes, valid_days=60) -> np.ndarray:
            """Prior authorizations where the plan needs one: most approved, a few
            requested (they pend), some never asked for (CO-197)."""
            count = len(who)
            roll = rng.random(count)
            has = needed & (roll < 0.84)
            status = np.where(roll < 0.80, "approved", "requested")
            ids = np.full(count, -1, dtype=np.int64)
            ids[has] = counters.auth + 1 + np.arange(int(has.sum()))
            counters.auth += int(has.sum())
            auths.append(
                pl.DataFrame(
                    {
                        "auth_number": ids[has],
                        "member_id": m.member_id[who[has]],
                        "category": pl.Series([category] * int(has.sum()), dtype=pl.String),
                        "code": None if codes is None else codes[has],
                        "day": day[has],
                        "status": status[has],
                    }
                ).select(
                    auth_number=pl.lit("PA") + pl.col("auth_number").cast(pl.String).str.zfill(9),
                    member_id="member_id",
                    category="category",
                    # For the codes named, or (none named) the whole category.
                    procedure_codes=pl.concat_list(
                        pl.col("code").cast(pl.String)
                    ).list.drop_nulls(),
                    valid_from=(pl.col("day") - 7).cast(pl.Int32).cast(pl.Date),
                    valid_to=(pl.col("day") + valid_days).cast(pl.Int32).cast(pl.Date),
                    status="status",
                )
            )
            return np.where(has & (rng.random(count) < 0.9), ids, -1)

        adult = m.age >= 18

        # PCP office visits; 40% draw labs in the office (a multi-line claim), and 45%
        # send the member to a lab (a claim of its own).
        who = repeat(rng.poisson(2.6 * u))
        day = day_in(who)
        variant = rng.random(len(who))
        template = np.select(
            [variant < 0.4, variant < 0.6, variant < 0.82],
            [T["pcp_99213"], T["pcp_99214"], T["pcp_99213_labs"]],
            T["pcp_99214_labs"],
        )
        principal = dx(COMMON_DX, len(who))
        # A third also list a chronic condition the visit took into account.
        secondary = np.where(rng.random(len(who)) < 0.3, dx(CHRONIC_DX, len(who)), -1)
        b.add(
            member=who,
            day=day,
            template=template,
            billing=m.doctor[who],
            pos=POS["11"],
            dx1=principal,
            dx2=np.where(secondary == principal, -1, secondary),
            kind=K["pcp"],
        )
        lab = rng.random(len(who)) < 0.45
        b.add(
            member=who[lab],
            day=day[lab],
            template=choose(
                (T["lab_panel"], T["lab_lipid"], T["lab_a1c"], T["lab_ua"]),
                int(lab.sum()),
                p=[0.5, 0.2, 0.2, 0.1],
            ),
            billing=draw("lab", int(lab.sum())),
            pos=POS["81"],
            dx1=dx(COMMON_DX, int(lab.sum())),
            kind=K["lab"],
        )

        # Preventive care: a yearly well visit for most children and many adults.
        well = covered & (rng.random(n) < np.where(adult, 0.55, 0.75))
        who = np.flatnonzero(well)
        age_w = m.age[who]
        template = np.full(len(who), T["prev_99395"], dtype=np.int16)
        for limit, name in reversed(PREVENTIVE_BY_AGE):
            template = np.where(age_w < limit, T[name], template)
        older = age_w >= 40
        template = np.where(
            older,
            np.where(rng.random(len(who)) < 0.5, T["prev_99396_labs"], T["prev_99396"]),
            template,
        )
        b.add(
            member=who,
            day=day_in(who),
            template=template,
            billing=m.doctor[who],
            pos=POS["11"],
            dx1=np.where(adult[who], DX_INDEX["Z0000"], DX_INDEX["Z00129"]),
            kind=K["preventive"],
        )

        # Specialist series: 1-5 visits three weeks apart, with the PCP's referral where
        # the plan needs one (most on file, some missing, a few awaiting review).
        who = repeat(rng.poisson(0.55 * u))
        first = day_in(who)
        specialty = rng.integers(0, len(SPECIALTIES), len(who))
        oon = rng.random(len(who)) < np.vectorize(SPECIALIST_OON.get)(types[who]).astype(float)
        doctor = np.zeros(len(who), dtype=np.int64)
        for s, prefix in enumerate(SPECIALTIES):
            hit = specialty == s
            doctor[hit] = draw(prefix, int(hit.sum()), oon[hit])
        visits = rng.choice([1, 2, 2, 3, 3, 4, 5], len(who))
        self._episodes(
            b,
            rng,
            m,
            who,
            first,
            doctor,
            visits,
            rng.integers(14, 35, len(who)),
            kind="specialist",
            pos="11",
            templates=(
                T["spec_new"],
                np.where(rng.random(len(who)) < 0.25, T["spec_follow_labs"], T["spec_follow"]),
            ),
            dx_options=COMMON_DX,
            referral=plans.referral[m.plan[who], K["specialist"]],
            new_referrals=new_referrals,
            granted=rng.choice([2, 3, 4, 6, 8], len(who)),
            category=None,
            series=series,
        )

        # OB/GYN visits (direct access) and screening mammograms for women.
        who = repeat(np.where(~m.female | ~adult, 0, rng.binomial(2, 0.2 * share)))
        b.add(
            member=who,
            day=day_in(who),
            template=T["obgyn"],
            billing=draw("obgyn", len(who)),
            pos=POS["11"],
            dx1=dx(GYN_DX, len(who)),
            kind=K["ob_gyn"],
        )
        who = np.flatnonzero(covered & m.female & (m.age >= 40) & (rng.random(n) < 0.6))
        b.add(
            member=who,
            day=day_in(who),
            template=T["mammo"],
            billing=draw("imaging", len(who)),
            pos=POS["22"],
            dx1=DX_INDEX["Z1231"],
            kind=K["mammography"],
        )

        # Emergencies: the ER physician's claim and the hospital's, in or out of network
        # (no referral or authorization applies), an ambulance sometimes, an admission
        # now and then.
        who = repeat(rng.poisson(0.14 * u))
        count = len(who)
        day = day_in(who)
        diagnosis = dx(ER_DX, count)
        er_doc = draw("emergency", count, rng.random(count) < 0.2)
        hospital = draw("hospital", count, rng.random(count) < 0.08)
        b.add(
            member=who,
            day=day,
            template=choose(
                (T["er_99283"], T["er_99284"], T["er_99285"]), count, p=[0.3, 0.45, 0.25]
            ),
            billing=er_doc,
            pos=POS["23"],
            dx1=diagnosis,
            emergency=True,
            kind=K["er_professional"],
        )
        b.add(
            member=who,
            day=day,
            template=choose(
                (T["er_fac"], T["er_fac_xray"], T["er_fac_lab"], T["er_fac_full"]),
                count,
                p=[0.3, 0.25, 0.25, 0.2],
            ),
            billing=hospital,
            ctype=INST,
            dx1=diagnosis,
            emergency=True,
            kind=K["er_facility"],
        )
        ride = rng.random(count) < 0.12
        b.add(
            member=who[ride],
            day=day[ride],
            template=T["ambulance"],
            billing=draw("ambulance", int(ride.sum())),
            pos=POS["41"],
            dx1=diagnosis[ride],
            emergency=True,
            units=rng.integers(3, 25, int(ride.sum())),
            kind=K["ambulance"],
        )
        admitted = rng.random(count) < 0.1
        self._stay(
            b,
            rng,
            m,
            who[admitted],
            day[admitted],
            hospital[admitted],
            diagnosis[admitted],
            emergency=True,
            auth=None,
        )

        # Urgent care and plain imaging.
        who = repeat(rng.poisson(0.35 * u))
        b.add(
            member=who,
            day=day_in(who),
            template=np.where(rng.random(len(who)) < 0.4, T["urgent_strep"], T["urgent"]),
            billing=draw("urgent_care", len(who), rng.random(len(who)) < 0.05),
            pos=POS["20"],
            dx1=dx(URGENT_DX, len(who)),
            kind=K["urgent_care"],
        )
        who = repeat(rng.poisson(0.35 * u))
        b.add(
            member=who,
            day=day_in(who),
            template=np.where(rng.random(len(who)) < 0.6, T["xray_chest"], T["xray_shoulder"]),
            billing=draw("imaging", len(who)),
            pos=POS["22"],
            dx1=dx(("R051", "R0602", "M25511", "S6290XA"), len(who)),
            kind=K["imaging"],
        )

        # Advanced imaging: prior authorization (and, in the HMO, a referral) where needed.
        who = repeat(rng.poisson(0.06 * u))
        count = len(who)
        day = day_in(who)
        template = choose((T["mri_brain"], T["mri_lumbar"], T["ct_abdomen"]), count)
        codes = np.array(["70551", "72148", "74177"])[template - T["mri_brain"]]
        center = draw("imaging", count)
        auth = new_auths(
            who, day, plans.prior_auth["advanced_imaging"][m.plan[who]], "advanced_imaging", codes
        )
        needs = plans.referral[m.plan[who], K["advanced_imaging"]]
        referral, on_file = np.full(count, -1, dtype=np.int64), np.zeros(count, dtype=bool)
        if needs.any():
            r, f = new_referrals(
                who[needs],
                day[needs],
                center[needs],
                np.ones(int(needs.sum()), dtype=np.int64),
                "advanced_imaging",
                rng.random(int(needs.sum())) < 0.7,
            )
            referral[needs], on_file[needs] = r, f
        b.add(
            member=who,
            day=day,
            template=template,
            billing=center,
            pos=POS["22"],
            dx1=dx(("R519", "M5416", "R109", "R42"), count),
            auth=auth,
            referral=referral,
            referral_on_file=on_file,
            kind=K["advanced_imaging"],
        )

        # Therapy series: physical therapy (two lines a visit, past the visit limit now
        # and then), behavioural health, chiropractic.
        who = repeat(rng.binomial(1, np.minimum(1, 0.05 * u)))
        oon = rng.random(len(who)) < np.vectorize(THERAPIST_OON.get)(types[who]).astype(float)
        self._episodes(
            b,
            rng,
            m,
            who,
            day_in(who),
            draw("therapist", len(who), oon),
            rng.integers(6, 37, len(who)),
            np.full(len(who), 7),
            kind="therapy",
            templates=(T["pt"], T["pt"]),
            pos="11",
            dx_options=("M25561", "M25511", "M5416"),
            referral=plans.referral[m.plan[who], K["therapy"]],
            new_referrals=new_referrals,
            granted=rng.choice([12, 20, 24], len(who)),
            category="rehabilitation",
            series=series,
        )
        who = repeat(rng.binomial(1, np.minimum(1, 0.06 * u)))
        oon = rng.random(len(who)) < np.vectorize(THERAPIST_OON.get)(types[who]).astype(float)
        provider = draw("behavioral", len(who), oon)
        psychiatrist = np.array([t.startswith("2084P") for t in net.taxonomy[provider]], bool)
        self._episodes(
            b,
            rng,
            m,
            who,
            day_in(who),
            provider,
            rng.integers(4, 15, len(who)),
            np.where(rng.random(len(who)) < 0.5, 7, 14),
            kind="behavioral",
            templates=(
                np.where(psychiatrist, T["psychiatry"], T["psych_60"]),
                np.where(
                    psychiatrist,
                    T["psychiatry"],
                    np.where(rng.random(len(who)) < 0.5, T["psych_60"], T["psych_45"]),
                ),
            ),
            pos="11",
            dx_options=("F411", "F329", "F419"),
            referral=None,
            series=series,
        )
        who = repeat(rng.binomial(1, np.minimum(1, 0.02 * u)))
        self._episodes(
            b,
            rng,
            m,
            who,
            day_in(who),
            draw("chiropractor", len(who)),
            rng.integers(4, 13, len(who)),
            np.full(len(who), 7),
            kind="chiropractic",
            templates=(T["chiro"], T["chiro"]),
            pos="11",
            dx_options=("M5416", "M542"),
            referral=plans.referral[m.plan[who], K["chiropractic"]],
            new_referrals=new_referrals,
            granted=rng.choice([6, 12], len(who)),
            category="chiropractic",
            series=series,
        )

        # Planned hospital stays (prior authorization) and births.
        who = repeat(rng.poisson(0.008 * u * np.where(m.age >= 50, 2.5, 1.0)))
        day = day_in(who)
        auth = new_auths(who, day, plans.prior_auth["inpatient"][m.plan[who]], "inpatient", None)
        self._stay(
            b,
            rng,
            m,
            who,
            day,
            draw("hospital", len(who)),
            dx(("K219", "I10", "R109"), len(who)),
            emergency=False,
            auth=auth,
        )
        who = np.flatnonzero(
            covered & m.female & (m.age >= 20) & (m.age <= 42) & (rng.random(n) < 0.03)
        )
        day = day_in(who)
        b.add(
            member=who,
            day=day,
            template=T["prenatal"],
            billing=draw("obgyn", len(who)),
            pos=POS["11"],
            dx1=DX_INDEX["Z3480"],
            kind=K["maternity_professional"],
        )
        b.add(
            member=who,
            day=day,
            template=T["delivery"],
            billing=draw("hospital", len(who)),
            ctype=INST,
            dx1=DX_INDEX["O80"],
            units=rng.integers(2, 4, len(who)),
            kind=K["maternity_facility"],
        )

        # DME: a CPAP machine rented month by month, authorized where the plan says.
        who = np.flatnonzero(covered & adult & (rng.random(n) < 0.004))
        first = day_in(who)
        auth = new_auths(who, first, plans.prior_auth["dme"][m.plan[who]], "dme", None, 372)
        episode, _, day = series(who, first, np.full(len(who), 12), np.full(len(who), 30))
        b.add(
            member=who[episode],
            day=day,
            template=T["cpap"],
            billing=draw("dme", len(who))[episode],
            pos=POS["12"],
            dx1=DX_INDEX["G4733"],
            auth=auth[episode],
            kind=K["dme"],
        )

        self._drugs(b, rng, m, covered, u, series, new_auths, dx)

        # Out-of-network visits that are not emergencies (denied under HMO and EPO rules).
        who = repeat(np.where(rng.random(n) < 0.03, rng.integers(1, 3, n), 0))
        b.add(
            member=who,
            day=day_in(who),
            template=T["oon_visit"],
            billing=draw("individual", len(who), np.ones(len(who), dtype=bool)),
            pos=POS["11"],
            dx1=dx(COMMON_DX, len(who)),
            kind=K["oon_visit"],
        )

        # Care after coverage ended (CO-27): the office had not heard.
        ended = np.flatnonzero(covered & (m.end < self.year_hi) & (rng.random(n) < 0.3))
        day = (
            m.end[ended]
            + 1
            + (rng.random(len(ended)) * (self.year_hi - m.end[ended])).astype(np.int64)
        )
        b.add(
            member=ended,
            day=day,
            template=T["pcp_99213"],
            billing=m.doctor[ended],
            pos=POS["11"],
            dx1=dx(COMMON_DX, len(ended)),
            kind=K["after_end"],
        )

        return (
            b.arrays(),
            pl.concat([f.cast(SCHEMAS["referrals"]) for f in referrals]),
            pl.concat([f.cast(SCHEMAS["prior_auths"]) for f in auths]),
        )

    def _episodes(
        self,
        b,
        rng,
        m,
        who,
        first,
        provider,
        visits,
        every,
        *,
        kind,
        templates,
        pos,
        dx_options,
        referral,
        series,
        new_referrals=None,
        granted=None,
        category=None,
    ) -> None:
        """Series of visits to one provider; where the plan needs a referral, one is on
        file for most episodes (for `granted` visits: a long series runs past it)."""
        count = len(who)
        if count == 0:
            return
        ref_id = np.full(count, -1, dtype=np.int64)
        on_file = np.zeros(count, dtype=bool)
        if referral is not None:
            in_network = self._in_network(provider, first)
            needs = referral & in_network
            if needs.any():
                idx = np.flatnonzero(needs)
                r, f = new_referrals(
                    who[idx],
                    first[idx],
                    provider[idx],
                    granted[idx],
                    category,
                    rng.random(len(idx)) < 0.7,
                )
                ref_id[idx], on_file[idx] = r, f
        episode, k, day = series(who, first, visits, every)
        first_t, next_t = (np.broadcast_to(np.asarray(t), count) for t in templates)
        diagnosis = np.array([DX_INDEX[c] for c in dx_options], np.int16)[
            rng.integers(0, len(dx_options), count)
        ]
        b.add(
            member=who[episode],
            day=day,
            template=np.where(k == 0, first_t[episode], next_t[episode]),
            billing=provider[episode],
            pos=POS[pos],
            dx1=diagnosis[episode],
            referral=ref_id[episode],
            referral_on_file=on_file[episode],
            kind=K[kind],
        )

    def _stay(self, b, rng, m, who, day, hospital, diagnosis, *, emergency, auth) -> None:
        """A hospital stay: the facility's room and board for the days, the
        hospitalist's admission visit."""
        count = len(who)
        if count == 0:
            return
        days = rng.integers(2, 7, count)
        auth = np.full(count, -1) if auth is None else auth
        b.add(
            member=who,
            day=day,
            template=T["inpatient"],
            billing=hospital,
            ctype=INST,
            dx1=diagnosis,
            emergency=emergency,
            auth=auth,
            units=days,
            kind=K["inpatient_facility"],
        )
        b.add(
            member=who,
            day=day,
            template=T["hospitalist"],
            billing=self.network.pools["hospitalist"][0][
                rng.integers(0, len(self.network.pools["hospitalist"][0]), count)
            ],
            pos=POS["21"],
            dx1=diagnosis,
            emergency=emergency,
            auth=auth,
            kind=K["inpatient_professional"],
        )

    def _drugs(self, b, rng, m, covered, u, series, new_auths, dx) -> None:
        """Pharmacy fills: chronic drugs every 30 or 90 days, short courses, and a
        specialty drug for a few (authorized where the plan needs it)."""
        n = len(m.member_id)
        chronic = np.select([m.age < 18, m.age < 40, m.age < 55], [0.05, 0.13, 0.3], default=0.55)
        drugs = np.where(covered & (rng.random(n) < chronic), 1 + rng.poisson(0.3, n), 0)
        who = np.repeat(np.arange(n), drugs)
        count = len(who)
        roll = rng.random(count)
        generics, brand = CHRONIC_RX
        template = np.where(
            roll < 0.72,
            np.array([T[g] for g in generics])[rng.integers(0, len(generics), count)],
            np.where(
                roll < 0.85, T[brand], np.where(roll < 0.93, T["rx_inhaler"], T["rx_nonpreferred"])
            ),
        )
        every = np.where(rng.random(count) < 0.5, 90, 30)
        first = m.lo[who] + rng.integers(0, 30, count)
        episode, _, day = series(who, first, np.full(count, 13), every)
        b.add(
            member=who[episode],
            day=day,
            template=template[episode],
            billing=m.pharmacy[who[episode]],
            ctype=PHARM,
            dx1=dx(CHRONIC_DX, count)[episode],
            units=every[episode],
            kind=K["drug"],
        )
        # Short courses (antibiotics and the like), a few of them brand names.
        who = np.repeat(np.arange(n), np.where(covered, rng.poisson(1.0 * u), 0))
        count = len(who)
        lo, span = m.lo[who], m.hi[who] - m.lo[who] + 1
        b.add(
            member=who,
            day=lo + (rng.random(count) * span).astype(np.int64),
            template=np.where(rng.random(count) < 0.85, T["rx_amoxicillin"], T["rx_brand"]),
            billing=m.pharmacy[who],
            ctype=PHARM,
            dx1=dx(ACUTE_DX, count),
            units=np.where(rng.random(count) < 0.85, 20, 30),
            kind=K["drug"],
        )
        # A specialty drug, monthly.
        who = np.flatnonzero(covered & (m.age >= 18) & (rng.random(n) < 0.004))
        first = m.lo[who] + rng.integers(0, 30, len(who))
        # The authorization covers a year of fills.
        auth = new_auths(
            who,
            first,
            self.plans.prior_auth["drugs_specialty"][m.plan[who]],
            "drugs_specialty",
            None,
            372,
        )
        episode, _, day = series(who, first, np.full(len(who), 12), np.full(len(who), 30))
        b.add(
            member=who[episode],
            day=day,
            template=T["rx_specialty"],
            billing=m.pharmacy[who[episode]],
            ctype=PHARM,
            dx1=DX_INDEX["M5416"],
            units=2,
            auth=auth[episode],
            kind=K["drug"],
        )

    def _in_network(self, provider: np.ndarray, day: np.ndarray) -> np.ndarray:
        net = self.network
        return (net.contract_start[provider] <= day) & (day <= net.contract_end[provider])

    # --- from arrays to claim lines ---------------------------------------------------

    def chunk(self, index: int, sizes: np.ndarray, spouse: np.ndarray, counters: Counters) -> Chunk:
        rng = np.random.default_rng([self.seed, 2, index])
        m, member_tables = self.members(rng, sizes, spouse, counters)
        a, referrals, prior_auths = self.care(rng, m, counters)
        net = self.network

        count = len(a["member"])
        # When the payer receives it: usually within weeks; 0.1% more than a year late.
        delay = np.clip(np.round(rng.gamma(2.0, 6.0, count)), 1, 120).astype(np.int64)
        delay = np.where(rng.random(count) < 0.001, 366 + rng.integers(0, 60, count), delay)
        received = (a["day"] + delay) * US_PER_DAY + rng.integers(
            8 * 3600, 20 * 3600, count
        ) * 1_000_000
        # Lines of a claim (the provider's own charge for each code).
        claims = pl.DataFrame(
            {
                "tmp": np.arange(count, dtype=np.int64),
                "family_id": m.family_id[a["member"]],
                "member": a["member"],
                "day": a["day"],
                "received_us": received,
                "template": a["template"],
                "billing": a["billing"],
                "ctype": a["ctype"],
                "pos": a["pos"],
                "dx1": a["dx1"],
                "dx2": a["dx2"],
                "emergency": a["emergency"],
                "referral": a["referral"],
                "referral_on_file": a["referral_on_file"],
                "auth": a["auth"],
                "claim_units": a["units"],
                "kind": a["kind"],
                "factor": net.charge_factor[a["billing"]],
                "frequency": np.full(count, 1, dtype=np.int8),
                "copy": np.zeros(count, dtype=bool),
                "replaces": np.full(count, -1, dtype=np.int64),
            }
        )
        lines = claims.join(self.templates, on="template", how="inner").with_columns(
            units=pl.coalesce("fixed_units", "claim_units"),
        )
        lines = lines.with_columns(
            # Whole dollars, as charge masters are.
            charge_cents=(pl.col("unit_charge") * pl.col("units") * pl.col("factor") / 100)
            .round()
            .cast(pl.Int64)
            .clip(1)
            * 100,
        )

        # Duplicates (sent again under another number), replacements (7) and voids (8)
        # of a few claims, received after the original.
        roll = rng.random(count)
        copies = np.select([roll < 0.005, roll < 0.015, roll < 0.018], [1, 7, 8], 0)
        targets = np.flatnonzero(copies)
        later = rng.integers(5, 45, len(targets)) * US_PER_DAY
        copied = pl.DataFrame(
            {
                "tmp": targets,
                "new_tmp": count + np.arange(len(targets), dtype=np.int64),
                "new_frequency": copies[targets].astype(np.int8),
                "new_received": received[targets] + later,
            }
        )
        extra = (
            lines.join(copied, on="tmp", how="inner")
            .with_columns(
                replaces=pl.when(pl.col("new_frequency") == 1)
                .then(pl.lit(-1, pl.Int64))
                .otherwise(pl.col("tmp")),
                frequency=pl.col("new_frequency"),
                copy=pl.lit(True),
                received_us=pl.col("new_received"),
                tmp=pl.col("new_tmp"),
                # A corrected claim changes something: here the charge of its first line.
                charge_cents=pl.when((pl.col("new_frequency") == 7) & (pl.col("line_number") == 1))
                .then(pl.col("charge_cents") + 1000)
                .otherwise(pl.col("charge_cents")),
            )
            .drop("new_tmp", "new_frequency", "new_received")
        )
        lines = pl.concat([lines, extra.select(lines.columns)])

        # Claim ids in adjudication order: family, date, received, then as generated.
        order = (
            lines.group_by("tmp")
            .agg(pl.col("family_id").first(), pl.col("day").min(), pl.col("received_us").first())
            .sort("family_id", "day", "received_us", "tmp")
            .with_row_index("seq")
            .select(
                "tmp",
                seq=pl.col("seq").cast(pl.Int64),
                claim_id=pl.lit("C")
                + (pl.col("seq").cast(pl.Int64) + counters.claim + 1).cast(pl.String).str.zfill(10),
            )
        )
        counters.claim += order.height
        lines = (
            lines.join(order, on="tmp", how="left")
            .join(
                order.select(replaces="tmp", replaces_claim_id="claim_id"),
                on="replaces",
                how="left",
            )
            .sort("seq", "line_number")
        )
        stats = self._stats(lines, m)
        stats["covered_days"] = int(np.maximum(m.hi - m.lo + 1, 0).sum())

        member_numbers = member_tables["eligibility"]["member_number"]
        out = lines.select(
            claim_id=pl.col("claim_id"),
            line_number=pl.col("line_number"),
            member_number=member_numbers.gather(lines["member"]),
            billing_npi=net.npi.gather(lines["billing"]),
            rendering_npi=pl.lit(None, pl.String),
            claim_type=pl.col("ctype").replace_strict(
                list(range(len(CLAIM_TYPES))), list(CLAIM_TYPES), return_dtype=pl.String
            ),
            frequency_code=pl.col("frequency").cast(pl.String),
            replaces_claim_id=pl.col("replaces_claim_id"),
            received_at=pl.col("received_us").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            service_date=pl.col("day").cast(pl.Int32).cast(pl.Date),
            place_of_service=pl.when(pl.col("pos") >= 0).then(
                pl.col("pos").replace_strict(
                    list(range(len(PLACES))), list(PLACES), default=None, return_dtype=pl.String
                )
            ),
            procedure_code=pl.col("procedure_code"),
            modifiers=pl.col("modifiers"),
            revenue_code=pl.col("revenue_code"),
            units=pl.col("units").cast(pl.Decimal(12, 3)),
            charge_cents=pl.col("charge_cents"),
            diagnosis_codes=pl.concat_list(
                self.dx.gather(lines["dx1"]),
                pl.when(pl.col("dx2") >= 0).then(self.dx.gather(lines["dx2"].clip(0))),
            ).list.drop_nulls(),
            referral_number=pl.when(pl.col("referral") >= 0).then(
                pl.lit("R") + pl.col("referral").cast(pl.String).str.zfill(9)
            ),
            prior_auth_number=pl.when(pl.col("auth") >= 0).then(
                pl.lit("PA") + pl.col("auth").cast(pl.String).str.zfill(9)
            ),
            emergency=pl.col("emergency"),
            drug_tier=pl.col("drug_tier"),
        )
        # Some professional claims name the rendering provider too (the same NPI here:
        # every provider bills for itself in this world).
        named = pl.Series(rng.random(out.height) < 0.25)
        out = out.with_columns(
            rendering_npi=pl.when(named & (pl.col("claim_type") == "professional")).then(
                pl.col("billing_npi")
            )
        )
        # A rendering NPI is the claim's: keep it the same on every line of a claim.
        out = out.with_columns(rendering_npi=pl.col("rendering_npi").first().over("claim_id"))
        out = out.select([pl.col(c).cast(t) for c, t in CLAIM_LINES.items()])
        return Chunk(
            claims=out,
            family_of_line=lines["family_id"].to_numpy(),
            referrals=referrals,
            prior_auths=prior_auths,
            stats=stats,
            **member_tables,
        )

    def _stats(self, lines: pl.DataFrame, m: _Members) -> dict[str, int]:
        """What the summary reports, per claim (a claim's lines share their flags)."""
        plans = self.plans
        claims = lines.group_by("tmp").agg(
            pl.col("member").first(),
            pl.col("billing").first(),
            pl.col("day").first(),
            pl.col("kind").first(),
            pl.col("emergency").first(),
            pl.col("referral").first(),
            pl.col("referral_on_file").first(),
            pl.col("copy").first(),
            pl.col("frequency").first(),
            pl.col("charge_cents").sum(),
            pl.len().alias("lines"),
        )
        member = claims["member"].to_numpy()
        billing = claims["billing"].to_numpy()
        day = claims["day"].to_numpy()
        kind = claims["kind"].to_numpy()
        emergency = claims["emergency"].to_numpy()
        in_network = self._in_network(billing, day)
        needs = plans.referral[m.plan[member], kind] & in_network & ~emergency
        frequency = claims["frequency"].to_numpy()
        copy = claims["copy"].to_numpy()
        return {
            "claims": claims.height,
            "lines": lines.height,
            "out_of_network": int((~in_network).sum()),
            "emergency": int(emergency.sum()),
            "referral_needing": int(needs.sum()),
            "referral_on_file": int((needs & claims["referral_on_file"].to_numpy()).sum()),
            "referral_named": int((needs & (claims["referral"].to_numpy() >= 0)).sum()),
            "pharmacy": int((kind == K["drug"]).sum()),
            "after_end": int((kind == K["after_end"]).sum()),
            "duplicates": int((copy & (frequency == 1)).sum()),
            "replacements": int((frequency == 7).sum()),
            "voids": int((frequency == 8).sum()),
            "charge_cents": int(claims["charge_cents"].sum()),
        }


# --- the world ------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a generated world holds (shares are of claims)."""

    members: int = 0
    families: int = 0
    year: int = 0
    seed: int = 0
    plans: dict[str, int] = field(default_factory=dict)  # members by plan
    plans_without_year: list[str] = field(default_factory=list)
    providers: int = 0
    referrals: int = 0
    prior_auths: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def member_years(self) -> float:
        """Members weighted by the part of the year they were covered."""
        return self.counts.get("covered_days", 0) / 365

    @property
    def claims(self) -> int:
        return self.counts.get("claims", 0)

    @property
    def lines(self) -> int:
        return self.counts.get("lines", 0)

    def share(self, key: str) -> float:
        return self.counts.get(key, 0) / self.claims if self.claims else 0.0

    def add(self, chunk: Chunk) -> None:
        for key, value in chunk.stats.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.members += chunk.eligibility.height
        self.families += chunk.eligibility["family_id"].n_unique()
        for key, count in chunk.eligibility["plan_key"].value_counts().iter_rows():
            self.plans[key] = self.plans.get(key, 0) + count
        self.referrals += chunk.referrals.height
        self.prior_auths += chunk.prior_auths.height


def _chunks(
    members: int, year: int, seed: int, chunk_members: int
) -> tuple[Network, Plans, Iterator[Chunk]]:
    if members < 1:
        raise ValueError(f"members must be at least 1, not {members}")
    network = build_network(members, year, seed)
    plans = load_plans(year)
    maker = _ChunkMaker(network, plans, year, seed)
    sizes, spouse = family_sizes(members, seed)
    cum = np.cumsum(sizes)
    # Chunks of whole families, about `chunk_members` members each.
    bounds = np.unique(
        np.concatenate(
            [
                [0],
                np.searchsorted(cum, np.arange(chunk_members, members, chunk_members)) + 1,
                [len(sizes)],
            ]
        )
    )

    def run() -> Iterator[Chunk]:
        counters = Counters()
        for index, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            yield maker.chunk(index, sizes[lo:hi], spouse[lo:hi], counters)

    return network, plans, run()


def _context(network: Network, plans: Plans, tables: dict[str, list[pl.DataFrame]]) -> Context:
    def joined(name: str) -> pl.DataFrame:
        frames = tables.get(name) or []
        return pl.concat(frames) if frames else empty(name)

    return Context(
        designs=plans.designs,
        eligibility=joined("eligibility"),
        grace_periods=joined("grace_periods"),
        pcp=joined("pcp"),
        providers=network.providers,
        contracts=network.contracts,
        fee_schedules=network.fee_schedules,
        fee_rates=network.fee_rates,
        qpa=network.qpa,
        referrals=joined("referrals"),
        prior_auths=joined("prior_auths"),
    )


MEMBER_TABLES = ("eligibility", "grace_periods", "pcp", "referrals", "prior_auths")


def generate_world(
    members: int,
    year: int,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    chunk_members: int = CHUNK_MEMBERS,
) -> tuple[pl.DataFrame, Context]:
    """A world of `members` members in memory: the claim lines (CLAIM_LINES, ordered by
    family, then service date, received_at, claim_id, line number) and their Context.

    `progress(n)` is called after each chunk with the members it made. The same
    (members, year, seed, chunk_members) gives the same frames.
    """
    network, plans, chunks = _chunks(members, year, seed, chunk_members)
    claims: list[pl.DataFrame] = []
    tables: dict[str, list[pl.DataFrame]] = {name: [] for name in MEMBER_TABLES}
    for chunk in chunks:
        claims.append(chunk.claims)
        for name in MEMBER_TABLES:
            tables[name].append(getattr(chunk, name))
        if progress:
            progress(chunk.eligibility.height)
    return pl.concat(claims), _context(network, plans, tables)


def write_world(
    members: int,
    year: int,
    out_dir: str | Path,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    chunk_members: int = CHUNK_MEMBERS,
) -> Summary:
    """Write a world of `members` members to `out_dir`, chunk by chunk:

        claims.parquet   the claim lines, exactly the CLAIM_LINES columns, ordered by
                         family (then service date, received_at, claim_id, line number);
                         every row group holds whole families (member numbers
                         OHM<family>-<nn> sort in family order, so the row groups'
                         member_number statistics tell which families each holds)
        context/         the Context as a snapshot (openhmo.batch.snapshot.write_snapshot)

    Memory holds one chunk of claims at a time (and the member tables of the context).
    `progress(n)` is called after each chunk with the members it made.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    network, plans, chunks = _chunks(members, year, seed, chunk_members)
    summary = Summary(year=year, seed=seed, plans_without_year=plans.without_year)
    tables: dict[str, list[pl.DataFrame]] = {name: [] for name in MEMBER_TABLES}
    staging = out_dir / f".claims.parquet.tmp-{uuid.uuid4().hex[:8]}"
    arrow_schema = (
        pl.DataFrame(schema=CLAIM_LINES)
        .to_arrow()
        .schema.with_metadata(
            {
                b"openhmo.order": b"family, service_date, received_at, claim_id, line_number",
                b"openhmo.row_groups": b"whole families",
                b"openhmo.generator": f"openhmo.batch.generate seed={seed} year={year} "
                f"members={members}".encode(),
            }
        )
    )
    try:
        with pq.ParquetWriter(staging, arrow_schema, compression="zstd") as writer:
            for chunk in chunks:
                table = chunk.claims.to_arrow().cast(arrow_schema)
                for lo, hi in _row_groups(chunk.family_of_line):
                    writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
                for name in MEMBER_TABLES:
                    tables[name].append(getattr(chunk, name))
                summary.add(chunk)
                if progress:
                    progress(chunk.eligibility.height)
        context = _context(network, plans, tables)
        write_snapshot(
            context,
            out_dir / "context",
            note=f"openhmo generate claims: {members} members, {year}, seed {seed}",
        )
        os.replace(staging, out_dir / "claims.parquet")
    finally:
        staging.unlink(missing_ok=True)
    summary.providers = network.providers.height
    summary.seconds = time.monotonic() - started
    return summary


def _row_groups(family: np.ndarray) -> list[tuple[int, int]]:
    """Cuts of a family-ordered chunk into about ROW_GROUP_LINES lines, between families."""
    n = len(family)
    if n == 0:
        return []
    starts = np.flatnonzero(np.diff(family) != 0) + 1  # where a new family begins
    cuts = [0]
    for target in range(ROW_GROUP_LINES, n, ROW_GROUP_LINES):
        i = int(np.searchsorted(starts, max(target, cuts[-1] + 1)))
        if i < len(starts) and starts[i] > cuts[-1]:
            cuts.append(int(starts[i]))
    cuts.append(n)
    return [(lo, hi) for lo, hi in itertools.pairwise(cuts) if hi > lo]
