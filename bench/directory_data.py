"""A provider directory of any size, fast: N practitioners with practices, places, languages
and contracts, bulk-inserted with SQLAlchemy Core (100,000 in well under a minute).

    from directory_data import add_practitioners
    add_practitioners(engine, 100_000)          # into an empty or a demo database

The mix is the demo's (its specialties, names, languages and share accepting new
patients, demo/data/*.yaml): practices of 1 to 8 practitioners share one address (a
location of their organization) in a Massachusetts ZIP code, four in five in the Silver
HMO's counties, placed near the ZIP's centroid. Contracts put them in `network_key`:
most practitioners by their own contract, a tenth of practices by a contract of the
practice; some contracts have ended and some practitioners have none. Rows are written
as the importers would write them (roles and specialty text from the NUCC taxonomy),
without the importers' per-row checks and history, which is what makes it fast; the
NPIs are valid (prefix 2, so they never meet the demo's, which start with 1).
"""

from __future__ import annotations

import random
from datetime import date
from importlib import resources

import yaml
from sqlalchemy import Engine, func, insert, select

from openhmo.db import refresh_statistics
from openhmo.network.models import (
    Contract,
    Location,
    Network,
    Organization,
    Provider,
    ProviderLanguage,
    ProviderLocation,
)
from openhmo.network.npi import make_npi
from openhmo.network.taxonomy import lookup_taxonomy, roles_of
from openhmo.plans.loader import example_designs, load_design
from openhmo.reference.geo import zip_table

BATCH = 10_000
SOURCE = "bench:directory_data"
CREDENTIALS = {
    "363LF0000X": "NP",
    "103T00000X": "PhD",
    "1041C0700X": "LICSW",
    "225100000X": "DPT",
    "111N00000X": "DC",
}


def _demo_data(name: str) -> dict:
    return yaml.safe_load(resources.files("openhmo.demo").joinpath(f"data/{name}").read_text())


def _zips() -> tuple[list, list]:
    hmo = load_design(next(p for p in example_designs() if p.stem == "hmo-silver"))
    counties = set(hmo.service_area.counties)
    ma = [z for z in zip_table().values() if z.state == "MA" and z.zip_type == "STANDARD"]
    ma.sort(key=lambda z: z.zip_code)
    inside = [z for z in ma if z.county_fips in counties]
    outside = [z for z in ma if z.county_fips not in counties]
    return inside, outside


def _ensure_network(conn, key: str) -> int:
    found = conn.scalar(select(Network.id).where(Network.key == key))
    if found is None:
        found = conn.scalar(insert(Network).values(key=key, name=key).returning(Network.id))
    return found


def _first_serial(conn) -> int:
    top = conn.scalar(select(func.max(Provider.npi)).where(Provider.npi.like("2%")))
    return int(top[1:9]) + 1 if top else 0


def _insert(conn, table, rows: list[dict], returning=None) -> list:
    """Insert `rows` in batches; the generated ids in the order of `rows`, if asked."""
    out = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        if returning is None:
            conn.execute(insert(table), chunk)
        else:
            stmt = insert(table).returning(returning, sort_by_parameter_order=True)
            out += conn.scalars(stmt, chunk).all()
    return out


def add_practitioners(
    engine: Engine,
    count: int,
    *,
    network_key: str = "openhmo-core",
    seed: int = 7,
    contracts_from: date = date(2020, 1, 1),
) -> dict[str, int]:
    """Add `count` practitioners (and their practices, places and contracts); the counts."""
    rng = random.Random(seed)
    people, network = _demo_data("people.yaml"), _demo_data("network.yaml")
    taxonomies = list(network["individuals"])
    weights = [network["individuals"][t] for t in taxonomies]
    inside, outside = _zips()
    languages = people["provider_languages"]
    with engine.begin() as conn:
        network_id = _ensure_network(conn, network_key)
        serial = _first_serial(conn)
        practices: list[tuple[int, object]] = []
        left = count
        while left > 0:
            size = min(left, rng.randint(1, 8))
            practices.append((size, rng.choice(inside if rng.random() < 0.8 else outside)))
            left -= size
        org_ids = _insert(
            conn,
            Organization,
            [
                {
                    "name": f"{rng.choice(people['last'])} {place.city.title()} Medical Group",
                    "kind": "group",
                    "source": SOURCE,
                    "external_id": f"practice-{serial + i}",
                }
                for i, (_, place) in enumerate(practices)
            ],
            Organization.id,
        )
        location_ids = _insert(
            conn,
            Location,
            [
                {
                    "organization_id": org_id,
                    "line1": f"{rng.randint(1, 999)} {rng.choice(people['streets'])}",
                    "city": place.city.title(),
                    "state": place.state,
                    "zip_code": place.zip_code,
                    "county_fips": place.county_fips,
                    "latitude": place.lat + rng.uniform(-0.02, 0.02),
                    "longitude": place.lon + rng.uniform(-0.02, 0.02),
                    "phone": f"617{rng.randint(2000000, 9999999)}",
                }
                for org_id, (_, place) in zip(org_ids, practices, strict=True)
            ],
            Location.id,
        )
        providers, at = [], []
        for org_id, location_id, (size, _) in zip(org_ids, location_ids, practices, strict=True):
            for _ in range(size):
                taxonomy = rng.choices(taxonomies, weights)[0]
                roles = roles_of(taxonomy)
                sex = rng.choice("FM")
                providers.append(
                    {
                        "npi": make_npi(f"2{serial % 100_000_000:08d}"),
                        "entity_type": "individual",
                        "first_name": rng.choice(
                            people["female_first" if sex == "F" else "male_first"]
                        ),
                        "last_name": rng.choice(people["last"]),
                        "credential": CREDENTIALS.get(taxonomy, "MD"),
                        "sex": sex,
                        "taxonomy_code": taxonomy,
                        "specialty": lookup_taxonomy(taxonomy).specialty,
                        "pcp_eligible": roles.pcp_eligible,
                        "pediatrics": roles.pediatric,
                        "ob_gyn": roles.ob_gyn,
                        "accepting_new_patients": rng.random() < network["accepting_share"],
                        "organization_id": org_id,
                        "source": SOURCE,
                    }
                )
                at.append((org_id, location_id))
                serial += 1
        provider_ids = _insert(conn, Provider, providers, Provider.id)
        _insert(
            conn,
            ProviderLocation,
            [
                {"provider_id": p, "location_id": loc, "is_primary": True}
                for p, (_, loc) in zip(provider_ids, at, strict=True)
            ],
        )
        spoken = []
        for p in provider_ids:
            spoken.append({"provider_id": p, "language": "English"})
            spoken += [
                {"provider_id": p, "language": lang}
                for lang, share in languages.items()
                if rng.random() < share
            ]
        _insert(conn, ProviderLanguage, spoken)
        # A tenth of practices contract as a whole; the rest contract practitioner by
        # practitioner, and of those some contracts ended and some never existed.
        by_practice = {org_id for org_id in org_ids if rng.random() < 0.1}
        contracts = [
            {
                "network_id": network_id,
                "provider_id": None,
                "organization_id": org_id,
                "effective_from": contracts_from,
                "effective_to": None,
                "source": SOURCE,
            }
            for org_id in sorted(by_practice)
        ]
        for p, (org_id, _) in zip(provider_ids, at, strict=True):
            luck = rng.random()
            if org_id in by_practice or luck < 0.07:
                continue
            ended = date(2024, 12, 31) if luck < 0.10 else None
            contracts.append(
                {
                    "network_id": network_id,
                    "provider_id": p,
                    "organization_id": None,
                    "effective_from": contracts_from,
                    "effective_to": ended,
                    "source": SOURCE,
                }
            )
        _insert(conn, Contract, contracts)
    refresh_statistics(engine)
    return {
        "practitioners": len(provider_ids),
        "organizations": len(org_ids),
        "locations": len(location_ids),
        "languages": len(spoken),
        "contracts": len(contracts),
    }
