"""CoverageEligibilityRequest/$submit over real HTTP: who is covered, for what, and who may ask.

The benefits are checked against the plan design (the Silver HMO's SBC) and the family's
accumulators in the database; every answer is validated with fhir.resources' R4B models
and with HL7's R4 schema (tests/fhir_validate.py).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from api_support import client, seed_world, serve
from fhir_validate import assert_valid_fhir
from openhmo.claims.models import FAMILY_HOLDER, Accumulator
from openhmo.db import session_factory
from openhmo.enrollment.models import Member, MemberCoverage
from openhmo.enrollment.service import enroll_subscriber, terminate_member
from openhmo.history.models import PhiAccess
from openhmo.interop.fhir.common import MEMBER_SYSTEM, fhir_json
from support import ACTOR, CAMBRIDGE, person

X12 = "https://x12.org/codes/service-type-codes"
FHIR_JSON = {"content-type": "application/fhir+json"}
URL = "/fhir/CoverageEligibilityRequest/$submit"


class Clients(dict):
    """One signed-in HTTP client per account, made when first asked for."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, username: str):
        self[username] = client(self.base, username)
        return self[username]


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    sessions = session_factory(module_engine)
    with sessions() as s:
        # Tess: covered from January, ended in March.
        enroll_subscriber(
            s,
            plan_key="openhmo-silver-hmo",
            subscriber=person("Tess", date(1990, 5, 5), last="Gone"),
            address=CAMBRIDGE,
            effective=date(2026, 1, 1),
            actor=ACTOR,
            dependents=[],
        )
        tess = s.scalar(select(Member).where(Member.first_name == "Tess"))
        terminate_member(
            s, member=tess, termination_date=date(2026, 3, 31), actor=ACTOR, reason="voluntary"
        )
        s.commit()
        world.accounts["tess"] = tess.member_number
    with serve(module_engine) as base:
        clients = Clients(base)
        yield clients, world, sessions
        for http in clients.values():
            http.close()


def valid(resource: dict) -> dict:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert_valid_fhir(resource)
    return resource


def answer(response) -> dict:
    assert response.status_code == 200, response.text
    return valid(json.loads(response.content, parse_float=Decimal))


def request(member=None, birth=None, *, day="2026-07-01", categories=(), purposes=None):
    resource = {
        "resourceType": "CoverageEligibilityRequest",
        "identifier": [{"system": "https://office.example/eligibility", "value": "e-1"}],
        "status": "active",
        "purpose": list(purposes or ("validation", "benefits")),
        "created": "2026-07-01",
        "insurer": {"display": "OpenHMO"},
    }
    if birth is not None:
        resource["contained"] = [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"system": MEMBER_SYSTEM, "value": member}],
                "birthDate": birth,
            }
        ]
        resource["patient"] = {"reference": "#patient"}
    else:
        resource["patient"] = {"identifier": {"system": MEMBER_SYSTEM, "value": member}}
    if day:
        resource["servicedDate"] = day
    if categories:
        resource["item"] = [
            {"category": {"coding": [{"system": X12, "code": c}]}} for c in categories
        ]
    return resource


def ask(http, resource, **headers):
    return http.post(URL, content=fhir_json(resource), headers={**FHIR_JSON, **headers})


def benefit_items(body: dict, code: str) -> list[dict]:
    return [
        item
        for item in body["insurance"][0].get("item", [])
        if any(b["type"]["coding"][0]["code"] == code for b in item.get("benefit", []))
    ]


def test_an_active_member_with_their_benefits_and_what_is_used(api):
    clients, w, sessions = api
    body = answer(ask(clients["welby"], request(w.ada, "1985-02-14", categories=["98"])))
    assert body["outcome"] == "complete"
    assert body["disposition"] == "Ada Okafor is covered by OpenHMO Silver HMO on 2026-07-01."
    with sessions() as s:
        ada = s.scalar(select(Member).where(Member.member_number == w.ada))
        span = s.scalar(select(MemberCoverage).where(MemberCoverage.member_id == ada.id))
        totals = {
            (a.holder, a.kind): a.amount_cents
            for a in s.scalars(
                select(Accumulator).where(
                    Accumulator.family_id == ada.subscriber_id, Accumulator.plan_year == 2026
                )
            )
        }
        audited = s.scalars(
            select(PhiAccess).where(PhiAccess.resource_id == body["id"], PhiAccess.actor == "welby")
        ).all()
    insurance = body["insurance"][0]
    assert insurance["coverage"]["reference"] == f"Coverage/{span.coverage_id}-{w.ada}"
    assert insurance["inforce"] is True
    assert insurance["benefitPeriod"] == {"start": "2026-01-01", "end": "2026-12-31"}
    [pcp] = [i for i in insurance["item"] if "provider" in i]
    assert pcp["provider"]["identifier"]["value"] == w.welby_npi
    # Out-of-pocket maximums: the plan year's, and what the family's copays have used.
    oop = {
        i["unit"]["coding"][0]["code"]: i["benefit"][0]
        for i in benefit_items(body, "out-of-pocket-maximum")
    }
    assert oop["individual"]["allowedMoney"]["value"] == Decimal("6000.00")
    assert oop["family"]["allowedMoney"]["value"] == Decimal("12000.00")
    assert oop["individual"]["usedMoney"]["value"] * 100 == totals[(ada.id, "out_of_pocket")] > 0
    assert oop["family"]["usedMoney"]["value"] * 100 == totals[(FAMILY_HOLDER, "out_of_pocket")]
    deductible = {
        i["unit"]["coding"][0]["code"]: i["benefit"][0] for i in benefit_items(body, "deductible")
    }
    assert deductible["individual"]["allowedMoney"]["value"] == Decimal("500.00")
    assert deductible["family"]["allowedMoney"]["value"] == Decimal("1000.00")
    # Only what was asked: office visits (98), the PCP's ($25) and a specialist's (3, $50,
    # on a referral), as a 271 answers service type 98.
    copays = {i["category"]["coding"][0]["code"]: i for i in benefit_items(body, "copay")}
    assert set(copays) == {"98", "3"}
    assert copays["98"]["benefit"][0]["allowedMoney"]["value"] == Decimal("25.00")
    assert copays["98"]["authorizationRequired"] is False
    assert copays["98"]["description"] == "$25.00 copay per visit"  # the plan's own words
    assert copays["3"]["benefit"][0]["allowedMoney"]["value"] == Decimal("50.00")
    assert copays["3"]["authorizationRequired"] is True
    assert [(a.resource_type, a.action) for a in audited] == [
        ("CoverageEligibilityResponse", "read")
    ]


def test_validation_alone_answers_the_coverage_without_benefits(api):
    clients, w, _ = api
    body = answer(ask(clients["welby"], request(w.ada, "1985-02-14", purposes=["validation"])))
    assert body["insurance"][0]["inforce"] is True
    assert "item" not in body["insurance"][0]
    assert body["purpose"] == ["validation"]


def test_no_category_asked_is_answered_with_every_one(api):
    clients, w, _ = api
    body = answer(ask(clients["staff"], request(w.lee)))
    categories = {i["category"]["coding"][0]["code"] for i in benefit_items(body, "copay")}
    assert {"98", "3", "86", "UC", "GF"} <= categories
    assert [i for i in body["insurance"][0]["item"] if i.get("excluded")] == []


@pytest.mark.parametrize(
    ("caller", "who", "birth", "code"),
    [
        ("welby", "OHM999999999-00", "1985-02-14", "not-found"),
        ("welby", "ada", "1985-02-15", "not-found"),  # a birth date that differs
        ("welby", "ada", None, "birth-date-needed"),  # a provider must know it
        ("clearinghouse", "ada", None, "birth-date-needed"),
        ("sam", "ada", None, "not-found"),  # an adult spouse may not ask about Ada
        ("lee", "ada", None, "not-found"),
    ],
)
def test_someone_we_cannot_match_is_not_found_whoever_they_are(api, caller, who, birth, code):
    clients, w, sessions = api
    number = getattr(w, who, who)
    body = answer(ask(clients[caller], request(number, birth)))
    assert body["outcome"] == "error"
    assert [e["code"]["coding"][0]["code"] for e in body["error"]] == [code]
    assert "insurance" not in body
    assert body["patient"] == {"identifier": {"system": MEMBER_SYSTEM, "value": number}}
    with sessions() as s:
        assert s.scalar(select(PhiAccess.id).where(PhiAccess.resource_id == body["id"])) is None


def test_an_unknown_member_and_a_wrong_birth_date_get_the_same_answer(api):
    clients, w, _ = api
    unknown = answer(ask(clients["welby"], request("OHM999999999-00", "1985-02-14")))
    wrong = answer(ask(clients["welby"], request(w.ada, "1985-02-15")))
    for body in (unknown, wrong):
        del body["id"], body["created"], body["patient"]
    assert unknown == wrong


def test_coverage_that_ended_or_has_not_begun_is_not_in_force(api):
    clients, w, _ = api
    tess = w.accounts["tess"]
    ended = answer(ask(clients["staff"], request(tess, day="2026-07-01")))
    assert ended["outcome"] == "complete"
    assert ended["insurance"][0]["inforce"] is False
    assert "item" not in ended["insurance"][0]
    assert ended["disposition"] == "Tess Gone is not covered on 2026-07-01."
    covered = answer(ask(clients["staff"], request(tess, day="2026-02-01")))
    assert covered["insurance"][0]["inforce"] is True
    before = answer(ask(clients["welby"], request(w.ada, "1985-02-14", day="2025-06-01")))
    assert before["insurance"][0]["inforce"] is False


def test_members_ask_about_themselves_and_their_minor_children(api):
    clients, w, _ = api
    http = clients["ada"]
    herself = answer(ask(http, request(w.ada)))
    child = answer(ask(http, request(w.kid)))
    assert herself["insurance"][0]["inforce"] is True
    assert child["patient"]["reference"] == f"Patient/{w.kid}"


def test_the_day_asked_defaults_to_today(api):
    clients, w, _ = api
    body = answer(ask(clients["ada"], request(w.ada, day=None)))
    assert body["servicedDate"] == date.today().isoformat()


def test_a_bundle_or_parameters_carries_the_patient(api):
    clients, w, _ = api
    resource = request(w.sam, purposes=["validation"])
    resource["patient"] = {"reference": "urn:uuid:sam"}
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": MEMBER_SYSTEM, "value": w.sam}],
        "birthDate": "1984-06-02",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:ask", "resource": resource},
            {"fullUrl": "urn:uuid:sam", "resource": patient},
        ],
    }
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": bundle}],
    }
    for body in (bundle, parameters):
        got = answer(ask(clients["clearinghouse"], body))
        assert got["outcome"] == "complete" and got["insurance"][0]["inforce"] is True


@pytest.mark.parametrize(
    ("caller", "code"), [("staff", "not-found"), ("clearinghouse", "birth-date-needed")]
)
@pytest.mark.parametrize(
    "name", ["coverageeligibilityrequest-example.json", "coverageeligibilityrequest-example-2.json"]
)
def test_the_r4_core_examples_are_read_and_answered_not_found(api, corpus, caller, code, name):
    """The spec's requests ask about Patient/pat1, who is not ours: staff get "not found"; a
    system, which must name the patient with a birth date, is told it is missing."""
    clients, _, _ = api
    example = corpus / "fhir" / "r4_core_examples" / "CoverageEligibilityRequest" / name
    response = clients[caller].post(URL, content=example.read_bytes(), headers=FHIR_JSON)
    body = answer(response)
    assert body["outcome"] == "error"
    assert body["error"][0]["code"]["coding"][0]["code"] == code
    assert body["patient"]["identifier"]["value"] == "PAT1"
    sent = json.loads(example.read_text())
    assert body["purpose"] == sent["purpose"]
    assert body["request"]["identifier"] == sent["identifier"][0]


def test_bad_requests_are_400_naming_the_element(api):
    clients, w, _ = api
    http = clients["welby"]
    month = http.post(
        URL, content=fhir_json(request(w.ada, "1985-02-14", day="2026-07")), headers=FHIR_JSON
    )
    no_purpose = request(w.ada, "1985-02-14")
    del no_purpose["purpose"]
    missing = ask(http, no_purpose)
    claim = ask(http, {"resourceType": "Claim"})
    assert month.status_code == 400
    assert json.loads(month.content)["issue"][0]["expression"] == [
        "CoverageEligibilityRequest.serviced"
    ]
    assert missing.status_code == 400
    assert valid(missing.json())["issue"][0]["expression"] == ["CoverageEligibilityRequest.purpose"]
    assert claim.status_code == 400


def test_the_answer_speaks_the_callers_language(api):
    clients, w, _ = api
    body = answer(
        ask(clients["ada"], request(w.ada, categories=["98"]), **{"accept-language": "sv"})
    )
    assert body["disposition"] == "Ada Okafor omfattas av OpenHMO Silver HMO den 2026-07-01."
    copays = {i["category"]["coding"][0]["code"]: i for i in benefit_items(body, "copay")}
    assert copays["98"]["description"] == "$25.00 i egenavgift per besök"


def test_who_may_ask(api):
    clients, w, _ = api
    with client(clients.base) as anonymous:
        refused = anonymous.post(URL, content=fhir_json(request(w.ada)), headers=FHIR_JSON)
    assert refused.status_code == 401
