"""Claim/$submit and ClaimResponse over real HTTP: real claims through the real engine.

Every answer is checked against the database (the LineDecision rows, to the cent) and
validated as FHIR R4 twice: with fhir.resources' R4B models and with HL7's R4 schema
(tests/fhir_validate.py).
"""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from api_support import client, seed_world, serve
from fhir_validate import assert_valid_fhir
from openhmo.adjudication.explain import explanation_text
from openhmo.claims.models import Claim, LineDecision
from openhmo.db import session_factory
from openhmo.history.models import PhiAccess
from openhmo.interop.fhir.common import (
    CLAIM_SYSTEM,
    MEMBER_SYSTEM,
    NPI_SYSTEM,
    REFERRAL_SYSTEM,
    fhir_json,
)

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
FHIR_JSON = {"content-type": "application/fhir+json"}


class Clients(dict):
    """One signed-in HTTP client per account, made when first asked for (a token costs an
    argon2 check)."""

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
    """The resource, once both validators accept it."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert_valid_fhir(resource)
    return resource


def answer(response) -> dict:
    return valid(json.loads(response.content, parse_float=Decimal))


def fhir_claim(member, billing, code="99213", charge="180.00", *, key, day="2026-07-06", **more):
    resource = {
        "resourceType": "Claim",
        "identifier": [{"system": "https://office.example/claims", "value": key}],
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
        "patient": {"identifier": {"system": MEMBER_SYSTEM, "value": member}},
        "created": "2026-07-07",
        "insurer": {"display": "OpenHMO"},
        "provider": {"identifier": {"system": NPI_SYSTEM, "value": billing}},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Silver HMO"}}],
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "I10"}]},
            }
        ],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": CPT, "code": code}]},
                "servicedDate": day,
                "locationCodeableConcept": {"coding": [{"system": POS, "code": "11"}]},
                "quantity": {"value": 1},
                "net": {"value": Decimal(charge), "currency": "USD"},
            }
        ],
    }
    resource.update(more)
    return resource


def submit(http, resource, **headers):
    return http.post(
        "/fhir/Claim/$submit", content=fhir_json(resource), headers={**FHIR_JSON, **headers}
    )


def amounts(item: dict) -> dict[str, Decimal]:
    return {a["category"]["coding"][0]["code"]: a["amount"]["value"] for a in item["adjudication"]}


def reasons(item: dict) -> dict[str, str]:
    return {
        a["category"]["coding"][0]["code"]: a["reason"]["text"]
        for a in item["adjudication"]
        if "reason" in a
    }


def stored(sessions, claim_id: str) -> tuple[Claim, list[LineDecision]]:
    with sessions() as s:
        claim = s.scalar(select(Claim).where(Claim.claim_id == claim_id))
        decisions = s.scalars(
            select(LineDecision)
            .where(LineDecision.claim_id == claim.id, LineDecision.superseded_at.is_(None))
            .order_by(LineDecision.line_number)
        ).all()
        s.expunge_all()
        return claim, list(decisions)


def claim_count(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Claim))


def test_a_pcp_visit_is_paid_with_the_plans_copay_to_the_cent(api):
    clients, w, sessions = api
    http = clients["welby"]
    response = submit(http, fhir_claim(w.ada, w.welby_npi, key="pcp-1"))
    assert response.status_code == 200
    body = answer(response)
    assert body["resourceType"] == "ClaimResponse"
    assert body["outcome"] == "complete"
    assert body["patient"]["reference"] == f"Patient/{w.ada}"
    claim, decisions = stored(sessions, body["id"])
    assert claim.source == "fhir" and claim.submitter == "welby"
    assert claim.patient_control_number == "pcp-1"
    [decision] = decisions
    got = amounts(body["item"][0])
    # The Silver HMO: a PCP visit is a $25 copay; the fee schedule allows $100.00.
    assert got["copay"] == Decimal("25.00") == Decimal(decision.copay_cents) / 100
    assert got["eligible"] == Decimal("100.00") == Decimal(decision.allowed_cents) / 100
    assert got["benefit"] == Decimal("75.00") == Decimal(decision.plan_paid_cents) / 100
    assert got["memberliability"] == Decimal(decision.member_share_cents) / 100
    assert got["submitted"] == Decimal("180.00") == Decimal(decision.charge_cents) / 100
    assert got["discount"] == Decimal("80.00")  # CO-45, the write-off above the allowed
    assert reasons(body["item"][0])["copay"] == "PR-3"
    assert body["payment"]["amount"]["value"] == Decimal("75.00")
    assert body["processNote"][0]["text"] == explanation_text(
        decision.explanation_id, decision.explanation_params, "en"
    )
    assert "$75.00" in body["disposition"]
    # The amounts are written digit for digit, never as floats.
    assert b'"value":75.00' in response.content
    with sessions() as s:
        audited = s.scalars(
            select(PhiAccess).where(PhiAccess.resource_id == body["id"], PhiAccess.actor == "welby")
        ).all()
    assert [(a.resource_type, a.action) for a in audited] == [("ClaimResponse", "read")]


def test_a_resubmission_answers_the_same_claim_response_and_stores_nothing(api):
    clients, w, sessions = api
    resource = fhir_claim(w.kid, w.welby_npi, key="retry-1", day="2026-07-08")
    http = clients["welby"]
    first = submit(http, resource)
    before = claim_count(sessions)
    again = submit(http, resource)
    assert claim_count(sessions) == before
    assert again.status_code == 200 and again.content == first.content
    changed = copy.deepcopy(resource)
    changed["item"][0]["net"]["value"] = Decimal("190.00")
    conflict = submit(http, changed)
    assert conflict.status_code == 409
    outcome = answer(conflict)
    assert outcome["issue"][0]["expression"] == ["Claim.identifier[0].value"]


def test_a_referred_cardiology_visit_is_paid_with_the_specialist_copay(api):
    clients, w, sessions = api
    resource = fhir_claim(
        w.ada,
        w.heart_npi,
        charge="150.00",
        key="heart-1",
        day="2026-07-10",
        referral={"reference": f"ServiceRequest/{w.referral}"},
    )
    http = clients["heart"]
    body = answer(submit(http, resource))
    assert body["outcome"] == "complete"
    claim, [decision] = stored(sessions, body["id"])
    assert claim.referral_number == w.referral
    assert decision.status == "paid" and decision.referral_number == w.referral
    got = amounts(body["item"][0])
    assert got["copay"] == Decimal("50.00") == Decimal(decision.copay_cents) / 100
    assert got["benefit"] == Decimal(decision.plan_paid_cents) / 100 == Decimal("50.00")


def test_an_unreferred_specialist_visit_is_denied_with_its_carc(api):
    clients, w, sessions = api
    http = clients["heart"]
    body = answer(submit(http, fhir_claim(w.lee, w.heart_npi, key="heart-lee", day="2026-07-10")))
    assert body["outcome"] == "complete"
    _, [decision] = stored(sessions, body["id"])
    assert decision.status == "denied"
    assert reasons(body["item"][0]) == {"benefit": "CO-288 N54", "noncovered": "CO-288 N54"}
    assert amounts(body["item"][0])["benefit"] == Decimal("0.00")
    assert "referral" in body["processNote"][0]["text"]


def test_an_out_of_network_visit_is_denied(api):
    clients, w, _ = api
    http = clients["clearinghouse"]  # a system submits for any provider
    body = answer(submit(http, fhir_claim(w.sam, w.outside_npi, key="out-1", day="2026-07-10")))
    assert body["outcome"] == "complete"
    assert reasons(body["item"][0])["benefit"] == "CO-242"
    assert body["payment"]["amount"]["value"] == Decimal("0.00")


def test_a_member_we_do_not_have_is_stored_and_denied_as_the_837_intake_does(api):
    clients, w, sessions = api
    http = clients["clearinghouse"]
    body = answer(submit(http, fhir_claim("OHM999999999-00", w.welby_npi, key="nobody")))
    assert body["outcome"] == "complete"
    assert reasons(body["item"][0])["benefit"] == "CO-31"
    assert "reference" not in body["patient"]  # no Patient to point to
    claim, _ = stored(sessions, body["id"])
    assert claim.member_id is None


def test_pended_lines_make_the_outcome_partial_or_queued(api):
    clients, w, _ = api
    both = fhir_claim(w.ada, w.welby_npi, key="mixed-1", day="2026-07-14")
    unpriced = copy.deepcopy(both["item"][0])
    unpriced.update(sequence=2, productOrService={"coding": [{"system": CPT, "code": "99215"}]})
    both["item"].append(unpriced)
    http = clients["welby"]
    partial = answer(submit(http, both))
    queued = answer(submit(http, fhir_claim(w.ada, w.welby_npi, "99215", key="q-1")))
    assert partial["outcome"] == "partial"
    assert partial["payment"]["type"]["coding"][0]["code"] == "partial"
    assert set(amounts(partial["item"][1])) == {"submitted"}  # pended: nothing decided yet
    assert queued["outcome"] == "queued" and "payment" not in queued
    assert "reviewing" in queued["processNote"][0]["text"]


def test_a_bundle_with_the_patient_and_practitioner_it_references_is_read(api):
    clients, w, _ = api
    resource = fhir_claim(w.sam, w.welby_npi, "99214", "240.00", key="bundle-1", day="2026-07-15")
    resource["patient"] = {"reference": "urn:uuid:patient-1"}
    resource["provider"] = {"reference": "urn:uuid:doctor-1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:claim-1", "resource": resource},
            {
                "fullUrl": "urn:uuid:patient-1",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": MEMBER_SYSTEM, "value": w.sam}],
                },
            },
            {
                "fullUrl": "urn:uuid:doctor-1",
                "resource": {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": NPI_SYSTEM, "value": w.welby_npi}],
                },
            },
        ],
    }
    http = clients["welby"]
    body = answer(submit(http, bundle))
    assert body["outcome"] == "complete"
    assert body["patient"]["reference"] == f"Patient/{w.sam}"
    assert amounts(body["item"][0])["eligible"] == Decimal("150.00")


def _without(path: str):
    def change(resource):
        del resource["item"][0][path]

    return change


def _set(*where, value):
    def change(resource):
        node = resource
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value

    return change


BAD = [
    ("no productOrService", _without("productOrService"), 400, "Claim.item[0].productOrService"),
    (
        "not a CPT code",
        _set("item", 0, "productOrService", value={"coding": [{"system": CPT, "code": "ABC"}]}),
        400,
        "Claim.item[0].productOrService",
    ),
    (
        "a fraction of a cent",
        _set("item", 0, "net", value={"value": Decimal("10.005"), "currency": "USD"}),
        400,
        "Claim.item[0].net",
    ),
    (
        "euros",
        _set("item", 0, "net", value={"value": Decimal("10.00"), "currency": "EUR"}),
        400,
        "Claim.item[0].net.currency",
    ),
    ("no units", _set("item", 0, "quantity", value={"value": 0}), 400, "Claim.item[0].quantity"),
    (
        "a nine-digit NPI",
        _set("provider", value={"identifier": {"system": NPI_SYSTEM, "value": "123456789"}}),
        400,
        "Claim.provider.identifier.value",
    ),
    (
        "not an ICD-10-CM code",
        _set(
            "diagnosis",
            0,
            "diagnosisCodeableConcept",
            value={"coding": [{"system": ICD10, "code": "XYZ"}]},
        ),
        400,
        "Claim.diagnosis[0]",
    ),
    (
        "a total that is not the sum",
        _set("total", value={"value": Decimal("1.00"), "currency": "USD"}),
        400,
        "Claim.total",
    ),
    ("a draft", _set("status", value="draft"), 400, "Claim.status"),
    ("a date that is not one", _set("created", value="yesterday"), 400, "Claim.created"),
    ("a pre-authorization", _set("use", value="preauthorization"), 422, "Claim.use"),
    (
        "a void naming nothing",
        _set("status", value="cancelled"),
        400,
        "Claim.related",
    ),
    (
        "a replacement of a claim that is not there",
        _set(
            "related",
            value=[
                {
                    "claim": {"reference": "Claim/C999999999"},
                    "relationship": {"coding": [{"code": "prior"}]},
                }
            ],
        ),
        422,
        "Claim.related[0].claim",
    ),
]


@pytest.mark.parametrize(("why", "change", "status", "where"), BAD, ids=[b[0] for b in BAD])
def test_bad_claims_are_refused_naming_the_element(api, why, change, status, where):
    clients, w, sessions = api
    resource = fhir_claim(w.ada, w.welby_npi, key=f"bad-{why}")
    change(resource)
    before = claim_count(sessions)
    http = clients["welby"]
    response = submit(http, resource)
    assert response.status_code == status, response.text
    outcome = answer(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert where in outcome["issue"][0]["expression"]
    assert claim_count(sessions) == before


def test_what_is_not_a_claim_is_a_400(api):
    clients, w, _ = api
    http = clients["welby"]
    not_json = http.post("/fhir/Claim/$submit", content=b"{claim", headers=FHIR_JSON)
    patient = submit(http, {"resourceType": "Patient"})
    as_form = http.post(
        "/fhir/Claim/$submit", content=b"a=1", headers={"content-type": "text/plain"}
    )
    nul = submit(http, fhir_claim(w.ada, w.welby_npi, key="nul\u0000"))
    assert not_json.status_code == 400 and answer(not_json)["issue"][0]["code"] == "invalid"
    assert patient.status_code == 400
    assert answer(patient)["issue"][0]["expression"] == ["Claim.resourceType"]
    assert as_form.status_code == 415
    assert nul.status_code == 400


EXPECTED = {
    # example file -> the elements its ClaimResponse's errors name (outcome `error`)
    "claim-example.json": [
        "Claim.type",
        "Claim.provider",
        "Claim.diagnosis",
        "Claim.item[0].productOrService",
    ],
    "claim-example-professional.json": [
        "Claim.provider",
        "Claim.diagnosis",
        "Claim.item[0].productOrService",
    ],
    "claim-example-institutional.json": [
        "Claim.provider",
        "Claim.diagnosis",
        "Claim.item[0].productOrService",
    ],
    "claim-example-institutional-rich.json": [
        "Claim.provider",
        "Claim.diagnosis",
        "Claim.item[0].productOrService",
    ],
    "claim-example-cms1500-medical.json": ["Claim.patient", "Claim.provider"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_r4_core_examples_are_read_and_answered_with_an_error_outcome(api, corpus, name):
    """The spec's own Claims name a Patient/1 and an Organization/1 that are not ours, no
    NPI, and codes in example code systems: each is read and mapped, and answered with a
    ClaimResponse whose outcome is `error` and whose errors name what is missing; nothing
    is stored (as a 277CA rejects an 837 claim)."""
    clients, _, sessions = api
    example = corpus / "fhir" / "r4_core_examples" / "Claim" / name
    before = claim_count(sessions)
    http = clients["clearinghouse"]
    response = http.post("/fhir/Claim/$submit", content=example.read_bytes(), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    body = answer(response)
    assert body["resourceType"] == "ClaimResponse" and body["outcome"] == "error"
    named = [e["code"]["text"].split(":")[0] for e in body["error"]]
    assert named == EXPECTED[name]
    assert all(e["code"]["coding"][0]["code"] == "16" for e in body["error"])
    assert claim_count(sessions) == before
    sent = json.loads(example.read_text())
    assert body["request"]["identifier"] == sent["identifier"][0]


def test_who_may_submit(api):
    clients, w, _ = api
    http = clients["ada"]
    member = submit(http, fhir_claim(w.ada, w.welby_npi, key="by-ada"))
    http = clients["welby"]
    other = submit(http, fhir_claim(w.ada, w.heart_npi, key="as-heart"))
    assert member.status_code == 403  # a member's token has no Claim.write
    assert other.status_code == 403
    assert answer(other)["issue"][0]["expression"] == ["Claim.provider"]


def test_claim_responses_are_read_by_whom_they_concern_and_audited(api):
    clients, w, sessions = api
    ada_claim = w.claims[w.ada][0]  # billed by Welby
    seen = {}
    for name in ("ada", "sam", "lee", "welby", "heart", "casey", "staff", "clearinghouse"):
        http = clients[name]
        seen[name] = http.get(f"/fhir/ClaimResponse/{ada_claim}").status_code
    assert seen == {
        "ada": 200,
        "sam": 404,  # an adult spouse's claims are her own
        "lee": 404,
        "welby": 200,  # billed it
        "heart": 404,  # treats Ada, but did not bill this claim
        "casey": 404,
        "staff": 200,
        "clearinghouse": 200,
    }
    http = clients["ada"]
    got = answer(http.get(f"/fhir/ClaimResponse/{ada_claim}"))
    kid = answer(http.get("/fhir/ClaimResponse", params={"patient": f"Patient/{w.kid}"}))
    assert got["id"] == ada_claim and got["outcome"] == "complete"
    assert kid["total"] >= 1  # a minor child's claims are their parent's to see
    http = clients["welby"]
    search = answer(http.get("/fhir/ClaimResponse", params={"patient": w.ada, "_count": 50}))
    with sessions() as s:
        billed = s.scalars(
            select(Claim.claim_id).where(
                Claim.member_number == w.ada, Claim.billing_npi == w.welby_npi
            )
        ).all()
        audited = s.scalar(
            select(func.count())
            .select_from(PhiAccess)
            .where(PhiAccess.actor == "welby", PhiAccess.action == "search")
        )
    assert sorted(e["resource"]["id"] for e in search["entry"]) == sorted(billed)
    assert audited == len(billed)


def test_the_explanations_speak_the_callers_language(api):
    clients, w, sessions = api
    http = clients["welby"]
    response = submit(
        http,
        fhir_claim(w.kid, w.welby_npi, key="ja-1", day="2026-07-20"),
        **{"accept-language": "ja, en;q=0.5"},
    )
    body = answer(response)
    _, [decision] = stored(sessions, body["id"])
    assert body["processNote"][0]["text"] == explanation_text(
        decision.explanation_id, decision.explanation_params, "ja"
    )
    assert body["processNote"][0]["language"]["coding"][0]["code"] == "ja"
    assert body["disposition"].startswith("請求")


def test_a_claim_naming_the_referral_by_identifier_is_read(api):
    clients, w, sessions = api
    resource = fhir_claim(
        w.ada,
        w.heart_npi,
        charge="150.00",
        key="heart-2",
        day="2026-07-21",
        referral={"identifier": {"system": REFERRAL_SYSTEM, "value": w.referral}},
    )
    http = clients["heart"]
    body = answer(submit(http, resource))
    claim, [decision] = stored(sessions, body["id"])
    assert claim.referral_number == w.referral and decision.status == "paid"


def test_text_postgresql_cannot_compare_is_a_400_not_a_500(api):
    clients, _, _ = api
    http = clients["staff"]
    assert http.get("/fhir/ClaimResponse", params={"patient": "a\x00b"}).status_code == 400
    assert http.get("/fhir/ClaimResponse/C%00").status_code == 400


def test_the_capability_statement_lists_what_is_served_here(api):
    clients, _, _ = api
    statement = clients["staff"].get("/fhir/metadata").json()
    served = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert served["Claim"]["operation"] == [
        {"name": "submit", "definition": "http://hl7.org/fhir/OperationDefinition/Claim-submit"}
    ]
    assert "interaction" not in served["Claim"]  # only $submit: FHIR JSON has no empty arrays
    assert [i["code"] for i in served["ClaimResponse"]["interaction"]] == ["read", "search-type"]
    assert served["CoverageEligibilityRequest"]["operation"][0]["name"] == "submit"
    assert [i["code"] for i in served["ServiceRequest"]["interaction"]] == [
        "create",
        "read",
        "search-type",
    ]


def test_a_cancelled_claim_naming_an_earlier_one_voids_it(api):
    clients, w, sessions = api
    http = clients["welby"]
    original = answer(submit(http, fhir_claim(w.kid, w.welby_npi, key="void-me", day="2026-07-22")))
    assert original["payment"]["amount"]["value"] == Decimal("75.00")
    void = fhir_claim(w.kid, w.welby_npi, key="void-me", day="2026-07-22")
    void["status"] = "cancelled"
    void["related"] = [
        {
            "claim": {"identifier": {"system": CLAIM_SYSTEM, "value": original["id"]}},
            "relationship": {"coding": [{"code": "prior"}]},
        }
    ]
    voiding = answer(submit(http, void))
    assert voiding["id"] != original["id"]
    assert voiding["disposition"] == f"Claim {voiding['id']} withdraws claim {original['id']}."
    claim, _ = stored(sessions, voiding["id"])
    assert (claim.frequency_code, claim.replaces_claim_id) == ("8", original["id"])
    after = answer(http.get(f"/fhir/ClaimResponse/{original['id']}"))
    assert after["status"] == "cancelled"
    assert after["payment"]["amount"]["value"] == Decimal("0.00")


def test_the_same_claim_sent_four_times_at_once_is_one_claim(api):
    clients, w, sessions = api
    resource = fhir_claim(w.sam, w.welby_npi, key="at-once", day="2026-07-23")
    http = clients["clearinghouse"]
    before = claim_count(sessions)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: submit(http, resource), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert claim_count(sessions) == before + 1


def test_claims_submitted_at_once_each_get_their_own_decision(api):
    """Two offices and a clearinghouse submit eight claims of two families at the same
    moment: the server decides them together (claims.realtime) and each answer is its
    own claim's decision, the one stored, to the cent."""
    clients, w, sessions = api
    sent = [
        ("welby", w.ada, w.welby_npi, "99213"),
        ("casey", w.lee, w.casey_npi, "99214"),
        ("clearinghouse", w.sam, w.welby_npi, "99214"),
        ("welby", w.kid, w.welby_npi, "99213"),
    ] * 2
    resources = [
        (who, fhir_claim(member, npi, code, key=f"at-once-{i}", day=f"2026-08-{10 + i:02d}"))
        for i, (who, member, npi, code) in enumerate(sent)
    ]
    with ThreadPoolExecutor(len(resources)) as pool:
        answers = list(pool.map(lambda pair: submit(clients[pair[0]], pair[1]), resources))
    assert [a.status_code for a in answers] == [200] * len(resources)
    for (_, resource), response in zip(resources, answers, strict=True):
        body = answer(response)
        assert body["outcome"] == "complete"
        claim, [decision] = stored(sessions, body["id"])
        assert claim.patient_control_number == resource["identifier"][0]["value"]
        assert body["patient"]["reference"] == f"Patient/{claim.member_number}"
        got = amounts(body["item"][0])
        assert got["benefit"] == Decimal(decision.plan_paid_cents) / 100
        assert got["copay"] == Decimal(decision.copay_cents) / 100 == Decimal("25.00")
        assert got["eligible"] == Decimal(decision.allowed_cents) / 100
