"""The public provider directory (Plan-Net) over real HTTP, on SQLite and PostgreSQL.

A small network with known places and contracts (two networks, a practice with an
organization-level contract, contracts that ended or have not started, an out-of-network
doctor, a hospital) is searched as a member's app would, without a token: every resource
is validated (fhir.resources R4B and HL7's R4 schema), results are compared exactly
(who, in what order, how many, how far), paging links are followed, and bad searches
get 400 OperationOutcomes that name the parameter.
"""

from __future__ import annotations

import importlib
import json
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select

from api_support import PASSWORD, serve, token
from fhir_validate import assert_valid_fhir
from openhmo.access.accounts import NewAccount, create_account
from openhmo.db import session_factory
from openhmo.network.models import ProviderLocation
from openhmo.network.service import (
    LocationInfo,
    add_contract,
    add_organization,
    add_provider,
    ensure_network,
)
from openhmo.reference.geo import distance_miles, lookup_zip
from support import ACTOR, load_examples, valid_npi

NUCC = "http://nucc.org/provider-taxonomy"
NPI = "http://hl7.org/fhir/sid/us-npi"
PLANNET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
NETWORK_REFERENCE = f"{PLANNET}/StructureDefinition/network-reference"
NEWPATIENTS = f"{PLANNET}/StructureDefinition/newpatients"
DISTANCE = "http://hl7.org/fhir/StructureDefinition/location-distance"
TODAY = date.today()
BOSTON = lookup_zip("02108")

# name -> (first name, taxonomy, ZIP, accepting, at the practice, own contracts)
# Contracts: (network, from, to). The practice (Beacon) has its own contract in "narrow".
PEOPLE = {
    "Welby": ("Marcus", "207Q00000X", "02108", True, True, [("core", date(2020, 1, 1), None)]),
    "Heart": ("Pat", "207RC0000X", "02108", True, True, []),
    "Welch": ("Anna", "207Q00000X", "02138", False, False, [("core", date(2020, 1, 1), None)]),
    "Nurse": ("Nora", "363LF0000X", "02143", True, False, [("core", date(2020, 1, 1), None)]),
    "Casey": ("Ben", "208000000X", "01608", True, False, [("core", date(2020, 1, 1), None)]),
    "Outside": ("Olga", "207Q00000X", "02445", True, False, []),
    "Former": (
        "Fred",
        "207Q00000X",
        "02116",
        True,
        False,
        [("core", date(2020, 1, 1), TODAY - timedelta(days=30))],
    ),
    "Future": ("Fay", "207Q00000X", "02139", True, False, [("core", TODAY + timedelta(30), None)]),
}
ROLES_BY_NAME = ["Casey", "Former", "Future", "Heart", "Nurse", "Outside", "Welby", "Welch"]
CORE, NARROW = "openhmo-core", "openhmo-narrow"


def _seed(engine) -> dict:
    """The directory's world; returns who is who (names -> NPI, row ids)."""
    with session_factory(engine)() as s:
        load_examples(s)
        ensure_network(s, CORE, "OpenHMO Core Network", actor=ACTOR)
        ensure_network(s, NARROW, "OpenHMO Narrow Network", actor=ACTOR)
        beacon = add_organization(
            s, name="Beacon Family Practice", npi=valid_npi(900), tin="041234567", actor=ACTOR
        )
        add_contract(s, NARROW, organization=beacon, effective_from=date(2020, 1, 1), actor=ACTOR)
        npis, ids = {}, {}
        for i, (last, (first, taxonomy, zip_code, accepting, practice, contracts)) in enumerate(
            PEOPLE.items()
        ):
            place = lookup_zip(zip_code)
            where = LocationInfo(
                line1="1 Beacon St" if practice else f"{10 + i} Main St",
                city=place.city,
                state=place.state,
                zip_code=zip_code,
                name="Beacon Family Practice" if practice else None,
                phone="6175550100" if practice else None,
            )
            p = add_provider(
                s,
                npi=valid_npi(800 + i),
                first_name=first,
                last_name=last,
                credential="MD",
                sex="F",
                taxonomy_code=taxonomy,
                accepting_new_patients=accepting,
                organization=beacon if practice else None,
                languages=["English", "Spanish"] if last == "Welby" else ["English"],
                locations=[where],
                actor=ACTOR,
            )
            for network, start, end in contracts:
                key = CORE if network == "core" else NARROW
                add_contract(
                    s, key, provider=p, effective_from=start, effective_to=end, actor=ACTOR
                )
            npis[last], ids[last] = p.npi, p.id
        hospital = add_provider(
            s,
            npi=valid_npi(899),
            entity_type="organization",
            organization_name="Boston General Hospital",
            taxonomy_code="282N00000X",
            locations=[
                LocationInfo(line1="55 Fruit St", city="Boston", state="MA", zip_code="02114")
            ],
            actor=ACTOR,
        )
        add_contract(s, CORE, provider=hospital, effective_from=date(2020, 1, 1), actor=ACTOR)
        create_account(s, NewAccount("staff", "staff"), PASSWORD, actor=ACTOR)
        s.commit()
        ids["hospital"] = hospital.id
        places = {
            name: s.scalars(
                select(ProviderLocation.location_id).where(ProviderLocation.provider_id == i)
            ).one()
            for name, i in ids.items()
        }
        hospital_place = places.pop("hospital")
        return {
            "npi": npis,
            "id": ids,
            "place": places,
            "hospital": hospital,
            "hospital_place": hospital_place,
            "beacon": beacon.id,
        }


@pytest.fixture(scope="module")
def api(module_engine):
    world = _seed(module_engine)
    headers = {"Accept": "application/fhir+json"}
    with serve(module_engine) as base, httpx.Client(base_url=base, headers=headers) as http:
        yield http, world, base


def valid(resource: dict) -> dict:
    """`resource`, after checking it with fhir.resources (R4B) and HL7's R4 JSON schema."""
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    getattr(module, kind).model_validate(resource)
    assert_valid_fhir(resource)
    for entry in resource.get("entry", []):
        valid(entry["resource"])
    return resource


def get(http: httpx.Client, path: str, status: int = 200, **kwargs) -> dict:
    answer = http.get(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    return valid(answer.json())


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def role_ids(world: dict, names: list[str]) -> list[str]:
    return [f"role-{world['id'][n]}" for n in names]


def _networks(role: dict) -> list[str]:
    return [
        e["valueReference"]["reference"] for e in role["extension"] if e["url"] == NETWORK_REFERENCE
    ]


def _accepting(resource: dict) -> str:
    (ext,) = [e for e in resource["extension"] if e["url"] == NEWPATIENTS]
    return ext["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]


# --- reads ----------------------------------------------------------------------------------


def test_a_practitioner_reads_back_by_npi_with_specialty_and_languages(api):
    http, world, _ = api
    doc = get(http, f"/fhir/Practitioner/{world['npi']['Welby']}")
    assert doc["identifier"] == [{"use": "official", "system": NPI, "value": world["npi"]["Welby"]}]
    assert doc["name"][0]["family"] == "Welby" and doc["name"][0]["given"] == ["Marcus"]
    assert doc["qualification"][0]["code"]["coding"][0] == {
        "system": NUCC,
        "code": "207Q00000X",
        "display": "Family Medicine Physician",
    }
    assert [c["coding"][0]["code"] for c in doc["communication"]] == ["en", "es"]
    assert doc["meta"]["profile"] == [f"{PLANNET}/StructureDefinition/plannet-Practitioner"]
    assert doc["meta"]["lastUpdated"].endswith("Z")
    # A hospital has an NPI but is not a practitioner.
    get(http, f"/fhir/Practitioner/{world['hospital'].npi}", 404)


def test_a_role_names_its_practitioner_practice_place_and_networks_today(api):
    http, world, _ = api
    welby = get(http, f"/fhir/PractitionerRole/role-{world['id']['Welby']}")
    assert welby["practitioner"]["reference"] == f"Practitioner/{world['npi']['Welby']}"
    assert welby["organization"]["reference"] == f"Organization/org-{world['beacon']}"
    assert welby["location"] == [{"reference": f"Location/loc-{world['place']['Welby']}"}]
    assert welby["specialty"][0]["coding"][0]["code"] == "207Q00000X"
    assert welby["code"][0]["coding"][0]["code"] == "ph"
    assert welby["telecom"] == [{"system": "phone", "value": "6175550100", "use": "work"}]
    # Own contract in core; the practice's contract in narrow.
    assert _networks(welby) == [f"Organization/network-{CORE}", f"Organization/network-{NARROW}"]
    assert _accepting(welby) == "newpt"
    heart = get(http, f"/fhir/PractitionerRole/role-{world['id']['Heart']}")
    assert _networks(heart) == [f"Organization/network-{NARROW}"]
    welch = get(http, f"/fhir/PractitionerRole/role-{world['id']['Welch']}")
    assert _accepting(welch) == "nopt"
    nurse = get(http, f"/fhir/PractitionerRole/role-{world['id']['Nurse']}")
    assert nurse["code"][0]["coding"][0]["code"] == "crnp"
    # Ended last month, starts next month, never contracted: in no network today.
    for name in ("Former", "Future", "Outside"):
        role = get(http, f"/fhir/PractitionerRole/role-{world['id'][name]}")
        assert _networks(role) == [], name
    get(http, f"/fhir/PractitionerRole/role-{world['hospital'].id}", 404)
    get(http, "/fhir/PractitionerRole/role-999999", 404)
    get(http, "/fhir/PractitionerRole/nonsense", 404)


def test_locations_organizations_networks_and_services_read_back(api):
    http, world, _ = api
    place = get(http, f"/fhir/Location/loc-{world['place']['Welby']}")
    assert place["name"] == "Beacon Family Practice"
    assert place["address"]["line"] == ["1 Beacon St"] and place["address"]["postalCode"] == "02108"
    assert place["position"] == {"longitude": BOSTON.lon, "latitude": BOSTON.lat}
    assert place["managingOrganization"]["reference"] == f"Organization/org-{world['beacon']}"
    beacon = get(http, f"/fhir/Organization/org-{world['beacon']}")
    assert beacon["name"] == "Beacon Family Practice"
    assert beacon["type"][0]["coding"][0]["code"] == "prvgrp"
    assert beacon["address"][0]["line"] == ["1 Beacon St"]
    assert all(i["system"] != "urn:oid:2.16.840.1.113883.4.4" for i in beacon["identifier"])
    core = get(http, f"/fhir/Organization/network-{CORE}")
    assert core["type"][0]["coding"][0]["code"] == "ntwk"
    assert core["partOf"] == {"reference": "Organization/payer"}
    assert core["meta"]["profile"] == [f"{PLANNET}/StructureDefinition/plannet-Network"]
    payer = get(http, "/fhir/Organization/payer")
    assert payer["type"][0]["coding"][0]["code"] == "payer"
    service = get(http, f"/fhir/HealthcareService/hcs-{world['place']['Heart']}-207RC0000X")
    assert service["category"][0]["coding"][0]["code"] == "prov"
    assert service["providedBy"]["reference"] == f"Organization/org-{world['beacon']}"
    hospital = get(http, f"/fhir/HealthcareService/hcs-{world['hospital_place']}-282N00000X")
    assert hospital["category"][0]["coding"][0]["code"] == "hosp"
    # Outside is in no network: the place offers nothing to the plan's members.
    get(http, f"/fhir/HealthcareService/hcs-{world['place']['Outside']}-207Q00000X", 404)
    for missing in ("Location/loc-0", "Organization/org-999999", "Organization/network-none"):
        outcome = get(http, f"/fhir/{missing}", 404)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-found"


def test_insurance_plans_carry_type_networks_area_and_exact_costs(api):
    http, _, _ = api
    answer = http.get("/fhir/InsurancePlan/openhmo-silver-hmo")
    plan = valid(answer.json())
    assert plan["type"][0]["coding"][0]["code"] == "commhmo"
    assert plan["network"] == [{"reference": f"Organization/network-{CORE}"}]
    assert plan["ownedBy"] == plan["administeredBy"] == {"reference": "Organization/payer"}
    assert plan["period"] == {"start": "2026-01-01", "end": "2027-12-31"}
    assert [a["display"] for a in plan["coverageArea"]][:2] == [
        "Essex County, MA",
        "Middlesex County, MA",
    ]
    exact = json.loads(answer.text, parse_float=Decimal)
    costs = {c["type"]["text"]: c["cost"]["value"] for c in exact["plan"][0]["generalCost"]}
    assert costs["Monthly premium, self only"] == Decimal("482.00")
    assert costs["Deductible, in-network, family"] == Decimal("1000.00")
    assert '"value":482.00,' in answer.text  # an exact decimal on the wire, not a float
    assert plan["plan"][0]["type"]["coding"][0]["code"] == "silver"
    indemnity = get(http, "/fhir/InsurancePlan/openhmo-traditional")
    assert "network" not in indemnity and "meta" in indemnity
    assert "profile" not in indemnity["meta"]  # Plan-Net needs a network; we do not claim it
    get(http, "/fhir/InsurancePlan/no-such-plan", 404)


# --- searches -------------------------------------------------------------------------------


def test_practitioner_names_are_case_insensitive_prefixes(api):
    http, world, _ = api
    assert ids(get(http, "/fhir/Practitioner?name=WEL")) == [
        world["npi"]["Welby"],
        world["npi"]["Welch"],
    ]
    assert ids(get(http, "/fhir/Practitioner?family=welc")) == [world["npi"]["Welch"]]
    assert ids(get(http, "/fhir/Practitioner?given=marc")) == [world["npi"]["Welby"]]
    assert ids(get(http, "/fhir/Practitioner?name:exact=welby")) == []
    assert ids(get(http, "/fhir/Practitioner?name:exact=Welby")) == [world["npi"]["Welby"]]
    assert ids(get(http, "/fhir/Practitioner?name:contains=ELC")) == [world["npi"]["Welch"]]
    both = get(http, "/fhir/Practitioner?name=welby,casey")
    assert ids(both) == [world["npi"]["Casey"], world["npi"]["Welby"]] and both["total"] == 2
    assert ids(get(http, "/fhir/Practitioner?name=wel&name=an")) == [world["npi"]["Welch"]]
    npi = world["npi"]["Heart"]
    assert ids(get(http, f"/fhir/Practitioner?identifier={NPI}|{npi}")) == [npi]
    assert ids(get(http, f"/fhir/Practitioner?identifier={npi}")) == [npi]
    assert ids(get(http, f"/fhir/Practitioner?identifier=urn:other|{npi}")) == []
    everyone = get(http, "/fhir/Practitioner")
    assert everyone["total"] == 8 and world["hospital"].npi not in ids(everyone)


def test_paging_links_walk_the_whole_result_in_order(api):
    http, world, base = api
    seen, url, pages = [], "/fhir/PractitionerRole?_count=3", 0
    while url:
        bundle = get(http, url.removeprefix(base))
        assert bundle["total"] == 8
        seen += ids(bundle)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert dict(parse_qsl(urlsplit(links["self"]).query))["_count"] == "3"
        if pages:
            assert "previous" in links
        url, pages = links.get("next"), pages + 1
    assert pages == 3
    assert seen == role_ids(world, ROLES_BY_NAME)
    back = get(http, "/fhir/PractitionerRole?_count=3&_offset=6")
    previous = {link["relation"]: link["url"] for link in back["link"]}["previous"]
    assert ids(get(http, previous.removeprefix(base))) == role_ids(world, ROLES_BY_NAME[3:6])
    only_total = get(http, "/fhir/PractitionerRole?_count=0")
    assert only_total["total"] == 8 and "entry" not in only_total
    assert [link["relation"] for link in only_total["link"]] == ["self", "first"]
    assert ids(get(http, "/fhir/PractitionerRole?_offset=100")) == []
    # _total=none: no count; a full page still links to the next one.
    uncounted = get(http, "/fhir/PractitionerRole?_count=4&_total=none")
    assert "total" not in uncounted and ids(uncounted) == role_ids(world, ROLES_BY_NAME[:4])
    assert "next" in {link["relation"] for link in uncounted["link"]}
    last = get(http, "/fhir/PractitionerRole?_count=4&_offset=5&_total=none")
    assert "next" not in {link["relation"] for link in last["link"]}


def test_the_count_stops_at_the_cap_unless_accurate_is_asked_for(api, monkeypatch):
    http, world, _ = api
    from openhmo.api.fhir import directory_sql

    monkeypatch.setattr(directory_sql, "COUNT_CAP", 8)  # exactly as many as there are
    assert get(http, "/fhir/PractitionerRole?_count=3")["total"] == 8
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 7)  # one fewer: past the cap
    for url in (
        "/fhir/PractitionerRole?_count=3",
        "/fhir/PractitionerRole?_count=3&_total=estimate",
    ):
        capped = get(http, url)
        assert "total" not in capped and ids(capped) == role_ids(world, ROLES_BY_NAME[:3])
        assert "next" in {link["relation"] for link in capped["link"]}
    only_count = get(http, "/fhir/Practitioner?_count=0")
    assert "total" not in only_count and "entry" not in only_count
    accurate = get(http, "/fhir/PractitionerRole?_count=3&_total=accurate")
    assert accurate["total"] == 8 and ids(accurate) == role_ids(world, ROLES_BY_NAME[:3])
    assert get(http, "/fhir/Practitioner?_count=0&_total=accurate")["total"] == 8
    # A page that is not full shows the total itself, cap or not.
    assert get(http, "/fhir/PractitionerRole?_count=3&_offset=6")["total"] == 8


def test_roles_by_specialty_network_and_new_patients(api):
    http, world, _ = api
    heart = role_ids(world, ["Heart"])
    assert ids(get(http, f"/fhir/PractitionerRole?specialty={NUCC}|207RC0000X")) == heart
    assert ids(get(http, "/fhir/PractitionerRole?specialty=207rc0000x")) == heart
    assert ids(get(http, "/fhir/PractitionerRole?specialty=urn:other|207RC0000X")) == []
    family = ["Former", "Future", "Outside", "Welby", "Welch"]
    assert ids(get(http, "/fhir/PractitionerRole?specialty=207Q00000X")) == role_ids(world, family)
    core = get(http, f"/fhir/PractitionerRole?network=Organization/network-{CORE}")
    assert ids(core) == role_ids(world, ["Casey", "Nurse", "Welby", "Welch"]) and core["total"] == 4
    # A page smaller than the result: the total is counted (the set form of membership).
    one = get(http, f"/fhir/PractitionerRole?network=network-{CORE},network-{NARROW}&_count=1")
    assert ids(one) == role_ids(world, ["Casey"]) and one["total"] == 5
    narrow = f"/fhir/PractitionerRole?network=network-{NARROW}"
    assert ids(get(http, narrow)) == role_ids(world, ["Heart", "Welby"])
    either = f"/fhir/PractitionerRole?network=network-{CORE},network-{NARROW}&specialty=207RC0000X"
    assert ids(get(http, either)) == heart
    assert ids(get(http, "/fhir/PractitionerRole?network=Organization/network-nope")) == []
    in_core_family = f"/fhir/PractitionerRole?network=network-{CORE}&specialty=207Q00000X"
    assert ids(get(http, in_core_family)) == role_ids(world, ["Welby", "Welch"])
    accepting = f"{in_core_family}&new-patient={PLANNET}/CodeSystem/AcceptingPatientsCS|newpt"
    assert ids(get(http, accepting)) == role_ids(world, ["Welby"])
    assert ids(get(http, f"{in_core_family}&new-patient=nopt")) == role_ids(world, ["Welch"])
    assert ids(get(http, f"{in_core_family}&new-patient=false")) == role_ids(world, ["Welch"])
    assert ids(get(http, f"{in_core_family}&new-patient=existptonly")) == []
    assert ids(get(http, "/fhir/PractitionerRole?role=crnp")) == role_ids(world, ["Nurse"])


def test_roles_by_practitioner_organization_and_location_with_includes(api):
    http, world, _ = api
    npi = world["npi"]["Casey"]
    assert ids(get(http, f"/fhir/PractitionerRole?practitioner=Practitioner/{npi}")) == role_ids(
        world, ["Casey"]
    )
    practice = role_ids(world, ["Heart", "Welby"])
    org = f"/fhir/PractitionerRole?organization=Organization/org-{world['beacon']}"
    assert ids(get(http, org)) == practice
    at = f"/fhir/PractitionerRole?location=Location/loc-{world['place']['Welby']}"
    bundle = get(
        http, f"{at}&_include=PractitionerRole:practitioner&_include=PractitionerRole:location"
    )
    assert ids(bundle) == practice
    assert ids(bundle, "include") == [
        world["npi"]["Heart"],
        world["npi"]["Welby"],
        f"loc-{world['place']['Welby']}",  # shared by both, included once
    ]
    with_networks = get(http, f"{at}&_include=PractitionerRole:network")
    assert ids(with_networks, "include") == [f"network-{CORE}", f"network-{NARROW}"]
    assert bundle["total"] == 2  # included resources are not counted


def test_roles_near_a_point_nearest_first_with_their_distance(api):
    http, world, _ = api
    near = f"{BOSTON.lat}|{BOSTON.lon}|5|mi"
    bundle = get(http, f"/fhir/PractitionerRole?location.near={near}")
    # Welby and Heart share the practice's address: equally near, in the order added.
    order = ["Welby", "Heart", "Former", "Future", "Nurse", "Welch", "Outside"]
    assert ids(bundle) == role_ids(world, order) and bundle["total"] == 7  # not Worcester
    for entry, name in zip(bundle["entry"], order, strict=True):
        place = lookup_zip(PEOPLE[name][2])
        expected = distance_miles(BOSTON.lat, BOSTON.lon, place.lat, place.lon)
        (distance,) = entry["search"]["extension"]
        assert distance["url"] == DISTANCE
        assert distance["valueDistance"]["value"] == pytest.approx(expected, abs=0.001)
        assert distance["valueDistance"]["code"] == "[mi_i]"
    two = get(http, f"/fhir/PractitionerRole?location.near={near}&_count=2&_offset=1")
    assert ids(two) == role_ids(world, order[1:3]) and two["total"] == 7  # COUNT(*) OVER ()
    beyond = get(http, f"/fhir/PractitionerRole?location.near={near}&_offset=50")
    assert "entry" not in beyond and beyond["total"] == 7
    in_core = f"/fhir/PractitionerRole?location.near={near}&network=network-{CORE}"
    assert ids(get(http, in_core)) == role_ids(world, ["Welby", "Nurse", "Welch"])
    far = get(http, f"/fhir/PractitionerRole?location.near={BOSTON.lat}|{BOSTON.lon}|40|mi")
    assert ids(far)[-1] == role_ids(world, ["Casey"])[0] and far["total"] == 8


def test_near_pages_from_a_small_circle_are_the_pages_of_the_whole_circle(api, monkeypatch):
    """The page is looked for within 1/16, 1/8, 1/4, 1/2 of the distance, then all of it
    (directory_sql.nearest_first): every page must be the same slice of the one order."""
    http, world, _ = api
    from openhmo.api.fhir import directory_sql

    near = f"{BOSTON.lat}|{BOSTON.lon}|40|mi"  # Worcester's Casey only in the widest circle
    everyone = role_ids(world, ["Welby", "Heart", "Former", "Future", "Nurse", "Welch"])
    everyone += role_ids(world, ["Outside", "Casey"])
    for count in (1, 2, 3, 7, 8, 9):
        for offset in (0, 1, 5, 7, 8):
            bundle = get(
                http, f"/fhir/PractitionerRole?location.near={near}&_count={count}&_offset={offset}"
            )
            assert ids(bundle) == everyone[offset : offset + count], (count, offset)
            assert bundle["total"] == 8, (count, offset)
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 3)
    capped = get(http, f"/fhir/PractitionerRole?location.near={near}&_count=2")
    assert ids(capped) == everyone[:2] and "total" not in capped
    assert "next" in {link["relation"] for link in capped["link"]}
    accurate = get(http, f"/fhir/PractitionerRole?location.near={near}&_count=2&_total=accurate")
    assert ids(accurate) == everyone[:2] and accurate["total"] == 8
    # Past the cap only in the whole circle (the inner circles, under it, tell nothing):
    # seven of the eight are within a quarter of the distance.
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 7)
    assert "total" not in get(http, f"/fhir/PractitionerRole?location.near={near}&_count=2")
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 8)
    assert get(http, f"/fhir/PractitionerRole?location.near={near}&_count=2")["total"] == 8
    quarter = f"{BOSTON.lat}|{BOSTON.lon}|10|mi"
    assert get(http, f"/fhir/PractitionerRole?location.near={quarter}")["total"] == 7
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 3)
    whole = get(http, f"/fhir/PractitionerRole?location.near={near}&_count=20")
    assert ids(whole) == everyone and whole["total"] == 8  # the page shows it
    assert "total" not in get(http, f"/fhir/PractitionerRole?location.near={near}&_count=0")


def test_locations_near_a_point_in_miles_or_kilometres(api):
    http, world, _ = api
    miles = get(http, f"/fhir/Location?near={BOSTON.lat}|{BOSTON.lon}|2|mi")
    expected = [world["place"]["Welby"], world["hospital_place"], world["place"]["Former"]]
    expected += [world["place"]["Future"]]
    assert ids(miles) == [f"loc-{n}" for n in expected]
    distances = [e["search"]["extension"][0]["valueDistance"]["value"] for e in miles["entry"]]
    assert distances == sorted(distances) and distances[0] == 0.0
    km = get(http, f"/fhir/Location?near={BOSTON.lat}|{BOSTON.lon}|3.2187|km")
    assert ids(km) == ids(miles)
    assert ids(get(http, f"/fhir/Location?near={BOSTON.lat}|{BOSTON.lon}|0.5|mi")) == [
        f"loc-{world['place']['Welby']}",
        f"loc-{world['hospital_place']}",
    ]
    assert ids(get(http, "/fhir/Location?address-city=cambridge")) == [
        f"loc-{world['place']['Welch']}",
        f"loc-{world['place']['Future']}",
    ]
    assert ids(get(http, "/fhir/Location?name=beacon")) == [f"loc-{world['place']['Welby']}"]


def test_healthcare_services_are_what_in_network_providers_offer_where(api):
    http, world, _ = api
    everything = get(http, "/fhir/HealthcareService")
    place = world["place"]
    expected = sorted(
        [
            (place["Welby"], "207Q00000X"),
            (place["Heart"], "207RC0000X"),
            (place["Welch"], "207Q00000X"),
            (place["Nurse"], "363LF0000X"),
            (place["Casey"], "208000000X"),
            (world["hospital_place"], "282N00000X"),
        ]
    )
    assert ids(everything) == [f"hcs-{loc}-{code}" for loc, code in expected]
    family = get(http, f"/fhir/HealthcareService?specialty={NUCC}|207Q00000X")
    assert ids(family) == [
        f"hcs-{loc}-207Q00000X" for loc in sorted([place["Welby"], place["Welch"]])
    ]
    assert ids(get(http, "/fhir/HealthcareService?specialty=207Q00000X&new-patient=nopt")) == [
        f"hcs-{place['Welch']}-207Q00000X"
    ]
    assert ids(get(http, "/fhir/HealthcareService?category=hosp")) == [
        f"hcs-{world['hospital_place']}-282N00000X"
    ]
    at = get(http, f"/fhir/HealthcareService?organization=Organization/org-{world['beacon']}")
    assert ids(at) == [f"hcs-{place['Welby']}-207Q00000X", f"hcs-{place['Welby']}-207RC0000X"]


def test_healthcare_service_pages_and_totals_with_and_without_the_cap(api, monkeypatch):
    http, _, _ = api
    from openhmo.api.fhir import directory_sql

    every = ids(get(http, "/fhir/HealthcareService"))
    assert len(every) == 6
    for count, offset in [(2, 0), (2, 2), (4, 4), (1, 5)]:
        page = get(http, f"/fhir/HealthcareService?_count={count}&_offset={offset}")
        assert ids(page) == every[offset : offset + count] and page["total"] == 6
    # The cap is checked on the rows before grouping (a provider at a place): six here.
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 5)
    capped = get(http, "/fhir/HealthcareService?_count=2")
    assert ids(capped) == every[:2] and "total" not in capped
    assert "next" in {link["relation"] for link in capped["link"]}
    assert get(http, "/fhir/HealthcareService?_count=2&_total=accurate")["total"] == 6
    monkeypatch.setattr(directory_sql, "COUNT_CAP", 6)
    assert get(http, "/fhir/HealthcareService?_count=2")["total"] == 6
    accepting = get(http, "/fhir/HealthcareService?new-patient=nopt&_count=0&_total=accurate")
    assert accepting["total"] == 1  # the grouped count keeps the filter on the group


def test_organizations_payer_networks_then_practices(api):
    http, world, _ = api
    everything = get(http, "/fhir/Organization")
    assert ids(everything) == [
        "payer",
        f"network-{CORE}",
        f"network-{NARROW}",
        f"org-{world['beacon']}",
    ]
    assert ids(get(http, "/fhir/Organization?_count=2&_offset=1")) == [
        f"network-{CORE}",
        f"network-{NARROW}",
    ]
    assert ids(get(http, "/fhir/Organization?type=ntwk")) == [
        f"network-{CORE}",
        f"network-{NARROW}",
    ]
    assert ids(get(http, "/fhir/Organization?partof=Organization/payer")) == [
        f"network-{CORE}",
        f"network-{NARROW}",
    ]
    assert ids(get(http, "/fhir/Organization?name=beacon")) == [f"org-{world['beacon']}"]
    assert ids(get(http, "/fhir/Organization?type=prvgrp")) == [f"org-{world['beacon']}"]
    assert ids(get(http, "/fhir/Organization?name=openhmo narrow")) == [f"network-{NARROW}"]


def test_insurance_plans_by_type_network_and_name(api):
    http, _, _ = api
    assert ids(get(http, "/fhir/InsurancePlan?type=commhmo")) == ["openhmo-silver-hmo"]
    in_core = get(http, f"/fhir/InsurancePlan?network=Organization/network-{CORE}")
    assert ids(in_core) == [
        "openhmo-gold-pos",
        "openhmo-gold-ppo",
        "openhmo-silver-epo",
        "openhmo-silver-hmo",
    ]
    assert ids(get(http, "/fhir/InsurancePlan?name=openhmo silver")) == [
        "openhmo-silver-epo",
        "openhmo-silver-hmo",
    ]
    assert get(http, "/fhir/InsurancePlan?owned-by=Organization/payer")["total"] == 5


# --- errors, tokens, capabilities -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "where", "code"),
    [
        ("/fhir/PractitionerRole?speciality=207Q00000X", "speciality", "not-supported"),
        ("/fhir/Practitioner?_count=ten", "_count", "invalid"),
        ("/fhir/Practitioner?_count=-1", "_count", "invalid"),
        ("/fhir/Practitioner?_offset=1.5", "_offset", "invalid"),
        ("/fhir/Practitioner?_total=some", "_total", "invalid"),
        ("/fhir/Location?near=42.3,abc", "near", "invalid"),
        ("/fhir/Location?near=42.3|-71|5|furlongs", "near", "invalid"),
        ("/fhir/Location?near=95|-71|5|mi", "near", "invalid"),
        ("/fhir/PractitionerRole?location.near=42.3|-71|-5|mi", "location.near", "invalid"),
        ("/fhir/PractitionerRole?specialty:text=cardio", "specialty:text", "not-supported"),
        ("/fhir/PractitionerRole?_include=PractitionerRole:endpoint", "_include", "not-supported"),
        ("/fhir/Practitioner?_include=PractitionerRole:practitioner", "_include", "not-supported"),
    ],
)
def test_bad_searches_are_400_operation_outcomes_naming_the_parameter(api, path, where, code):
    http, _, _ = api
    outcome = get(http, path, 400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert outcome["issue"][0]["expression"] == [where]


def test_lenient_handling_ignores_unknown_parameters_and_says_so_in_the_links(api):
    http, world, _ = api
    bundle = get(
        http,
        "/fhir/Practitioner?name=casey&color=blue",
        headers={"Prefer": "handling=lenient"},
    )
    assert ids(bundle) == [world["npi"]["Casey"]]
    assert "color" not in bundle["link"][0]["url"]


def test_a_token_is_not_needed_but_a_good_one_is_welcome_and_a_bad_one_refused(api):
    _, _, base = api
    headers = {"Authorization": f"Bearer {token(base, 'staff')}"}
    answer = httpx.get(f"{base}/fhir/Practitioner?name=welby", headers=headers)
    assert answer.status_code == 200 and answer.json()["total"] == 1
    refused = httpx.get(f"{base}/fhir/Practitioner", headers={"Authorization": "Bearer forged"})
    assert refused.status_code == 401


def test_the_capability_statement_lists_the_directory_and_its_searches(api):
    http, _, _ = api
    statement = http.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for kind in (
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Organization",
        "InsurancePlan",
    ):
        assert [i["code"] for i in resources[kind]["interaction"]] == ["read", "search-type"]
        assert resources[kind]["supportedProfile"][0].startswith(f"{PLANNET}/StructureDefinition/")
    role_params = {p["name"] for p in resources["PractitionerRole"]["searchParam"]}
    assert {"specialty", "network", "new-patient", "location", "location.near"} <= role_params
    assert "near" in {p["name"] for p in resources["Location"]["searchParam"]}


def test_places_and_services_say_when_they_last_changed(engine):
    """Plan-Net requires meta.lastUpdated: a place's is when its row changed; a service's
    the newest of its place and the roles of its specialty there."""
    import time
    from datetime import UTC, datetime

    from sqlalchemy import update

    from openhmo.network.models import Location, Provider
    from openhmo.network.service import ProviderInfo, save_provider

    with session_factory(engine)() as s:
        load_examples(s)
        ensure_network(s, CORE, "OpenHMO Core Network", actor=ACTOR)
        doctor = add_provider(
            s,
            npi=valid_npi(990),
            first_name="Lena",
            last_name="Stamp",
            taxonomy_code="207RC0000X",
            locations=[LocationInfo(line1="9 Elm St", city="Boston", state="MA", zip_code="02108")],
            actor=ACTOR,
        )
        add_contract(s, CORE, provider=doctor, effective_from=date(2020, 1, 1), actor=ACTOR)
        s.commit()
        npi = doctor.npi
        place_id = s.scalars(
            select(ProviderLocation.location_id).where(ProviderLocation.provider_id == doctor.id)
        ).one()
    service_path = f"/fhir/HealthcareService/hcs-{place_id}-207RC0000X"

    def stamp(when: str) -> datetime:
        return datetime.fromisoformat(when.replace("Z", "+00:00"))

    # The place as if written years ago (the stamps are to the second).
    old = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    with session_factory(engine)() as s:
        s.execute(update(Location).where(Location.id == place_id).values(updated_at=old))
        s.commit()
    with serve(engine) as base, httpx.Client(base_url=base) as http:
        place = get(http, f"/fhir/Location/loc-{place_id}")
        assert place["meta"]["lastUpdated"] == "2020-01-02T03:04:05Z"
        service = get(http, service_path)
        placed, offered = stamp(place["meta"]["lastUpdated"]), stamp(service["meta"]["lastUpdated"])
        assert offered > placed  # the doctor's role is newer than the place
        searched = get(http, "/fhir/Location", params={"address-postalcode": "02108"})
        assert all("lastUpdated" in e["resource"]["meta"] for e in searched["entry"])
        # The place changes (an importer's new phone number): the place and its service.
        with session_factory(engine)() as s:
            s.get(Location, place_id).phone = "6175550199"
            s.commit()
        place2 = get(http, f"/fhir/Location/loc-{place_id}")
        assert place2["telecom"][0]["value"] == "6175550199"
        assert stamp(place2["meta"]["lastUpdated"]) > placed
        service2 = get(http, service_path)
        assert stamp(service2["meta"]["lastUpdated"]) >= stamp(place2["meta"]["lastUpdated"])
        # The doctor changes (no more new patients), a second later: the service moves,
        # the place does not.
        time.sleep(1.1)
        with session_factory(engine)() as s:
            saved = save_provider(
                s, ProviderInfo(npi=npi, accepting_new_patients=False), actor=ACTOR
            )
            assert saved.changes
            s.commit()
            assert not s.scalar(select(Provider.accepting_new_patients).where(Provider.npi == npi))
        service3 = get(http, service_path)
        assert stamp(service3["meta"]["lastUpdated"]) > stamp(service2["meta"]["lastUpdated"])
        assert get(http, f"/fhir/Location/loc-{place_id}")["meta"] == place2["meta"]


def test_revinclude_brings_the_roles_that_point_at_a_page(api, monkeypatch):
    http, world, _ = api
    from openhmo.api.fhir import directory

    role = {name: f"role-{i}" for name, i in world["id"].items()}
    welby = get(http, "/fhir/Practitioner?family=Welby&_revinclude=PractitionerRole:practitioner")
    assert ids(welby) == [world["npi"]["Welby"]]
    assert ids(welby, "include") == [role["Welby"]]
    assert welby["link"][0]["url"].count("_revinclude=PractitionerRole%3Apractitioner") == 1
    # The practice's place and the practice: Welby and Heart work there.
    place = world["place"]["Welby"]
    at = get(http, f"/fhir/Location?_id=loc-{place}&_revinclude=PractitionerRole:location")
    assert ids(at) == [f"loc-{place}"]
    assert sorted(ids(at, "include")) == sorted([role["Welby"], role["Heart"]])
    beacon = get(
        http,
        f"/fhir/Organization?_id=org-{world['beacon']}&_revinclude=PractitionerRole:organization",
    )
    assert sorted(ids(beacon, "include")) == sorted([role["Welby"], role["Heart"]])
    networks = get(http, "/fhir/Organization?type=ntwk&_revinclude=PractitionerRole:organization")
    assert ids(networks, "include") == []  # a network is no role's organization
    # Past the cap the roles stop, and the Bundle says so.
    monkeypatch.setattr(directory, "REVINCLUDE_CAP", 1)
    capped = get(http, f"/fhir/Location?_id=loc-{place}&_revinclude=PractitionerRole:location")
    assert len(ids(capped, "include")) == 1
    (outcome,) = [e["resource"] for e in capped["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["issue"][0]["severity"] == "warning"
    assert "stopped at 1 PractitionerRoles" in outcome["issue"][0]["diagnostics"]
    refused = get(http, "/fhir/Practitioner?_revinclude=PractitionerRole:location", 400)
    assert refused["issue"][0]["expression"] == ["_revinclude"]
    statement = get(http, "/fhir/metadata")
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert kinds["Location"]["searchRevInclude"] == ["PractitionerRole:location"]
    assert "PractitionerRole:practitioner" in kinds["PractitionerRole"]["searchInclude"]
