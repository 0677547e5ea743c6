"""Patient Access (CARIN Blue Button) over real HTTP: Patient, Coverage, ExplanationOfBenefit.

What each caller sees, every cent of every EOB against the current line decisions in the
database, valid FHIR R4 (fhir.resources R4B and HL7's R4 schema), and the audit rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.coverage import Coverage as FhirCoverage
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
from fhir.resources.R4B.patient import Patient
from sqlalchemy import func, select

from api_support import ACTOR, World, client, seed_world, serve, token
from fhir_validate import assert_valid_fhir
from openhmo.adjudication.explain import explanation_text
from openhmo.claims.intake import ClaimIn, submit_claim
from openhmo.claims.models import Claim, LineDecision
from openhmo.claims.service import adjudicate_waiting, approve, deny
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.history.models import PhiAccess

MODELS = {
    "Patient": Patient,
    "Coverage": FhirCoverage,
    "ExplanationOfBenefit": ExplanationOfBenefit,
    "Bundle": Bundle,
}
USERS = ("ada", "sam", "lee", "welby", "casey", "heart", "staff", "clearinghouse")
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
GROUP = "https://x12.org/codes/claim-adjustment-group-codes"


@dataclass
class Api:
    base: str
    world: World
    engine: object
    users: dict[str, httpx.Client] = field(default_factory=dict)
    ada_two: str = ""  # two lines, the second pended (no price)
    kid_er: str = ""  # institutional; staff approved one line, denied the other


def _seed_more(engine, world: World) -> tuple[str, str]:
    sessions = session_factory(engine)
    received = datetime(2026, 6, 25, 9, tzinfo=UTC)
    with sessions() as s:
        ada_two = ClaimIn(
            patient_control_number="ada-two",
            member_number=world.ada,
            billing_npi=world.welby_npi,
            place_of_service="11",
            diagnosis_codes=["I10", "E119"],
            lines=[
                {"service_date": date(2026, 6, 22), "procedure_code": "99213", "charge": "180.00"},
                {"service_date": date(2026, 6, 23), "procedure_code": "99215", "charge": "300.00"},
            ],
            idempotency_key="ada-two",
        )
        kid_er = ClaimIn(
            patient_control_number="kid-er",
            member_number=world.kid,
            billing_npi=world.welby_npi,
            claim_type="institutional",
            diagnosis_codes=["S0990XA"],
            emergency=True,
            lines=[
                {
                    "service_date": date(2026, 6, 24),
                    "revenue_code": "0450",
                    "procedure_code": "99283",
                    "charge": "900.00",
                },
                {"service_date": date(2026, 6, 24), "revenue_code": "0300", "charge": "55.50"},
            ],
            idempotency_key="kid-er",
        )
        ids = [
            submit_claim(s, c, received_at=received, actor=ACTOR).claim_id
            for c in (ada_two, kid_er)
        ]
        s.commit()
    adjudicate_waiting(sessions, actor=ACTOR)
    with sessions() as s:
        approve(s, ids[1], 1, allowed_cents=61234, reason="priced by review", actor=ACTOR)
        deny(s, ids[1], 2, carc="50", reason="not medically necessary", actor=ACTOR)
        s.commit()
    return ids[0], ids[1]


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    ada_two, kid_er = _seed_more(module_engine, world)
    with serve(module_engine) as base:
        out = Api(base, world, module_engine, ada_two=ada_two, kid_er=kid_er)
        out.users = {name: client(base, name) for name in USERS}
        yield out
        for c in out.users.values():
            c.close()


def _fetch(c: httpx.Client, path: str, status: int = 200) -> dict:
    answer = c.get(path)
    assert answer.status_code == status, (path, answer.text)
    assert answer.headers["content-type"].startswith("application/fhir+json")
    return answer.json()


def _valid(resource: dict) -> None:
    MODELS[resource["resourceType"]].model_validate(resource)
    assert_valid_fhir(resource)


def _ids(bundle: dict, mode: str = "match") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode}


def _all(c: httpx.Client, path: str) -> list[dict]:
    """Every match of a search, following the next links."""
    out, url = [], path
    while url:
        bundle = _fetch(c, url)
        _valid(bundle)
        out += [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)
    return out


def _claims(api: Api, *members: str) -> set[str]:
    return {cid for m in members for cid in api.world.claims[m]}


def _member_ids(api: Api) -> dict[str, int]:
    with session_factory(api.engine)() as s:
        return dict(s.execute(select(Member.member_number, Member.id)).all())


# --- every resource is valid FHIR R4 and what the database holds ----------------------------


def test_every_resource_is_valid_r4(api):
    staff = api.users["staff"]
    for kind in ("Patient", "Coverage", "ExplanationOfBenefit"):
        found = _all(staff, f"/fhir/{kind}?_count=3")
        assert found, kind
        for resource in found:
            _valid(resource)
            _valid(_fetch(staff, f"/fhir/{kind}/{resource['id']}"))


def test_a_patient_is_the_member_as_c4bb_patient(api):
    ada = _fetch(api.users["staff"], f"/fhir/Patient/{api.world.ada}")
    assert ada["meta"]["profile"] == [
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient|2.0.0"
    ]
    assert ada["identifier"] == [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MB",
                        "display": "Member Number",
                    }
                ]
            },
            "system": "https://openhmo.org/fhir/sid/member-number",
            "value": api.world.ada,
        }
    ]
    assert ada["name"][0]["family"] == "Okafor" and ada["name"][0]["given"] == ["Ada"]
    assert (ada["gender"], ada["birthDate"]) == ("female", "1985-02-14")
    assert ada["address"][0]["state"] == "MA" and ada["address"][0]["country"] == "US"
    assert ada["communication"][0]["language"]["coding"][0]["code"] == "en"


def test_coverage_names_subscriber_relationship_plan_and_payer(api):
    w = api.world
    found = {
        c["beneficiary"]["reference"]: c
        for c in _all(api.users["staff"], "/fhir/Coverage?subscriber=Patient/" + w.ada)
    }
    assert set(found) == {f"Patient/{m}" for m in (w.ada, w.sam, w.kid)}
    for number, relation in ((w.ada, "self"), (w.sam, "spouse"), (w.kid, "child")):
        cov = found[f"Patient/{number}"]
        assert cov["id"].endswith(f"-{number}")
        assert cov["relationship"]["coding"][0]["code"] == relation
        assert cov["subscriber"] == {"reference": f"Patient/{w.ada}"}
        assert cov["subscriberId"] == w.ada
        assert cov["status"] == "active" and cov["period"] == {"start": "2026-01-01"}
        assert cov["type"]["coding"][0]["code"] == "HMO"
        assert cov["class"][0]["value"] == "openhmo-silver-hmo"
        assert cov["payor"][0]["reference"] == "#payer"
        assert cov["contained"][0]["id"] == "payer"


def _adjudications(item: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for adj in item["adjudication"]:
        out.setdefault(adj["category"]["coding"][0]["code"], []).append(adj)
    return out


def _cents(adj: dict) -> int:
    value = adj["amount"]["value"]
    assert isinstance(value, Decimal) and value == value.quantize(Decimal("0.01"))
    return int(value * 100)


def _reason(adj: dict) -> tuple[str, str]:
    codes = {c["system"]: c["code"] for c in adj["reason"]["coding"]}
    return codes[GROUP], codes[CARC]


def test_every_cent_of_every_eob_is_the_current_decision(api):
    """Per line: charge = paid + member liability + other adjustments, as the database has it."""
    staff = api.users["staff"]
    with session_factory(api.engine)() as s:
        current = {
            (claim_id, d.line_number): d
            for d, claim_id in s.execute(
                select(LineDecision, Claim.claim_id)
                .join(Claim, Claim.id == LineDecision.claim_id)
                .where(LineDecision.superseded_at.is_(None))
            )
        }
        superseded = s.scalar(
            select(LineDecision.id)
            .join(Claim, Claim.id == LineDecision.claim_id)
            .where(Claim.claim_id == api.kid_er, LineDecision.superseded_at.is_not(None))
            .limit(1)
        )
    assert superseded is not None  # the staff resolutions left older decisions behind
    ids = {r["id"] for r in _all(staff, "/fhir/ExplanationOfBenefit?_count=50")}
    assert ids == {claim_id for claim_id, _ in current}
    checked = 0
    for claim_id in sorted(ids):
        raw = staff.get(f"/fhir/ExplanationOfBenefit/{claim_id}").text
        eob = json.loads(raw, parse_float=Decimal)  # exact: no float on the way
        paid_total = 0
        for item in eob["item"]:
            d = current[(claim_id, item["sequence"])]
            adj = _adjudications(item)
            assert _cents(adj["submitted"][0]) == d.charge_cents == _cents({"amount": item["net"]})
            if d.status not in ("paid", "denied"):
                assert set(adj) == {"submitted", d.network_tier.replace("_", "")}
                continue
            paid, liability = _cents(adj["paidtoprovider"][0]), _cents(adj["memberliability"][0])
            assert (paid, liability) == (d.plan_paid_cents, d.member_share_cents)
            assert _cents(adj["eligible"][0]) == d.allowed_cents
            shares = [_cents(adj[k][0]) for k in ("deductible", "copay", "coinsurance")]
            assert shares == [d.deductible_cents, d.copay_cents, d.coinsurance_cents]
            assert sum(shares) == liability
            others = adj.get("discount", []) + adj.get("noncovered", [])
            assert d.charge_cents == paid + liability + sum(_cents(a) for a in others)
            with_reason = [
                (*_reason(a), _cents(a))
                for group in adj.values()
                for a in group
                if "reason" in a and "amount" in a
            ]
            expected = [(a["group"], a["carc"], a["amount_cents"]) for a in d.adjustments]
            assert sorted(with_reason) == sorted(expected)
            if d.status == "denied":
                assert _reason(adj["denialreason"][0]) == (
                    d.adjustments[-1]["group"],
                    d.adjustments[-1]["carc"],
                )
            paid_total += paid
            checked += 1
        totals = {t["category"]["coding"][0]["code"]: _cents(t) for t in eob["total"]}
        for code, total in totals.items():
            assert total == sum(
                _cents(a) for item in eob["item"] for a in _adjudications(item).get(code, [])
            )
        assert _cents(eob["payment"]) == paid_total
    assert checked >= 8


def test_outcomes_pended_lines_and_institutional_claims(api):
    staff = api.users["staff"]
    two = _fetch(staff, f"/fhir/ExplanationOfBenefit/{api.ada_two}")
    assert two["outcome"] == "partial" and "type" not in two["payment"]
    pended = two["item"][1]
    note = next(n for n in two["processNote"] if n["number"] == pended["noteNumber"][0])
    assert note["text"] == explanation_text("explain.pended", {"reason": "pricing"}, "en")
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in two["diagnosis"]] == [
        "I10",
        "E11.9",
    ]
    assert two["billablePeriod"] == {"start": "2026-06-22", "end": "2026-06-23"}

    er = _fetch(staff, f"/fhir/ExplanationOfBenefit/{api.kid_er}")
    assert er["type"]["coding"][0]["code"] == "institutional"
    assert er["subType"]["coding"][0]["code"] == "outpatient"
    assert er["meta"]["profile"][0].endswith(
        "C4BB-ExplanationOfBenefit-Outpatient-Institutional|2.0.0"
    )
    assert er["outcome"] == "complete"
    assert er["payment"]["type"]["coding"][0]["code"] == "partiallypaid"
    assert [i["revenue"]["coding"][0]["code"] for i in er["item"]] == ["0450", "0300"]
    assert er["item"][1]["productOrService"]["coding"][0]["code"] == "not-applicable"
    assert _reason(_adjudications(er["item"][1])["denialreason"][0]) == ("CO", "50")
    assert _adjudications(er["item"][0])["eligible"][0]["amount"]["value"] == 612.34

    lee = _fetch(staff, f"/fhir/ExplanationOfBenefit/{api.world.claims[api.world.lee][1]}")
    assert lee["payment"]["type"]["coding"][0]["code"] == "denied"
    assert _reason(_adjudications(lee["item"][0])["denialreason"][0]) == ("CO", "242")


# --- who sees what ---------------------------------------------------------------------------


def _visible(api: Api, user: str) -> tuple[set[str], set[str]]:
    w = api.world
    people = {
        "ada": {w.ada, w.kid},
        "sam": {w.sam},
        "lee": {w.lee},
        "welby": {w.ada, w.sam, w.kid},
        "casey": {w.lee},
        "heart": {w.ada},
    }.get(user, {w.ada, w.sam, w.kid, w.lee})
    c = w.claims
    claims = {
        "ada": _claims(api, w.ada, w.kid) | {api.ada_two, api.kid_er},
        "sam": _claims(api, w.sam),
        "lee": _claims(api, w.lee),
        # the claims each office billed, not all claims of the patients it sees
        "welby": {c[w.ada][0], c[w.sam][0], c[w.kid][0], api.ada_two, api.kid_er},
        "casey": {c[w.lee][0]},
        "heart": {c[w.ada][1]},
    }.get(user, _claims(api, w.ada, w.sam, w.kid, w.lee) | {api.ada_two, api.kid_er})
    return people, claims


@pytest.mark.parametrize("user", USERS)
def test_each_caller_sees_exactly_whom_the_rules_allow(api, user):
    c = api.users[user]
    people, claims = _visible(api, user)
    everyone = {api.world.ada, api.world.sam, api.world.kid, api.world.lee}
    assert {p["id"] for p in _all(c, "/fhir/Patient")} == people
    assert {cov["beneficiary"]["reference"][8:] for cov in _all(c, "/fhir/Coverage")} == people
    assert {e["id"] for e in _all(c, "/fhir/ExplanationOfBenefit")} == claims
    for number in everyone:
        _fetch(c, f"/fhir/Patient/{number}", 200 if number in people else 404)
    for number in everyone - people:
        assert _all(c, f"/fhir/Coverage?patient={number}") == []
        assert _all(c, f"/fhir/ExplanationOfBenefit?patient=Patient/{number}") == []
    all_claims = _claims(api, *everyone) | {api.ada_two, api.kid_er}
    for claim_id in all_claims:
        _fetch(c, f"/fhir/ExplanationOfBenefit/{claim_id}", 200 if claim_id in claims else 404)


def test_a_hidden_resource_answers_exactly_as_an_unknown_one(api):
    sam = api.users["sam"]
    for hidden, unknown in (
        (f"/fhir/Patient/{api.world.ada}", "/fhir/Patient/OHM999999999-00"),
        (f"/fhir/ExplanationOfBenefit/{api.ada_two}", "/fhir/ExplanationOfBenefit/C999999999"),
        (f"/fhir/Coverage/{_coverage_id(api, api.world.ada)}", "/fhir/Coverage/9-OHM999999999-00"),
    ):
        a, b = sam.get(hidden), sam.get(unknown)
        assert a.status_code == b.status_code == 404
        assert a.json()["issue"][0]["code"] == b.json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient",
        "/fhir/Patient/OHM000000001-00",
        "/fhir/Coverage",
        "/fhir/Coverage/1-OHM000000001-00",
        "/fhir/ExplanationOfBenefit",
        "/fhir/ExplanationOfBenefit/C000000001",
    ],
)
def test_anonymous_callers_get_401(api, path):
    answer = httpx.get(api.base + path)
    assert answer.status_code == 401
    assert answer.json()["issue"][0]["code"] == "login"


def test_a_token_without_the_resource_s_scope_is_403(api):
    headers = {"Authorization": f"Bearer {token(api.base, 'ada', scope='patient/Patient.read')}"}
    assert httpx.get(f"{api.base}/fhir/Patient/{api.world.ada}", headers=headers).status_code == 200
    answer = httpx.get(f"{api.base}/fhir/ExplanationOfBenefit", headers=headers)
    assert answer.status_code == 403


# --- the audit -------------------------------------------------------------------------------


def _audit_mark(api: Api) -> int:
    with session_factory(api.engine)() as s:
        return s.scalar(select(func.max(PhiAccess.id))) or 0


def _audit_rows(api: Api, what: str, after: int = 0) -> list[PhiAccess]:
    """The audit rows of requests `what` written after row `after`."""
    with session_factory(api.engine)() as s:
        return list(
            s.scalars(select(PhiAccess).where(PhiAccess.what == what, PhiAccess.id > after))
        )


def _get(c: httpx.Client, path: str) -> tuple[dict, str]:
    """The answer and the audit's `what` for it (the request line as the server got it)."""
    answer = c.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json(), "GET " + answer.request.url.raw_path.decode()


def _coverage_id(api: Api, number: str) -> str:
    found = _all(api.users["staff"], f"/fhir/Coverage?patient={number}")
    return found[0]["id"]


def test_reads_and_searches_are_audited_with_who_whom_what_and_where(api):
    w, ids = api.world, _member_ids(api)
    ada = api.users["ada"]
    mark = _audit_mark(api)
    _fetch(ada, f"/fhir/Patient/{w.kid}")
    [row] = _audit_rows(api, f"GET /fhir/Patient/{w.kid}", mark)
    assert (row.actor, row.member_id, row.resource_type, row.resource_id) == (
        "ada",
        ids[w.kid],
        "Patient",
        w.kid,
    )
    assert (row.action, row.source_address, row.purpose) == ("read", "127.0.0.1", "member access")

    include = "_include=ExplanationOfBenefit:patient&_include=ExplanationOfBenefit:coverage"
    bundle, what = _get(ada, f"/fhir/ExplanationOfBenefit?patient={w.kid}&{include}")
    kid_coverage = _coverage_id(api, w.kid)
    assert _ids(bundle) == _claims(api, w.kid) | {api.kid_er}
    assert _ids(bundle, "include") == {w.kid, kid_coverage}
    rows = _audit_rows(api, what, mark)
    assert {(r.resource_type, r.resource_id) for r in rows} == {
        *(("ExplanationOfBenefit", c) for c in _ids(bundle)),
        ("Patient", w.kid),
        ("Coverage", kid_coverage),
    }
    assert {(r.actor, r.member_id, r.action, r.source_address) for r in rows} == {
        ("ada", ids[w.kid], "search", "127.0.0.1")
    }

    welby = api.users["welby"]
    _fetch(welby, "/fhir/Coverage?beneficiary=" + w.sam)
    [row] = _audit_rows(api, "GET /fhir/Coverage?beneficiary=" + w.sam, mark)
    assert (row.actor, row.member_id, row.purpose) == ("welby", ids[w.sam], "treatment")


def test_what_is_not_shown_is_not_audited(api):
    sam = api.users["sam"]
    mark = _audit_mark(api)
    _fetch(sam, f"/fhir/Patient/{api.world.lee}", 404)
    _fetch(sam, f"/fhir/ExplanationOfBenefit?patient={api.world.lee}")
    assert _audit_rows(api, f"GET /fhir/Patient/{api.world.lee}", mark) == []
    assert _audit_rows(api, f"GET /fhir/ExplanationOfBenefit?patient={api.world.lee}", mark) == []


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/fhir/Patient?birthdate=ge2000", lambda a: {a.world.kid}),
        ("/fhir/Patient?birthdate=1985-02-14", lambda a: {a.world.ada}),
        ("/fhir/Patient?name=kid", lambda a: {a.world.kid}),
        ("/fhir/Patient?family=okaf&gender=female", lambda a: {a.world.ada}),
        (
            "/fhir/Patient?identifier=https://openhmo.org/fhir/sid/member-number|"
            + "OHM000000004-00",
            lambda a: {a.world.lee},
        ),
        ("/fhir/Patient?_id=OHM000000001-00,OHM000000004-00", lambda a: {a.world.ada, a.world.lee}),
        ("/fhir/Coverage?status=cancelled", lambda a: set()),
        ("/fhir/ExplanationOfBenefit?type=institutional", lambda a: {a.kid_er}),
        ("/fhir/ExplanationOfBenefit?service-date=ge2026-06-22", lambda a: {a.ada_two, a.kid_er}),
        (
            "/fhir/ExplanationOfBenefit?service-date=gt2026-06-22&service-date=lt2026-06-24",
            lambda a: {a.ada_two},
        ),
        (
            "/fhir/ExplanationOfBenefit?service-date=2026-06",
            lambda a: (
                _claims(a, a.world.ada, a.world.sam, a.world.kid, a.world.lee)
                | {a.ada_two, a.kid_er}
            ),
        ),
        ("/fhir/ExplanationOfBenefit?service-date=2026-06-24", lambda a: {a.kid_er}),
        ("/fhir/ExplanationOfBenefit?service-date=2026-06-23", lambda a: set()),
        ("/fhir/ExplanationOfBenefit?service-date=ne2026-06-20", lambda a: {a.ada_two, a.kid_er}),
        (
            "/fhir/ExplanationOfBenefit?service-date=le2026-06-20&patient=" + "OHM000000004-00",
            lambda a: _claims(a, a.world.lee),
        ),
        (
            "/fhir/ExplanationOfBenefit?identifier=https://openhmo.org/fhir/sid/claim-id|C000000003",
            lambda a: {"C000000003"},
        ),
        ("/fhir/ExplanationOfBenefit?_lastUpdated=lt2000-01-01", lambda a: set()),
        (
            "/fhir/ExplanationOfBenefit?status=active&_lastUpdated=ge2020",
            lambda a: (
                _claims(a, a.world.ada, a.world.sam, a.world.kid, a.world.lee)
                | {a.ada_two, a.kid_er}
            ),
        ),
    ],
)
def test_search_parameters(api, path, expected):
    assert {r["id"] for r in _all(api.users["staff"], path)} == expected(api)


def test_paging_with_count_and_offset(api):
    staff = api.users["staff"]
    first = _fetch(staff, "/fhir/ExplanationOfBenefit?_count=3")
    links = {ln["relation"]: ln["url"] for ln in first["link"]}
    assert first["total"] == 8 and len(first["entry"]) == 3
    assert "previous" not in links and "_offset=3" in links["next"]
    second = _fetch(staff, links["next"])
    assert "previous" in {ln["relation"] for ln in second["link"]}
    assert not _ids(first) & _ids(second)
    last = _fetch(staff, "/fhir/ExplanationOfBenefit?_count=3&_offset=6")
    assert len(last["entry"]) == 2 and "next" not in {ln["relation"] for ln in last["link"]}
    assert _fetch(staff, "/fhir/Patient?_count=0")["total"] == 4


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient?nickname=x",
        "/fhir/Patient?birthdate=yesterday",
        "/fhir/Patient?gender=other",
        "/fhir/Coverage?status=draft",
        "/fhir/ExplanationOfBenefit?_include=ExplanationOfBenefit:provider",
        "/fhir/ExplanationOfBenefit?service-date=sa2026-01-01",
        "/fhir/ExplanationOfBenefit?_count=1000",
    ],
)
def test_what_is_not_understood_is_a_400(api, path):
    answer = api.users["staff"].get(path)
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_declares_the_carin_profiles(api):
    statement = _fetch(api.users["staff"], "/fhir/metadata")
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert (
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient|2.0.0"
        in kinds["Patient"]["supportedProfile"]
    )
    eob = kinds["ExplanationOfBenefit"]
    assert {p["name"] for p in eob["searchParam"]} >= {"patient", "service-date", "_include"}
    assert {i["code"] for i in eob["interaction"]} == {"read", "search-type"}
