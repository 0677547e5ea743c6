"""The staff API over real HTTP: plans, premium billing, the pended-claim queue, referral and
prior-authorization review; who may call it; what each call leaves in the database.

One seeded world per database (SQLite, PostgreSQL), plus what staff work on: two lines
pended for pricing (Ada's and Sam's 99215, a code the fee schedule lacks), one pended for
referral review (Lee's cardiology visit under a 10-visit referral, above the plan's
automatic approval), one claim not adjudicated yet, a second referral and two prior
authorizations waiting, and January's premiums billed on 15 January with nothing paid
(both families in a grace period). The tests of one module share the world and run in
file order: the queue is read before it is worked.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
from sqlalchemy import func, select

from api_support import DAY, _claim, seed_world, serve, token
from fhir_validate import assert_valid_fhir
from openhmo.billing.models import GracePeriod, Invoice, Payment
from openhmo.billing.service import run_billing
from openhmo.claims.intake import submit_claim
from openhmo.claims.models import Claim, ClaimOverride, LineDecision
from openhmo.claims.service import adjudicate_claim
from openhmo.db import session_factory
from openhmo.enrollment.models import Coverage, Member, Notice
from openhmo.history.models import ChangeRecord, PhiAccess
from openhmo.network.models import Provider
from openhmo.plans.models import Plan, PlanPremium, PlanYear
from openhmo.referrals.models import PriorAuthorization, Referral
from openhmo.referrals.service import request_prior_auth, request_referral

SEEDER = "test:staff-api"
RECEIVED = datetime(2026, 6, 22, 9, tzinfo=UTC)


def _seed_work(engine, w) -> dict[str, str]:
    """What staff work on (see the module's text); returns name -> id."""
    ids: dict[str, str] = {}
    with session_factory(engine)() as s:
        members = {m.member_number: m for m in s.scalars(select(Member))}
        providers = {p.npi: p for p in s.scalars(select(Provider))}
        lee, ada, sam = members[w.lee], members[w.ada], members[w.sam]
        casey, welby, heart = (providers[n] for n in (w.casey_npi, w.welby_npi, w.heart_npi))
        for name, member, pcp in (("lee_referral", lee, casey), ("sam_referral", sam, welby)):
            referral = request_referral(
                s,
                member=member,
                referring_provider=pcp,
                specialist=heart,
                visits=10,
                valid_from=date(2026, 6, 1),
                diagnosis_codes=["I10"],
                actor=SEEDER,
            )
            assert referral.status == "requested"
            ids[name] = referral.referral_number
        for name, code in (("auth_approve", "70551"), ("auth_deny", "70553")):
            auth = request_prior_auth(
                s,
                member=ada,
                requesting_provider=welby,
                category="advanced_imaging",
                procedure_codes=[code],
                diagnosis_codes=["I10"],
                valid_from=date(2026, 6, 1),
                valid_to=date(2026, 8, 31),
                actor=SEEDER,
            )
            ids[name] = auth.auth_number
        s.commit()
        for name, member, npi, code, charge in (
            ("ada_pricing", w.ada, w.welby_npi, "99215", "210.00"),
            ("sam_pricing", w.sam, w.welby_npi, "99215", "210.00"),
            ("lee_referral_claim", w.lee, w.heart_npi, "99203", "150.00"),
            ("not_adjudicated", w.lee, w.casey_npi, "99213", "180.00"),
        ):
            claim = submit_claim(
                s, _claim(member, npi, code, charge, name, DAY), received_at=RECEIVED, actor=SEEDER
            )
            s.commit()
            ids[name] = claim.claim_id
            if name != "not_adjudicated":
                adjudicate_claim(s, claim.claim_id, actor=SEEDER)
                s.commit()
        run_billing(s, through=date(2026, 1, 15), actor=SEEDER)
        s.commit()
        ids["lee_coverage"] = str(
            s.scalar(select(Coverage.id).where(Coverage.subscriber_id == lee.id))
        )
    return ids


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    ids = _seed_work(module_engine, world)
    with serve(module_engine) as base:
        tokens = {name: token(base, name) for name in ("staff", "ada", "welby", "clearinghouse")}
        yield base, world, ids, module_engine, tokens


def _client(base: str, bearer: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def staff(api):
    base, *_, tokens = api
    with _client(base, tokens["staff"]) as c:
        yield c


def _scalar(engine, query):
    with session_factory(engine)() as s:
        return s.scalar(query)


def _reads(engine, what: str) -> list[tuple]:
    with session_factory(engine)() as s:
        return s.execute(
            select(
                PhiAccess.actor,
                PhiAccess.member_id,
                PhiAccess.resource_type,
                PhiAccess.resource_id,
                PhiAccess.action,
                PhiAccess.purpose,
            )
            .where(PhiAccess.what == what)
            .order_by(PhiAccess.id)
        ).all()


def _problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"]
    return body


# --- who may call --------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/staff/plans", None),
    ("GET", "/staff/plans/openhmo-silver-hmo", None),
    ("GET", "/staff/plans/openhmo-silver-hmo/premiums", None),
    ("GET", "/staff/coverages/1/billing", None),
    ("GET", "/staff/members/OHM000000001-00/billing", None),
    ("POST", "/staff/coverages/1/payments", {"amount_cents": 100, "received_on": "2026-01-20"}),
    ("GET", "/staff/claims/pended", None),
    ("GET", "/staff/claims/C000000001", None),
    ("POST", "/staff/claims/C000000001/lines/1/approve", {"reason": "fine"}),
    ("POST", "/staff/claims/C000000001/lines/1/deny", {"reason": "no", "carc": "50"}),
    ("GET", "/staff/referrals", None),
    ("GET", "/staff/referrals/R000000001", None),
    ("POST", "/staff/referrals/R000000001/approve", {"reason": "fine"}),
    ("POST", "/staff/referrals/R000000001/deny", {"reason": "no"}),
    ("GET", "/staff/prior-authorizations", None),
    ("GET", "/staff/prior-authorizations/PA000000001", None),
    ("POST", "/staff/prior-authorizations/PA000000001/approve", {"reason": "fine"}),
    ("POST", "/staff/prior-authorizations/PA000000001/deny", {"reason": "no"}),
    ("GET", "/staff/members/OHM000000001-00/apps", None),
    ("POST", "/staff/members/OHM000000001-00/apps/1/end", {"reason": "asked"}),
]


def test_only_staff_get_in_anonymous_callers_are_asked_to_sign_in(api):
    base, _, _, engine, tokens = api
    changes = _scalar(engine, select(func.count()).select_from(ChangeRecord))
    reads = _scalar(engine, select(func.count()).select_from(PhiAccess))
    for method, path, body in ROUTES:
        answer = httpx.request(method, base + path, json=body)
        _problem(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer"), path
        for who in ("ada", "welby", "clearinghouse"):
            answer = httpx.request(
                method, base + path, json=body, headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            assert "may not" in _problem(answer, 403)["title"], (who, path)
    # refused calls change nothing and show nothing
    assert _scalar(engine, select(func.count()).select_from(ChangeRecord)) == changes
    assert _scalar(engine, select(func.count()).select_from(PhiAccess)) == reads


def test_a_staff_token_narrowed_to_reading_plans_reads_plans_and_nothing_else(api):
    base, *_ = api
    with _client(base, token(base, "staff", scope="user/Plan.read")) as narrow:
        assert narrow.get("/staff/plans").status_code == 200
        assert "scopes" in _problem(narrow.get("/staff/claims/pended"), 403)["title"]
        answer = narrow.post("/staff/referrals/R000000001/approve", json={"reason": "x"})
        _problem(answer, 403)


def test_a_staff_token_with_smart_v2_letters_decides_only_what_they_say(api):
    base, *_ = api
    approve = ("/staff/referrals/R000000999/approve", {"reason": "x"})
    # u: deciding on a referral (no such referral here: past the door, a 404)
    with _client(base, token(base, "staff", scope="user/Referral.rus")) as decider:
        assert decider.get("/staff/referrals").status_code == 200
        _problem(decider.post(approve[0], json=approve[1]), 404)
        _problem(decider.post("/staff/claims/C000000001/lines/1/deny", json={}), 403)
    # c alone creates, it does not decide
    with _client(base, token(base, "staff", scope="user/Referral.c")) as creator:
        _problem(creator.post(approve[0], json=approve[1]), 403)
        _problem(creator.get("/staff/referrals"), 403)


# --- plans ---------------------------------------------------------------------------------------


def test_plans_are_listed_with_their_years(staff):
    answer = staff.get("/staff/plans")
    assert answer.status_code == 200
    plans = {p["key"]: p for p in answer.json()}
    assert set(plans) == {
        "openhmo-silver-hmo",
        "openhmo-silver-epo",
        "openhmo-gold-pos",
        "openhmo-gold-ppo",
        "openhmo-traditional",
    }
    silver = plans["openhmo-silver-hmo"]
    assert (silver["type"], silver["network_key"], silver["years"]) == (
        "HMO",
        "openhmo-core",
        [2026, 2027],
    )


def test_a_plan_shows_its_stored_design_and_premiums_in_cents(api, staff):
    *_, engine, _ = api
    answer = staff.get("/staff/plans/openhmo-silver-hmo")
    assert answer.status_code == 200
    plan = answer.json()
    assert plan["design"]["id"] == "openhmo-silver-hmo"
    assert plan["design"]["referrals"]["auto_approve_max_visits"] == 6
    assert [y["year"] for y in plan["design"]["plan_years"]] == [2026, 2027]
    assert [(y["year"], y["starts"], y["ends"]) for y in plan["plan_years"]] == [
        (2026, "2026-01-01", "2026-12-31"),
        (2027, "2027-01-01", "2027-12-31"),
    ]
    with session_factory(engine)() as s:
        stored = s.execute(
            select(PlanYear.year, PlanPremium.tier, PlanPremium.monthly_cents)
            .join(PlanYear, PlanYear.id == PlanPremium.plan_year_id)
            .join(Plan, Plan.id == PlanYear.plan_id)
            .where(Plan.plan_key == "openhmo-silver-hmo")
        ).all()
    assert len(stored) == 8 and all(isinstance(c, int) for _, _, c in stored)
    shown = {
        (y["year"], p["tier"], p["monthly_cents"])
        for y in plan["plan_years"]
        for p in y["premiums"]
    }
    assert shown == set(stored)
    assert plan["service_area"]["counties"]
    premiums = staff.get("/staff/plans/openhmo-silver-hmo/premiums", params={"year": 2026}).json()
    assert {(p["year"], p["tier"], p["monthly_cents"]) for p in premiums} == {
        row for row in stored if row[0] == 2026
    }
    assert staff.get("/staff/plans/openhmo-silver-hmo/premiums", params={"year": 2030}).json() == []


def test_an_unknown_plan_is_404_and_a_malformed_key_400(staff):
    assert "no plan" in _problem(staff.get("/staff/plans/no-such-plan"), 404)["title"]
    _problem(staff.get("/staff/plans/NOT%20A%20KEY"), 400)
    _problem(staff.get("/staff/plans/openhmo-silver-hmo/premiums", params={"year": "x"}), 400)


# --- premiums ------------------------------------------------------------------------------------


def test_billing_shows_invoices_balance_and_the_open_grace_period_and_is_audited(api, staff):
    _, world, ids, engine, _ = api
    answer = staff.get(f"/staff/members/{world.lee}/billing")
    assert answer.status_code == 200
    (coverage,) = answer.json()
    assert coverage["coverage_id"] == int(ids["lee_coverage"])
    assert (coverage["subscriber_number"], coverage["plan_key"]) == (
        world.lee,
        "openhmo-silver-hmo",
    )
    (invoice,) = coverage["invoices"]
    stored = _scalar(engine, select(Invoice).where(Invoice.coverage_id == coverage["coverage_id"]))
    assert (invoice["id"], invoice["amount_cents"], invoice["paid_cents"]) == (
        stored.id,
        stored.amount_cents,
        0,
    )
    assert (invoice["period_start"], invoice["due_date"]) == ("2026-01-01", "2026-01-01")
    assert coverage["balance_cents"] == stored.amount_cents and coverage["payments"] == []
    (grace,) = coverage["grace_periods"]
    assert (grace["status"], grace["starts"], grace["ends"]) == ("open", "2026-01-01", "2026-01-31")
    # the same through the coverage's own address
    again = staff.get(f"/staff/coverages/{ids['lee_coverage']}/billing").json()
    assert again == coverage
    lee_id = _scalar(engine, select(Member.id).where(Member.member_number == world.lee))
    fhir_id = f"{ids['lee_coverage']}-{world.lee}"
    assert _reads(engine, f"GET /staff/members/{world.lee}/billing") == [
        ("staff", lee_id, "Coverage", fhir_id, "read", "operations")
    ]
    assert len(_reads(engine, f"GET /staff/coverages/{ids['lee_coverage']}/billing")) >= 1


def test_a_payment_pays_the_invoice_cures_the_grace_period_and_is_idempotent(api, staff):
    _, _, ids, engine, _ = api
    path = f"/staff/coverages/{ids['lee_coverage']}/payments"
    owed = staff.get(path.replace("payments", "billing")).json()["balance_cents"]
    body = {"amount_cents": owed, "received_on": "2026-01-20", "reference": "lockbox-77"}
    answer = staff.post(path, json=body)
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert (receipt["created"], receipt["balance_cents"]) == (True, 0)
    invoice_id = _scalar(
        engine, select(Invoice.id).where(Invoice.coverage_id == int(ids["lee_coverage"]))
    )
    assert receipt["payment"]["applied"] == [{"invoice_id": invoice_id, "amount_cents": owed}]
    grace = _scalar(
        engine, select(GracePeriod).where(GracePeriod.coverage_id == int(ids["lee_coverage"]))
    )
    assert (grace.status, grace.resolved_on) == ("cured", date(2026, 1, 20))
    history = _scalar(
        engine,
        select(ChangeRecord).where(
            ChangeRecord.action == "premium_payment_received",
            ChangeRecord.entity_id == str(receipt["payment"]["id"]),
        ),
    )
    assert history.actor == "api:staff"
    # the same reference again is the same payment, not a second one
    replay = staff.post(path, json=body)
    assert replay.status_code == 200
    assert (replay.json()["created"], replay.json()["payment"]) == (False, receipt["payment"])
    count = select(func.count()).select_from(Payment).where(Payment.reference == "lockbox-77")
    assert _scalar(engine, count) == 1
    # ... and for another amount it is refused
    conflict = staff.post(path, json={**body, "amount_cents": owed + 1})
    assert "already used" in _problem(conflict, 409)["title"]
    billing = staff.get(path.replace("payments", "billing")).json()
    assert billing["invoices"][0]["paid_cents"] == owed
    assert billing["grace_periods"][0]["status"] == "cured"


@pytest.mark.parametrize(
    "body",
    [
        {"amount_cents": 0, "received_on": "2026-01-20"},
        {"amount_cents": 12.5, "received_on": "2026-01-20"},
        {"amount_cents": "100", "received_on": "2026-01-20", "tip": 1},
        {"amount_cents": 100, "received_on": "20 January"},
        {"amount_cents": 100, "received_on": "2026-01-20", "reference": "a\x00b"},
        {"amount_cents": 100, "received_on": "2026-01-20", "method": "  "},
    ],
)
def test_a_bad_payment_is_400_and_takes_nothing(api, staff, body):
    _, _, ids, engine, _ = api
    before = _scalar(engine, select(func.count()).select_from(Payment))
    _problem(staff.post(f"/staff/coverages/{ids['lee_coverage']}/payments", json=body), 400)
    assert _scalar(engine, select(func.count()).select_from(Payment)) == before


def test_unknown_coverages_and_members_are_404(staff):
    ok = {"amount_cents": 100, "received_on": "2026-01-20"}
    _problem(staff.get("/staff/coverages/99999/billing"), 404)
    _problem(staff.post("/staff/coverages/99999/payments", json=ok), 404)
    _problem(staff.get("/staff/members/OHM999999999-00/billing"), 404)
    _problem(staff.get(f"/staff/coverages/{2**40}/billing"), 400)


# --- the pended-claim queue ----------------------------------------------------------------------


def test_the_queue_lists_the_pended_lines_oldest_first_and_audits_each(api, staff):
    _, world, ids, engine, _ = api
    answer = staff.get("/staff/claims/pended")
    assert answer.status_code == 200
    queue = answer.json()
    got = [(i["claim_id"], i["line_number"], i["pend_reason"]) for i in queue["items"]]
    assert got == [
        (ids["ada_pricing"], 1, "pricing"),
        (ids["sam_pricing"], 1, "pricing"),
        (ids["lee_referral_claim"], 1, "referral_review"),
    ]
    assert queue["total"] == 3
    first = queue["items"][0]
    assert (first["member_number"], first["member_name"]) == (world.ada, "Ada Okafor")
    assert (first["charge_cents"], first["procedure_code"]) == (21000, "99215")
    audited = _reads(engine, "GET /staff/claims/pended")
    assert {(r[2], r[3], r[4]) for r in audited} >= {
        ("Claim", ids["ada_pricing"], "search"),
        ("Claim", ids["lee_referral_claim"], "search"),
    }
    page = staff.get("/staff/claims/pended", params={"limit": 1, "offset": 2}).json()
    assert (page["total"], [i["claim_id"] for i in page["items"]]) == (
        3,
        [ids["lee_referral_claim"]],
    )


def test_a_claim_shows_its_lines_and_current_decisions_and_is_audited(api, staff):
    _, world, ids, engine, _ = api
    answer = staff.get(f"/staff/claims/{ids['ada_pricing'].lower()}")
    assert answer.status_code == 200
    claim = answer.json()
    assert (claim["claim_id"], claim["status"], claim["member_number"]) == (
        ids["ada_pricing"],
        "pended",
        world.ada,
    )
    (line,) = claim["lines"]
    assert (line["procedure_code"], line["charge_cents"], line["units"]) == (
        "99215",
        21000,
        "1.000",
    )
    decision = line["decision"]
    assert (decision["status"], decision["pend_reason"], decision["plan_paid_cents"]) == (
        "pended",
        "pricing",
        None,
    )
    assert decision["explanation"] and decision["trace"][0]["step"]
    ja = staff.get(f"/staff/claims/{ids['ada_pricing']}", params={"language": "ja"}).json()
    assert ja["lines"][0]["decision"]["explanation"] != decision["explanation"]
    ada_id = _scalar(engine, select(Member.id).where(Member.member_number == world.ada))
    assert _reads(engine, f"GET /staff/claims/{ids['ada_pricing']}")[0] == (
        "staff",
        ada_id,
        "Claim",
        ids["ada_pricing"],
        "read",
        "operations",
    )
    waiting = staff.get(f"/staff/claims/{ids['not_adjudicated']}").json()
    assert (waiting["status"], waiting["lines"][0]["decision"]) == ("received", None)
    assert "no claim" in _problem(staff.get("/staff/claims/C999999999"), 404)["title"]
    _problem(staff.get("/staff/claims/C-1"), 400)
    _problem(staff.get(f"/staff/claims/{ids['ada_pricing']}", params={"language": "xx"}), 400)


def _decision(engine, claim_id: str, line_number: int = 1) -> LineDecision:
    return _scalar(
        engine,
        select(LineDecision)
        .join(Claim, Claim.id == LineDecision.claim_id)
        .where(
            Claim.claim_id == claim_id,
            LineDecision.line_number == line_number,
            LineDecision.superseded_at.is_(None),
        ),
    )


def _eob(staff: httpx.Client, claim_id: str) -> dict:
    """The member's ExplanationOfBenefit of the claim, validated, amounts as exact Decimals."""
    answer = staff.get(
        f"/fhir/ExplanationOfBenefit/{claim_id}", headers={"Accept": "application/fhir+json"}
    )
    assert answer.status_code == 200, answer.text
    ExplanationOfBenefit.model_validate(answer.json())
    assert_valid_fhir(answer.json())
    return json.loads(answer.text, parse_float=Decimal)


def _line_amounts(eob: dict) -> dict[str, Decimal]:
    (item,) = eob["item"]
    return {
        a["category"]["coding"][0]["code"]: a["amount"]["value"]
        for a in item["adjudication"]
        if "amount" in a
    }


def test_approving_a_pricing_pend_needs_the_allowed_amount_then_pays_the_line(api, staff):
    _, _, ids, engine, _ = api
    claim_id = ids["ada_pricing"]
    path = f"/staff/claims/{claim_id}/lines/1/approve"
    refused = staff.post(path, json={"reason": "priced by hand"})
    assert _problem(refused, 422)["where"] == ["allowed_cents"]
    assert _decision(engine, claim_id).status == "pended"  # nothing written
    _problem(staff.post(path, json={"reason": "   ", "allowed_cents": 8000}), 400)
    _problem(staff.post(path, json={"reason": "x", "allowed_cents": -1}), 400)
    _problem(staff.post(path, json={"reason": "x", "allowed_cents": "80.00"}), 400)

    answer = staff.post(path, json={"reason": "priced at the 99214 rate", "allowed_cents": 8000})
    assert answer.status_code == 200, answer.text
    claim = answer.json()
    assert claim["status"] == "adjudicated"
    decision = claim["lines"][0]["decision"]
    stored = _decision(engine, claim_id)
    assert (decision["status"], decision["allowed_cents"]) == ("paid", 8000)
    assert decision["plan_paid_cents"] == stored.plan_paid_cents > 0
    assert decision["plan_paid_cents"] + decision["member_share_cents"] == 8000
    assert {"group": "CO", "carc": "45", "rarc": None, "amount_cents": 13000} in decision[
        "adjustments"
    ]
    override = _scalar(engine, select(ClaimOverride).where(ClaimOverride.line_number == 1))
    assert (override.action, override.allowed_cents, override.actor) == (
        "approve",
        8000,
        "api:staff",
    )
    assert claim["overrides"][0]["actor"] == "api:staff"
    history = _scalar(
        engine,
        select(ChangeRecord).where(
            ChangeRecord.entity_id == claim_id, ChangeRecord.action == "line_approved_by_review"
        ),
    )
    assert (history.actor, history.reason) == ("api:staff", "priced at the 99214 rate")
    assert _scalar(engine, select(Claim.status).where(Claim.claim_id == claim_id)) == "adjudicated"
    # what the member's EOB shows is what staff decided
    eob = _eob(staff, claim_id)
    amounts = _line_amounts(eob)
    assert amounts["eligible"] == Decimal("80.00")
    assert amounts["paidtoprovider"] == Decimal(stored.plan_paid_cents) / 100
    assert eob["payment"]["amount"]["value"] == Decimal(stored.plan_paid_cents) / 100
    # the queue no longer has it; a second approval finds nothing pended
    queue = staff.get("/staff/claims/pended").json()
    assert claim_id not in [i["claim_id"] for i in queue["items"]]
    again = staff.post(path, json={"reason": "again", "allowed_cents": 8000})
    assert "not pended" in _problem(again, 409)["title"]


def test_denying_a_pended_line_needs_a_carc_and_denies_its_whole_charge(api, staff):
    _, _, ids, engine, _ = api
    claim_id = ids["sam_pricing"]
    path = f"/staff/claims/{claim_id}/lines/1/deny"
    assert _problem(staff.post(path, json={"reason": "x", "carc": "fifty"}), 422)["where"] == [
        "carc"
    ]
    _problem(staff.post(path, json={"reason": "x"}), 400)
    _problem(staff.post(path, json={"reason": "x", "carc": "50", "extra": True}), 400)
    answer = staff.post(path, json={"reason": "not medically necessary", "carc": "50"})
    assert answer.status_code == 200, answer.text
    decision = answer.json()["lines"][0]["decision"]
    assert (decision["status"], decision["plan_paid_cents"]) == ("denied", 0)
    assert decision["adjustments"] == [
        {"group": "CO", "carc": "50", "rarc": None, "amount_cents": 21000}
    ]
    assert "not medically necessary" in decision["explanation"]
    eob = _eob(staff, claim_id)
    assert (_line_amounts(eob)["paidtoprovider"], _line_amounts(eob)["noncovered"]) == (
        Decimal("0.00"),
        Decimal("210.00"),
    )
    stored = _decision(engine, claim_id)
    assert (stored.status, stored.explanation_id) == ("denied", "explain.denied.by_review")
    _problem(staff.post(path, json={"reason": "again", "carc": "50"}), 409)


def test_resolving_lines_that_are_not_there_or_not_adjudicated(api, staff):
    _, _, ids, _, _ = api
    body = {"reason": "x", "allowed_cents": 100}
    _problem(staff.post("/staff/claims/C999999999/lines/1/approve", json=body), 404)
    missing = staff.post(f"/staff/claims/{ids['ada_pricing']}/lines/2/approve", json=body)
    assert _problem(missing, 404)["where"] == ["line_number"]
    waiting = staff.post(f"/staff/claims/{ids['not_adjudicated']}/lines/1/approve", json=body)
    assert "not been adjudicated" in _problem(waiting, 409)["title"]
    _problem(staff.post(f"/staff/claims/{ids['ada_pricing']}/lines/0/approve", json=body), 400)


# --- referral and prior-authorization review -----------------------------------------------------


def test_the_referral_queue_lists_what_waits_with_the_rules_reason(api, staff):
    _, world, ids, engine, _ = api
    answer = staff.get("/staff/referrals")
    assert answer.status_code == 200
    waiting = {r["referral_number"]: r for r in answer.json()}
    assert set(waiting) == {ids["lee_referral"], ids["sam_referral"]}
    lee = waiting[ids["lee_referral"]]
    assert (lee["member_number"], lee["referring_npi"], lee["specialist_npi"]) == (
        world.lee,
        world.casey_npi,
        world.heart_npi,
    )
    assert (lee["status"], lee["visits"]) == ("requested", 10)
    assert "more than 6 visits" in lee["status_reason"]
    approved = staff.get("/staff/referrals", params={"status": "approved"}).json()
    assert [r["referral_number"] for r in approved] == [world.referral]
    _problem(staff.get("/staff/referrals", params={"status": "lost"}), 400)
    assert {r[3] for r in _reads(engine, "GET /staff/referrals")} >= {
        ids["lee_referral"],
        ids["sam_referral"],
        world.referral,
    }
    one = staff.get(f"/staff/referrals/{ids['lee_referral']}").json()
    assert one == lee
    _problem(staff.get("/staff/referrals/R999999999"), 404)


def test_approving_a_referral_then_the_line_that_waited_for_it_pays_it(api, staff):
    _, _, ids, engine, _ = api
    number = ids["lee_referral"]
    answer = staff.post(f"/staff/referrals/{number}/approve", json={"reason": "cardiology ok"})
    assert answer.status_code == 200, answer.text
    referral = answer.json()
    assert (referral["status"], referral["decided_by"]) == ("approved", "api:staff")
    assert referral["status_reason"] == "cardiology ok"
    stored = _scalar(engine, select(Referral).where(Referral.referral_number == number))
    assert (stored.status, stored.decided_by) == ("approved", "api:staff")
    history = _scalar(
        engine,
        select(ChangeRecord).where(
            ChangeRecord.entity_id == number, ChangeRecord.action == "referral_approved"
        ),
    )
    assert (history.actor, history.reason) == ("api:staff", "cardiology ok")
    notices = select(Notice.message_id).where(Notice.member_id == stored.member_id)
    with session_factory(engine)() as s:
        assert "referral.notice.approved" in s.scalars(notices).all()
    for verb in ("approve", "deny"):
        again = staff.post(f"/staff/referrals/{number}/{verb}", json={"reason": "again"})
        assert "cannot become" in _problem(again, 409)["title"]
    # the pended line is approved, and the re-run finds the approved referral
    claim_id = ids["lee_referral_claim"]
    answer = staff.post(f"/staff/claims/{claim_id}/lines/1/approve", json={"reason": "referred"})
    assert answer.status_code == 200, answer.text
    decision = answer.json()["lines"][0]["decision"]
    assert (decision["status"], decision["referral_number"]) == ("paid", number)
    assert decision["plan_paid_cents"] == _decision(engine, claim_id).plan_paid_cents


def test_denying_a_referral_tells_the_member_why(api, staff):
    _, _, ids, engine, _ = api
    number = ids["sam_referral"]
    _problem(staff.post(f"/staff/referrals/{number}/deny", json={}), 400)
    _problem(staff.post(f"/staff/referrals/{number}/deny", json={"reason": "\x1c"}), 400)
    answer = staff.post(f"/staff/referrals/{number}/deny", json={"reason": "see the PCP first"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "denied"
    with session_factory(engine)() as s:
        referral = s.scalar(select(Referral).where(Referral.referral_number == number))
        notice = s.scalar(
            select(Notice)
            .where(Notice.member_id == referral.member_id)
            .order_by(Notice.id.desc())
            .limit(1)
        )
    assert (notice.message_id, notice.params["reason"]) == (
        "referral.notice.denied",
        "see the PCP first",
    )
    assert staff.get("/staff/referrals").json() == []
    _problem(staff.post("/staff/referrals/R999999999/deny", json={"reason": "x"}), 404)


def test_prior_authorizations_are_reviewed_the_same_way(api, staff):
    _, world, ids, engine, _ = api
    waiting = staff.get("/staff/prior-authorizations").json()
    assert [a["auth_number"] for a in waiting] == [ids["auth_approve"], ids["auth_deny"]]
    first = waiting[0]
    assert (first["member_number"], first["requesting_npi"], first["procedure_codes"]) == (
        world.ada,
        world.welby_npi,
        ["70551"],
    )
    assert (first["category"], first["status"]) == ("advanced_imaging", "requested")
    approve = f"/staff/prior-authorizations/{ids['auth_approve']}/approve"
    answer = staff.post(approve, json={"reason": "MRI indicated"})
    assert (answer.status_code, answer.json()["status"]) == (200, "approved")
    deny = f"/staff/prior-authorizations/{ids['auth_deny']}/deny"
    assert staff.post(deny, json={"reason": "not indicated"}).json()["status"] == "denied"
    with session_factory(engine)() as s:
        got = dict(
            s.execute(select(PriorAuthorization.auth_number, PriorAuthorization.decided_by)).all()
        )
    assert got == {ids["auth_approve"]: "api:staff", ids["auth_deny"]: "api:staff"}
    _problem(staff.post(approve, json={"reason": "again"}), 409)
    _problem(staff.get("/staff/prior-authorizations/PA999999999"), 404)
    one = staff.get(f"/staff/prior-authorizations/{ids['auth_approve']}").json()
    assert one["decided_by"] == "api:staff"
    assert _reads(engine, f"GET /staff/prior-authorizations/{ids['auth_approve']}")[0][2:4] == (
        "Claim",
        ids["auth_approve"],
    )
    assert staff.get("/staff/prior-authorizations").json() == []


# --- the OpenAPI document ------------------------------------------------------------------------


def _refs(node, found: set[str]):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _matches(template: str, path: str) -> bool:
    parts, given = template.split("/"), path.split("/")
    return len(parts) == len(given) and all(
        t == g or t.startswith("{") for t, g in zip(parts, given, strict=True)
    )


def test_the_openapi_document_describes_every_staff_route_with_money_in_integer_cents(api):
    base, *_ = api
    doc = httpx.get(f"{base}/openapi.json").json()
    staff_paths = {p: ops for p, ops in doc["paths"].items() if p.startswith("/staff/")}
    templates = {(m.upper(), p) for p, ops in staff_paths.items() for m in ops}
    assert len(templates) == len(ROUTES)
    for method, path, _ in ROUTES:  # every route the tests call is documented
        assert any(m == method and _matches(template, path) for m, template in templates), (
            method,
            path,
        )
    names: set[str] = set()
    _refs(staff_paths, names)
    schemas = doc["components"]["schemas"]
    while True:  # the closure of the schemas the staff routes use
        more: set[str] = set()
        for name in names:
            _refs(schemas[name], more)
        if more <= names:
            break
        names |= more
    for name in names:
        for field, spec in schemas[name].get("properties", {}).items():
            types = {spec.get("type")} | {s.get("type") for s in spec.get("anyOf", [])}
            assert "number" not in types, (name, field)  # no floats anywhere
            if field.endswith("_cents"):
                assert "integer" in types, (name, field)
    for path, ops in staff_paths.items():
        for method, op in ops.items():
            assert op["security"] == [{"HTTPBearer": []}], (method, path)
            assert {"401", "403", "4XX"} <= set(op["responses"]), (method, path)
            problem = op["responses"]["4XX"]["content"]
            assert list(problem) == ["application/problem+json"], (method, path)
