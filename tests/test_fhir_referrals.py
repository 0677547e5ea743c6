"""ServiceRequest (referrals) over real HTTP: a PCP refers, the rules decide, a claim uses it.

Every resource answered is validated with fhir.resources' R4B models and with HL7's R4
schema (tests/fhir_validate.py), and checked against the referral rows in the database.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from api_support import client, seed_world, serve
from fhir_validate import assert_valid_fhir
from openhmo.db import session_factory
from openhmo.history.models import PhiAccess
from openhmo.interop.fhir.common import MEMBER_SYSTEM, NPI_SYSTEM, NUCC_SYSTEM, fhir_json
from openhmo.interop.fhir.service_request import REFERRAL_STATUS, VISITS_USED
from openhmo.referrals.models import Referral

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
FHIR_JSON = {"content-type": "application/fhir+json"}
EXAMPLES = [
    "servicerequest-example.json",
    "servicerequest-example2.json",
    "servicerequest-example3.json",
    "servicerequest-example4.json",
    "servicerequest-example-ob.json",
    "servicerequest-example-pt.json",
    "servicerequest-example-subrequest.json",
]


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
    with serve(module_engine) as base:
        clients = Clients(base)
        yield clients, world, session_factory(module_engine)
        for http in clients.values():
            http.close()


def valid(resource: dict) -> dict:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert_valid_fhir(resource)
    return resource


def body_of(response) -> dict:
    return valid(json.loads(response.content, parse_float=Decimal))


def referral(
    member, requester, performer=None, *, visits=2, reason="I10", start="2026-07-01", **more
):
    resource = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"identifier": {"system": MEMBER_SYSTEM, "value": member}},
        "requester": {"identifier": {"system": NPI_SYSTEM, "value": requester}},
        "reasonCode": [{"coding": [{"system": ICD10, "code": reason}]}],
        "quantityQuantity": {"value": visits},
        "occurrencePeriod": {"start": start},
    }
    if performer:
        resource["performer"] = [{"reference": f"Practitioner/{performer}"}]
    resource.update(more)
    return resource


def post(http, resource, **headers):
    return http.post(
        "/fhir/ServiceRequest", content=fhir_json(resource), headers={**FHIR_JSON, **headers}
    )


def extension(resource: dict, url: str):
    return next(e for e in resource["extension"] if e["url"] == url)


def referral_count(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Referral))


def test_a_pcp_refers_and_a_claim_uses_the_referral(api):
    clients, w, sessions = api
    response = post(clients["welby"], referral(w.sam, w.welby_npi, w.heart_npi))
    assert response.status_code == 201, response.text
    made = body_of(response)
    number = made["id"]
    assert response.headers["location"].endswith(f"/fhir/ServiceRequest/{number}")
    assert made["status"] == "active"
    assert extension(made, REFERRAL_STATUS)["valueCode"] == "approved"
    assert made["note"][0]["text"].startswith("auto-approved")
    assert made["performer"][0]["identifier"]["value"] == w.heart_npi
    assert made["quantityQuantity"]["value"] == 2
    with sessions() as s:
        row = s.scalar(select(Referral).where(Referral.referral_number == number))
        assert (row.status, row.visits, row.diagnosis_codes) == ("approved", 2, ["I10"])
        audited = s.scalar(
            select(func.count()).select_from(PhiAccess).where(PhiAccess.resource_id == number)
        )
    assert audited == 1
    claim = {
        "resourceType": "Claim",
        "identifier": [{"system": "https://heart.example/claims", "value": "sam-1"}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": f"Patient/{w.sam}"},
        "created": "2026-07-06",
        "provider": {"reference": f"Practitioner/{w.heart_npi}"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Silver HMO"}}],
        "referral": {"reference": f"ServiceRequest/{number}"},
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "I10"}]},
            }
        ],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": CPT, "code": "99213"}]},
                "servicedDate": "2026-07-05",
                "net": {"value": Decimal("150.00"), "currency": "USD"},
            }
        ],
    }
    paid = clients["heart"].post("/fhir/Claim/$submit", content=fhir_json(claim), headers=FHIR_JSON)
    decision = body_of(paid)
    assert decision["outcome"] == "complete"
    assert decision["payment"]["amount"]["value"] == Decimal("50.00")  # $100 allowed, $50 copay
    after = body_of(clients["welby"].get(f"/fhir/ServiceRequest/{number}"))
    assert extension(after, VISITS_USED)["valueUnsignedInt"] == 1
    assert after["status"] == "active"


def test_a_referral_the_rules_leave_for_staff_is_a_draft(api):
    clients, w, _ = api
    resource = referral(
        w.lee,
        w.casey_npi,
        performerType={"coding": [{"system": NUCC_SYSTEM, "code": "207X00000X"}]},
    )
    response = post(clients["staff"], resource)  # staff name the referring PCP
    assert response.status_code == 201, response.text
    made = body_of(response)
    assert made["status"] == "draft"
    assert extension(made, REFERRAL_STATUS)["valueCode"] == "requested"
    assert "reviewed by staff" in made["note"][0]["text"]
    assert made["performerType"]["coding"][0]["code"] == "207X00000X"
    assert made["requester"]["identifier"]["value"] == w.casey_npi


REFUSED = [
    # (who asks, body changes, element named, words of the reason)
    ("casey", {"member": "lee", "requester": "casey_npi", "performer": "outside_npi"},
     "ServiceRequest.performer[0]", "not in the network"),
    ("welby", {"reasonCode": None}, "ServiceRequest.reasonCode", "diagnosis"),
    ("welby", {"reason": "XYZ"}, "ServiceRequest.reasonCode", "ICD-10-CM"),
    ("welby", {"visits": 0}, "ServiceRequest.quantityQuantity", "at least one visit"),
    ("welby", {"occurrencePeriod": {"start": "2026-07-01", "end": "2026-06-01"}},
     "ServiceRequest.occurrencePeriod", "before"),
    ("heart", {"requester": "heart_npi"}, "ServiceRequest.requester", "primary care"),
    ("welby", {"member": "lee"}, "ServiceRequest.subject", "no member"),
    ("welby", {"member": "OHM999999999-00"}, "ServiceRequest.subject", "no member"),
    ("welby", {"performer": "1234567893"}, "ServiceRequest.performer[0]", "no provider"),
]  # fmt: skip


@pytest.mark.parametrize(("caller", "change", "where", "words"), REFUSED)
def test_refused_referrals_are_422_with_the_reason(api, caller, change, where, words):
    clients, w, sessions = api
    change = dict(change)  # the parameters are shared by the SQLite and PostgreSQL runs
    member = change.pop("member", "ada")
    member = getattr(w, member, member)
    requester = getattr(w, change.pop("requester", "welby_npi"))
    performer = change.pop("performer", "heart_npi")
    performer = getattr(w, performer, performer)
    resource = referral(
        member,
        requester,
        performer,
        visits=change.pop("visits", 2),
        reason=change.pop("reason", "I10"),
    )
    for key, value in change.items():
        if value is None:
            del resource[key]
        else:
            resource[key] = value
    before = referral_count(sessions)
    response = post(clients[caller], resource)
    assert response.status_code == 422, response.text
    issue = body_of(response)["issue"][0]
    assert issue["expression"] == [where]
    assert words in issue["diagnostics"]
    assert referral_count(sessions) == before


def test_the_reason_speaks_the_callers_language(api):
    clients, w, _ = api
    resource = referral(w.ada, w.welby_npi, w.heart_npi, visits=0)
    response = post(clients["welby"], resource, **{"accept-language": "ja"})
    assert response.status_code == 422
    assert "紹介の対象は1回以上の受診" in body_of(response)["issue"][0]["diagnostics"]


def test_who_may_refer(api):
    clients, w, _ = api
    as_casey = post(clients["welby"], referral(w.ada, w.casey_npi, w.heart_npi))
    by_member = post(clients["ada"], referral(w.ada, w.welby_npi, w.heart_npi))
    assert as_casey.status_code == 403
    assert body_of(as_casey)["issue"][0]["expression"] == ["ServiceRequest.requester"]
    assert by_member.status_code == 403  # a member's token has no ServiceRequest.write


def test_bad_requests_are_400_naming_the_element(api):
    clients, w, _ = api
    http = clients["welby"]
    half = post(http, referral(w.ada, w.welby_npi, w.heart_npi, visits=Decimal("2.5")))
    no_visits = referral(w.ada, w.welby_npi, w.heart_npi)
    del no_visits["quantityQuantity"]
    no_intent = referral(w.ada, w.welby_npi, w.heart_npi)
    del no_intent["intent"]
    cases = [
        (half, "ServiceRequest.quantityQuantity.value"),
        (post(http, no_visits), "ServiceRequest.quantityQuantity"),
        (post(http, no_intent), "ServiceRequest.intent"),
    ]
    for response, where in cases:
        assert response.status_code == 400, response.text
        assert body_of(response)["issue"][0]["expression"] == [where]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_r4_core_examples_are_read_and_refused_as_not_our_members(api, corpus, name):
    """The spec's ServiceRequests are orders for Patient/example and others who are not our
    members (one names its patient only by display): each is read and answered 422 naming
    the subject, never 400 or 500, and nothing is stored."""
    clients, _, sessions = api
    example = corpus / "fhir" / "r4_core_examples" / "ServiceRequest" / name
    before = referral_count(sessions)
    response = clients["welby"].post(
        "/fhir/ServiceRequest", content=example.read_bytes(), headers=FHIR_JSON
    )
    assert response.status_code == 422, response.text
    assert body_of(response)["issue"][0]["expression"] == ["ServiceRequest.subject"]
    assert referral_count(sessions) == before


def test_referrals_are_read_by_whom_they_concern_and_audited(api):
    clients, w, sessions = api
    seen = {
        name: clients[name].get(f"/fhir/ServiceRequest/{w.referral}").status_code
        for name in ("ada", "sam", "lee", "welby", "heart", "casey", "staff", "clearinghouse")
    }
    assert seen == {
        "ada": 200,
        "sam": 404,
        "lee": 404,
        "welby": 200,  # referred her
        "heart": 200,  # referred to
        "casey": 404,
        "staff": 200,
        "clearinghouse": 200,
    }
    got = body_of(clients["heart"].get(f"/fhir/ServiceRequest/{w.referral}"))
    assert got["subject"]["reference"] == f"Patient/{w.ada}"
    assert got["requester"]["reference"] == f"Practitioner/{w.welby_npi}"
    with sessions() as s:
        expected = set(
            s.scalars(
                select(Referral.referral_number).where(
                    Referral.referring_provider_id.in_(
                        select(Referral.referring_provider_id).where(
                            Referral.referral_number == w.referral
                        )
                    )
                )
            )
        )
    search = body_of(
        clients["staff"].get(
            "/fhir/ServiceRequest", params={"requester": f"Practitioner/{w.welby_npi}"}
        )
    )
    assert {e["resource"]["id"] for e in search["entry"]} == expected
    mine = body_of(
        clients["ada"].get("/fhir/ServiceRequest", params={"patient": f"Patient/{w.ada}"})
    )
    assert [e["resource"]["id"] for e in mine["entry"]] == [w.referral]
    assert (
        body_of(clients["lee"].get("/fhir/ServiceRequest", params={"patient": w.ada}))["total"] == 0
    )
    by_status = body_of(
        clients["heart"].get(
            "/fhir/ServiceRequest", params={"performer": w.heart_npi, "status": "active"}
        )
    )
    assert w.referral in {e["resource"]["id"] for e in by_status["entry"]}
    with sessions() as s:
        audited = s.scalars(
            select(PhiAccess.action).where(
                PhiAccess.actor == "ada", PhiAccess.resource_type == "ServiceRequest"
            )
        ).all()
    assert sorted(audited) == ["read", "search"]
