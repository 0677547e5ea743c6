"""Building blocks for storage tests: real rows in the real database, nothing faked."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.enrollment.pcp import choose_pcp
from openhmo.enrollment.service import AddressIn, PersonIn, enroll_subscriber
from openhmo.network.models import Contract, Location, Network, Provider, ProviderLocation
from openhmo.network.pricing import Rate, RateKey
from openhmo.network.service import add_contract, add_fee_schedule
from openhmo.plans.loader import example_designs, load_design
from openhmo.plans.store import save_design
from openhmo.reference.geo import lookup_zip

ACTOR = "test:enrollment-staff"
BOSTON = AddressIn(line1="1 Beacon St", city="Boston", state="MA", zip_code="02108")
CAMBRIDGE = AddressIn(line1="5 Brattle St", city="Cambridge", state="MA", zip_code="02138")
NEW_YORK = AddressIn(line1="350 5th Ave", city="New York", state="NY", zip_code="10118")


def load_examples(session: Session) -> None:
    for path in example_designs():
        save_design(session, load_design(path), source=str(path), actor=ACTOR)
    session.commit()


def network(session: Session, key: str = "openhmo-core") -> Network:
    found = session.scalar(select(Network).where(Network.key == key))
    if found is None:
        found = Network(key=key, name=key)
        session.add(found)
        session.flush()
    return found


_npi_counter = [0]


def valid_npi(seed: int) -> str:
    """A 10-digit NPI with a correct check digit (Luhn over 80840 + the first nine)."""
    first9 = f"1{seed:08d}"
    digits = [int(d) for d in "80840" + first9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return first9 + str((10 - total % 10) % 10)


def provider(
    session: Session,
    *,
    last_name: str,
    taxonomy: str = "207Q00000X",
    zip_code: str = "02108",
    pcp: bool = True,
    pediatrics: bool = False,
    ob_gyn: bool = False,
    accepting: bool = True,
    capacity: int | None = None,
    network_key: str | None = "openhmo-core",
    contract_from: date = date(2020, 1, 1),
    contract_to: date | None = None,
    lat_offset: float = 0.0,
) -> Provider:
    _npi_counter[0] += 1
    z = lookup_zip(zip_code)
    p = Provider(
        npi=valid_npi(_npi_counter[0]),
        first_name="Pat",
        last_name=last_name,
        credential="MD",
        taxonomy_code=taxonomy,
        specialty=taxonomy,
        pcp_eligible=pcp,
        pediatrics=pediatrics,
        ob_gyn=ob_gyn,
        accepting_new_patients=accepting,
        panel_capacity=capacity,
    )
    location = Location(
        line1=f"{_npi_counter[0]} Main St",
        city=z.city,
        state=z.state,
        zip_code=z.zip_code,
        county_fips=z.county_fips,
        latitude=z.lat + lat_offset,
        longitude=z.lon,
    )
    session.add_all([p, location])
    session.flush()
    session.add(ProviderLocation(provider_id=p.id, location_id=location.id, is_primary=True))
    if network_key:
        session.add(
            Contract(
                network_id=network(session, network_key).id,
                provider_id=p.id,
                effective_from=contract_from,
                effective_to=contract_to,
            )
        )
    session.flush()
    return p


def person(
    first: str, born: date, sex: str = "F", relationship: str = "self", last: str = "Okafor"
) -> PersonIn:
    return PersonIn(
        first_name=first, last_name=last, birth_date=born, sex=sex, relationship=relationship
    )


def family(
    session: Session,
    *,
    plan_key: str = "openhmo-silver-hmo",
    effective=date(2026, 1, 1),
    address: AddressIn = BOSTON,
    children: int = 2,
    spouse: bool = True,
    **kwargs,
):
    dependents = []
    if spouse:
        dependents.append(person("Sam", date(1984, 6, 2), "M", "spouse"))
    for i in range(children):
        dependents.append(person(f"Kid{i}", date(2016 + i, 3, 1), "F" if i % 2 else "M", "child"))
    coverage = enroll_subscriber(
        session,
        plan_key=plan_key,
        subscriber=person("Ada", date(1985, 2, 14)),
        address=address,
        effective=effective,
        actor=ACTOR,
        dependents=dependents,
        **kwargs,
    )
    session.commit()
    return coverage


def price_network(session: Session, providers, rates: dict[str, int], key: str = "core-2026"):
    """A per-code fee schedule (code -> cents) and each provider's contract in the core
    network under it, from 2020 on."""
    add_fee_schedule(
        session,
        key=key,
        name="Core network 2026",
        method="per_code",
        rates={RateKey(code): Rate(cents) for code, cents in rates.items()},
        actor=ACTOR,
    )
    for p in providers:
        add_contract(
            session,
            "openhmo-core",
            provider=p,
            fee_schedule_key=key,
            effective_from=date(2020, 1, 1),
            actor=ACTOR,
        )


def choose_pcp_for(session: Session, members, pcp: Provider, day: date = date(2026, 1, 1)):
    """Each member's first PCP, from `day`."""
    for m in members:
        choose_pcp(session, member=m, provider=pcp, requested_on=day, actor=ACTOR, initial=True)
