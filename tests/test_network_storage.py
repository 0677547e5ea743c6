"""Providers, contracts and the directory, stored in SQLite and PostgreSQL."""

from datetime import date
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from openhmo.history.models import ChangeRecord
from openhmo.network.directory import search
from openhmo.network.membership import is_in_network
from openhmo.network.models import Contract, Location, Provider
from openhmo.network.npi import make_npi
from openhmo.network.pricing import Rate, RateKey, ServiceLine, allowed_amount
from openhmo.network.service import (
    LocationInfo,
    NetworkDataError,
    ProviderInfo,
    add_contract,
    add_fee_schedule,
    add_organization,
    add_provider,
    contract_for,
    contracts_for,
    ensure_network,
    fee_schedule_snapshot,
    save_provider,
)

ACTOR = "test:network"


def office(zip_code: str, line1: str = "1 Main St", city: str = "Boston") -> LocationInfo:
    return LocationInfo(line1=line1, city=city, state="MA", zip_code=zip_code)


@pytest.fixture
def network(session):
    """A small Boston-area network: two PCPs, a pediatrician, an OB/GYN, a dermatologist
    in Worcester, and a group practice whose contract covers its members."""
    ensure_network(session, "openhmo-core", "OpenHMO Core", actor=ACTOR)
    add_fee_schedule(
        session,
        key="core-120",
        name="120% of Medicare",
        method="percent_of_medicare",
        percent=Decimal(120),
        medicare_locality="MA-01",
        rates={RateKey("99214"): Rate(20000)},
        actor=ACTOR,
        reason="2026 contracting",
    )
    group = add_organization(
        session, name="Back Bay Medical Group", tin="041234567", actor=ACTOR, reason="credentialed"
    )
    people = {
        "family": add_provider(
            session,
            npi=make_npi("100000101"),
            first_name="Ana",
            last_name="Rivera",
            credential="MD",
            taxonomy_code="207Q00000X",
            languages=["English", "Spanish"],
            locations=[office("02108")],
            panel_capacity=1500,
            actor=ACTOR,
            reason="credentialed",
        ),
        "internist": add_provider(
            session,
            npi=make_npi("100000102"),
            first_name="Bo",
            last_name="Chen",
            taxonomy_code="207R00000X",
            accepting_new_patients=False,
            languages=["English"],
            locations=[office("02139", "5 Mass Ave", "Cambridge")],
            actor=ACTOR,
            reason="credentialed",
        ),
        "pediatrician": add_provider(
            session,
            npi=make_npi("100000103"),
            first_name="Cy",
            last_name="Doe",
            taxonomy_code="208000000X",
            languages=["Portuguese"],
            locations=[office("02445")],
            organization=group,
            actor=ACTOR,
            reason="credentialed",
        ),
        "obgyn": add_provider(
            session,
            npi=make_npi("100000104"),
            first_name="Di",
            last_name="Evans",
            taxonomy_code="207V00000X",
            locations=[office("02118")],
            organization=group,
            actor=ACTOR,
            reason="credentialed",
        ),
        "dermatologist": add_provider(
            session,
            npi=make_npi("100000105"),
            first_name="Ed",
            last_name="Frost",
            taxonomy_code="207N00000X",
            locations=[office("01608", "9 Elm St", "Worcester")],
            actor=ACTOR,
            reason="credentialed",
        ),
    }
    for name in ("family", "internist", "dermatologist"):
        add_contract(
            session,
            "openhmo-core",
            provider=people[name],
            fee_schedule_key="core-120",
            effective_from=date(2026, 1, 1),
            effective_to=date(2026, 12, 31),
            actor=ACTOR,
            reason="2026 contract",
        )
    add_contract(
        session,
        "openhmo-core",
        organization=group,
        fee_schedule_key="core-120",
        effective_from=date(2026, 3, 1),
        actor=ACTOR,
        reason="group contract",
    )
    session.commit()
    return people


def test_roles_come_from_the_taxonomy(network):
    family, peds, obgyn = network["family"], network["pediatrician"], network["obgyn"]
    assert (family.specialty, family.pcp_eligible, family.pediatrics) == (
        "Family Medicine",
        True,
        False,
    )
    assert (peds.pcp_eligible, peds.pediatrics) == (True, True)
    # An OB/GYN is PCP-eligible only where a plan allows it; the plan decides, not the row.
    assert (obgyn.ob_gyn, obgyn.pcp_eligible) == (True, False)
    assert network["dermatologist"].pcp_eligible is False


def test_locations_are_placed_at_the_zip_centroid(network, session):
    location = network["family"].locations[0].location
    assert location.zip_code == "02108" and location.county_fips == "25025"
    assert location.latitude == pytest.approx(42.3573)
    assert location.longitude == pytest.approx(-71.0645)


def test_in_network_on_dates_before_within_and_after_the_contract(network, session):
    family = network["family"]
    assert not is_in_network(session, family.id, "openhmo-core", date(2025, 12, 31))
    assert is_in_network(session, family.id, "openhmo-core", date(2026, 1, 1))
    assert is_in_network(session, family.id, "openhmo-core", date(2026, 12, 31))
    assert not is_in_network(session, family.id, "openhmo-core", date(2027, 1, 1))


def test_an_organization_contract_covers_its_providers(network, session):
    peds = network["pediatrician"]
    assert not is_in_network(session, peds.id, "openhmo-core", date(2026, 2, 28))
    assert is_in_network(session, peds.id, "openhmo-core", date(2026, 3, 1))
    assert is_in_network(session, peds.id, "openhmo-core", date(2030, 1, 1))  # open-ended
    assert (
        contract_for(session, peds.id, "openhmo-core", date(2026, 3, 1)).organization_id
        == peds.organization_id
    )


def test_the_providers_own_contract_governs_before_its_organizations(network, session):
    obgyn = network["obgyn"]
    own = add_contract(
        session,
        "openhmo-core",
        provider=obgyn,
        effective_from=date(2026, 1, 1),
        actor=ACTOR,
        reason="individual agreement",
    )
    found = contracts_for(session, obgyn.id, "openhmo-core", date(2026, 6, 1))
    assert found[0].id == own.id and len(found) == 2
    assert contract_for(session, obgyn.id, "openhmo-core", date(2026, 2, 1)).id == own.id
    assert contract_for(session, obgyn.id, "other-network", date(2026, 2, 1)) is None


def test_a_contract_prices_a_line_through_its_fee_schedule_snapshot(network, session):
    contract = contract_for(session, network["family"].id, "openhmo-core", date(2026, 5, 1))
    schedule = fee_schedule_snapshot(session, contract.fee_schedule_id)
    assert schedule.percent == Decimal(120) and schedule.medicare_locality == "MA-01"
    assert allowed_amount(ServiceLine("99213"), schedule).amount_cents == 12307
    assert allowed_amount(ServiceLine("99214"), schedule).amount_cents == 20000


def test_every_write_records_who_and_why(network, session):
    rows = session.scalars(select(ChangeRecord).where(ChangeRecord.entity == "provider")).all()
    assert len(rows) == 5
    assert {r.actor for r in rows} == {ACTOR} and {r.reason for r in rows} == {"credentialed"}
    assert {r.action for r in rows} == {"provider_added"}
    contracts = session.scalars(select(ChangeRecord).where(ChangeRecord.entity == "contract"))
    assert {r.reason for r in contracts} == {"2026 contract", "group contract"}


def test_saving_the_same_provider_again_changes_nothing(network, session):
    info = ProviderInfo(
        npi=network["family"].npi,
        last_name="Rivera",
        first_name="Ana",
        taxonomy_code="207Q00000X",
        languages=["Spanish", "English"],
        locations=[office("02108")],
    )
    before = session.scalar(select(func.count()).select_from(ChangeRecord))
    assert save_provider(session, info, actor=ACTOR).action == "unchanged"
    assert session.scalar(select(func.count()).select_from(ChangeRecord)) == before
    assert session.scalar(select(func.count()).select_from(Location)) == 5
    moved = save_provider(
        session,
        ProviderInfo(npi=info.npi, accepting_new_patients=False),
        actor=ACTOR,
        reason="panel closed",
    )
    assert moved.action == "updated" and moved.changes == {"accepting_new_patients": [True, False]}
    # Overlapping languages and locations are replaced without tripping the primary keys.
    grew = save_provider(
        session,
        ProviderInfo(
            npi=info.npi,
            languages=["English", "Spanish", "French"],
            locations=[office("02445"), office("02108")],
        ),
        actor=ACTOR,
    )
    session.commit()
    assert set(grew.changes) == {"languages", "locations"}
    family = session.get(Provider, network["family"].id)
    assert sorted(lang.language for lang in family.languages) == ["English", "French", "Spanish"]
    primary = [pl.location.zip_code for pl in family.locations if pl.is_primary]
    assert primary == ["02445"] and len(family.locations) == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"npi": "1234567890"}, "npi", "fails the check digit: expected 3, found 0"),
        ({"last_name": None}, "last_name", "has no last name"),
        ({"taxonomy_code": "999Z00000X"}, "taxonomy_code", "not in the NUCC provider taxonomy"),
        ({"locations": [office("00000")]}, "zip_code", "ZIP code 00000 is not a known"),
    ],
)
def test_bad_providers_are_refused_with_the_field(session, fields, field, message):
    values = {
        "npi": make_npi("100000199"),
        "last_name": "Gray",
        "taxonomy_code": "207Q00000X",
        "locations": [office("02108")],
        **fields,
    }
    with pytest.raises(NetworkDataError, match=message) as caught:
        add_provider(session, actor=ACTOR, **values)
    assert caught.value.field == field
    assert session.scalar(select(func.count()).select_from(Provider)) == 0


def test_bad_contracts_are_refused(network, session):
    with pytest.raises(NetworkDataError, match=r"ends .* before it starts"):
        add_contract(
            session,
            "openhmo-core",
            provider=network["family"],
            effective_from=date(2026, 2, 1),
            effective_to=date(2026, 1, 1),
            actor=ACTOR,
        )
    with pytest.raises(NetworkDataError, match="there is no network 'nope'"):
        add_contract(
            session,
            "nope",
            provider=network["family"],
            effective_from=date(2026, 2, 1),
            actor=ACTOR,
        )
    with pytest.raises(NetworkDataError, match="no fee schedule 'gone'"):
        add_contract(
            session,
            "openhmo-core",
            provider=network["family"],
            fee_schedule_key="gone",
            effective_from=date(2026, 2, 1),
            actor=ACTOR,
        )


def test_adding_the_same_contract_twice_keeps_one(network, session):
    family = network["family"]
    again = add_contract(
        session,
        "openhmo-core",
        provider=family,
        fee_schedule_key="core-120",
        effective_from=date(2026, 1, 1),
        effective_to=date(2026, 12, 31),
        actor=ACTOR,
    )
    count = session.scalar(
        select(func.count()).select_from(Contract).where(Contract.provider_id == family.id)
    )
    assert count == 1 and again.effective_to == date(2026, 12, 31)


# --- the directory --------------------------------------------------------------------


def npis(entries):
    return [e.provider.npi for e in entries]


def test_search_by_specialty_text_or_taxonomy_prefix(network, session):
    on = date(2026, 6, 1)
    assert npis(search(session, specialty="dermatology", on=on)) == [network["dermatologist"].npi]
    assert npis(search(session, specialty="OB/GYN", on=on)) == [network["obgyn"].npi]
    assert npis(search(session, specialty="Family Practice", on=on)) == [network["family"].npi]
    assert npis(search(session, specialty="207R", on=on)) == [network["internist"].npi]
    assert set(npis(search(session, pcp_only=True, on=on))) == {
        network[n].npi for n in ("family", "internist", "pediatrician")
    }


def test_search_by_distance_from_a_zip(network, session):
    found = search(session, near_zip="02108", within_miles=5, on=date(2026, 6, 1))
    # 02108 itself, then Back Bay/South End (02118), Cambridge (02139), Brookline (02445).
    assert npis(found) == [network[n].npi for n in ("family", "obgyn", "internist", "pediatrician")]
    assert found[0].distance_miles == pytest.approx(0.0)
    assert all(a.distance_miles <= b.distance_miles for a, b in pairwise(found))
    assert all(e.distance_miles <= 5 for e in found)
    worcester = search(session, near_zip="02108", within_miles=50)
    assert worcester[-1].provider.npi == network["dermatologist"].npi
    assert 35 < worcester[-1].distance_miles < 45


def test_search_by_language_and_accepting_new_patients(network, session):
    assert npis(search(session, language="spanish")) == [network["family"].npi]
    assert npis(search(session, language="Portuguese")) == [network["pediatrician"].npi]
    assert npis(search(session, accepting_new_patients=False)) == [network["internist"].npi]
    accepting = search(session, accepting_new_patients=True, pcp_only=True)
    assert network["internist"].npi not in npis(accepting)


def test_search_in_a_network_on_a_date(network, session):
    before_group = search(session, network_key="openhmo-core", on=date(2026, 2, 1))
    assert set(npis(before_group)) == {
        network[n].npi for n in ("family", "internist", "dermatologist")
    }
    assert all(e.in_network for e in before_group)
    everyone = search(
        session, network_key="openhmo-core", on=date(2026, 2, 1), include_out_of_network=True
    )
    flags = {e.provider.npi: e.in_network for e in everyone}
    assert flags[network["pediatrician"].npi] is False and flags[network["family"].npi] is True
    after = search(session, network_key="openhmo-core", on=date(2027, 6, 1))
    assert set(npis(after)) == {network["pediatrician"].npi, network["obgyn"].npi}


def test_search_needs_a_zip_for_a_distance(session):
    with pytest.raises(ValueError, match="within_miles needs near_zip"):
        search(session, within_miles=10)
