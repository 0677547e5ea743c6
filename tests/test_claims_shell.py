"""Claims intake and the real-time adjudication shell, on SQLite and PostgreSQL.

Real members, providers, contracts and fee schedules in the real database; the engine
itself is not mocked. The Silver HMO (examples/hmo-silver.yaml): PCP visit $25 copay,
specialist $50 copay with the PCP's referral, maternity 20% after a $500 / $1,000
embedded deductible.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import event, func, select, update
from typer.testing import CliRunner

from openhmo.adjudication.engine import adjudicate
from openhmo.claims.context_db import build_context, claim_lines_frame
from openhmo.claims.intake import ClaimError, ClaimIn, submit_claim, submit_claims
from openhmo.claims.models import (
    Accumulator,
    Claim,
    ClaimLine,
    ClaimOverride,
    LineDecision,
    ReferralUsage,
)
from openhmo.claims.service import adjudicate_claim, adjudicate_waiting, approve, deny, queue
from openhmo.cli.main import app
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.history.models import ChangeRecord, PhiAccess
from openhmo.network.pricing import FeeScheduleSnapshot, Rate, RateKey, ServiceLine, allowed_amount
from openhmo.network.service import add_contract, add_fee_schedule, add_organization
from openhmo.referrals.service import request_referral
from support import ACTOR, choose_pcp_for, family, load_examples, price_network, provider, valid_npi

CLAIMS_ACTOR = "test:claims-intake"
STAFF = "staff:claims-examiner"
RATES = {
    "99213": 10000,
    "99214": 15000,
    "59425": 30000,
    "59430": 20000,
    "59400": 300000,
}
WHEN = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def setup_world(session) -> SimpleNamespace:
    """Ada's family on the Silver HMO, her PCP and a cardiologist, both contracted."""
    load_examples(session)
    coverage = family(session)
    members = {
        m.first_name: m
        for m in session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        )
    }
    pcp = provider(session, last_name="Family")
    cardio = provider(session, last_name="Heart", taxonomy="207RC0000X", pcp=False)
    price_network(session, [pcp, cardio], RATES)
    choose_pcp_for(session, members.values(), pcp)
    session.commit()
    return SimpleNamespace(
        session=session, m=members, pcp=pcp, cardio=cardio, family_id=coverage.subscriber_id
    )


@pytest.fixture
def world(session):
    return setup_world(session)


def claim_in(member, npi, lines, *, pcn="PCN-1", dx=("I10",), **kwargs) -> ClaimIn:
    """A claim from (service date, code, charge in dollars) tuples."""
    return ClaimIn(
        patient_control_number=pcn,
        member_number=member.member_number,
        billing_npi=npi,
        diagnosis_codes=list(dx),
        lines=[
            {"service_date": day, "procedure_code": code, "charge": charge}
            for day, code, charge in lines
        ],
        **kwargs,
    )


def submit(w, claim: ClaimIn, received_at: datetime = WHEN) -> Claim:
    stored = submit_claim(w.session, claim, received_at=received_at, actor=CLAIMS_ACTOR)
    w.session.commit()
    return stored


def run(w, claim: Claim) -> list[LineDecision]:
    decisions = adjudicate_claim(w.session, claim.claim_id, actor=CLAIMS_ACTOR)
    w.session.commit()
    return decisions


def adjustments(decision: LineDecision) -> list[tuple[str, str, int]]:
    return [(a["group"], a["carc"], a["amount_cents"]) for a in decision.adjustments]


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def totals(session, family_id: int) -> dict[tuple, int]:
    return {
        (a.member_id, a.plan_year, a.pool, a.kind): a.amount_cents
        for a in session.scalars(select(Accumulator).where(Accumulator.family_id == family_id))
    }


def engine_totals(session, family_id: int, claims: list[Claim]) -> dict[tuple, int]:
    """The accumulators of running only `claims` through the engine, from no carry-in."""
    result = adjudicate(claim_lines_frame(session, claims), build_context(session, [family_id]))
    return {
        (r["member_id"], r["plan_year"], r["pool"], r["kind"]): r["amount_cents"]
        for r in result.accumulators.iter_rows(named=True)
    }


def current(session, claim: Claim) -> list[LineDecision]:
    return session.scalars(
        select(LineDecision)
        .where(LineDecision.claim_id == claim.id, LineDecision.superseded_at.is_(None))
        .order_by(LineDecision.line_number)
    ).all()


# --- intake ------------------------------------------------------------------------------------

GOOD = {
    "patient_control_number": "PCN-1",
    "member_number": "OHM000000001-00",
    "billing_npi": "1234567893",
    "diagnosis_codes": ["I20.9"],
    "lines": [{"service_date": "2026-02-03", "procedure_code": "99213", "charge": "125.00"}],
}


def _line(**changes):
    return {"lines": [{**GOOD["lines"][0], **changes}]}


@pytest.mark.parametrize(
    ("changes", "loc", "words"),
    [
        ({"billing_npi": "12345"}, ("billing_npi",), "10 digits"),
        ({"rendering_npi": "12345678AB"}, ("rendering_npi",), "10 digits"),
        (_line(charge="0"), ("lines", 0, "charge"), "more than $0.00"),
        (_line(charge="-5"), ("lines", 0, "charge"), "more than $0.00"),
        (_line(charge="1.005"), ("lines", 0, "charge"), "not an amount of money"),
        (_line(service_date="2026-02-30"), ("lines", 0, "service_date"), "day value"),
        (_line(modifiers=["25", "59", "GT", "95", "76"]), ("lines", 0, "modifiers"), "at most 4"),
        (_line(modifiers=["2"]), ("lines", 0, "modifiers"), "two letters or digits"),
        (_line(procedure_code="9921"), ("lines", 0, "procedure_code"), "CPT or HCPCS"),
        (_line(procedure_code=None), ("lines", 0, "procedure_code"), "needs a procedure code"),
        (_line(units="0"), ("lines", 0, "units"), "more than 0"),
        (_line(place_of_service="1A"), ("lines", 0, "place_of_service"), "two digits"),
        ({"diagnosis_codes": ["I20.9", "hello"]}, ("diagnosis_codes",), "diagnosis 2"),
        ({"diagnosis_codes": []}, ("diagnosis_codes",), "at least 1"),
        ({"frequency_code": "7"}, ("replaces_claim_id",), "must name the claim"),
        ({"replaces_claim_id": "C000000001"}, ("replaces_claim_id",), "replaces nothing"),
        ({"frequency_code": "2"}, ("frequency_code",), "'1', '7' or '8'"),
        ({"lines": []}, ("lines",), "at least 1"),
        ({"claim_type": "dental"}, ("claim_type",), "professional"),
    ],
)
def test_intake_errors_name_the_field(changes, loc, words):
    with pytest.raises(ValidationError) as caught:
        ClaimIn.model_validate({**GOOD, **changes})
    (error,) = caught.value.errors()
    assert error["loc"] == loc
    assert words in error["msg"]


def test_intake_reads_dollars_exactly_and_normalises_codes():
    claim = ClaimIn.model_validate(
        {
            **GOOD,
            "member_number": "ohm000000001-00",
            "diagnosis_codes": ["i20.9", "E11.9"],
            "frequency_code": 1,
            "place_of_service": 11,
            "lines": [
                {
                    "service_date": date(2026, 2, 3),
                    "procedure_code": "99213",
                    "modifiers": "25, gt",
                    "charge": "$1,250.10",
                    "units": "1.5",
                },
                {"service_date": "2026-02-03", "revenue_code": "120", "charge": 0.1},
            ],
        }
    )
    assert [ln.charge_cents for ln in claim.lines] == [125010, 10]
    assert claim.total_charge_cents == 125020
    assert claim.lines[0].modifiers == ["25", "GT"]
    assert claim.lines[0].units == Decimal("1.500")
    assert claim.lines[1].revenue_code == "0120"
    assert claim.diagnosis_codes == ["I209", "E119"]
    assert claim.member_number == "OHM000000001-00"
    assert claim.place_of_service == "11"
    assert claim.key == "1234567893:PCN-1:1"
    assert [n for n, _ in claim.numbered_lines()] == [1, 2]


def test_a_claim_is_stored_with_its_control_number_and_history(world):
    ada = world.m["Ada"]
    claim = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")]))
    assert claim.claim_id == f"C{claim.id:09d}"
    assert (claim.status, claim.member_id, claim.family_id) == ("received", ada.id, ada.id)
    assert claim.received_at.replace(tzinfo=UTC) == WHEN
    assert claim.total_charge_cents == 15000
    assert [(ln.line_number, ln.charge_cents) for ln in claim.lines] == [(1, 15000)]
    (entry,) = world.session.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "claim")
    ).all()
    assert (entry.entity_id, entry.action, entry.actor) == (
        claim.claim_id,
        "claim_received",
        CLAIMS_ACTOR,
    )
    assert entry.member_id == ada.id


def test_received_at_must_carry_a_time_zone(world):
    with pytest.raises(ClaimError) as caught:
        submit_claim(
            world.session,
            claim_in(world.m["Ada"], world.pcp.npi, [(date(2026, 2, 2), "99213", "150")]),
            received_at=datetime(2026, 3, 1, 9, 0),
            actor=CLAIMS_ACTOR,
        )
    assert caught.value.field == "received_at"
    assert count(world.session, Claim) == 0


def test_a_replacement_names_a_claim_of_the_same_member_and_billing_provider(world):
    ada, sam = world.m["Ada"], world.m["Sam"]
    original = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")]))
    line = [(date(2026, 2, 2), "99213", "140")]
    cases = [
        (
            claim_in(ada, world.pcp.npi, line, frequency_code="7", replaces_claim_id="C999"),
            "no claim",
        ),
        (
            claim_in(
                sam, world.pcp.npi, line, frequency_code="7", replaces_claim_id=original.claim_id
            ),
            f"of member {ada.member_number}",
        ),
        (
            claim_in(
                ada, world.cardio.npi, line, frequency_code="8", replaces_claim_id=original.claim_id
            ),
            f"billed by NPI {world.pcp.npi}",
        ),
    ]
    for bad, words in cases:
        with pytest.raises(ClaimError) as caught:
            submit_claim(world.session, bad, received_at=WHEN, actor=CLAIMS_ACTOR)
        assert caught.value.field == "replaces_claim_id"
        assert words in str(caught.value)
    world.session.rollback()
    assert count(world.session, Claim) == 1
    fix = claim_in(
        ada, world.pcp.npi, line, frequency_code="7", replaces_claim_id=original.claim_id
    )
    submit(world, fix)
    again = claim_in(
        ada,
        world.pcp.npi,
        line,
        pcn="PCN-2",
        frequency_code="7",
        replaces_claim_id=original.claim_id,
    )
    with pytest.raises(ClaimError, match="already replaced or voided by claim"):
        submit_claim(world.session, again, received_at=WHEN, actor=CLAIMS_ACTOR)


# --- idempotency and duplicates ---------------------------------------------------------------


def test_a_resubmission_returns_the_first_claim_and_its_decision(world):
    session, ada = world.session, world.m["Ada"]
    sent = claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")])
    first = submit(world, sent)
    (decision,) = run(world, first)
    assert (decision.status, decision.plan_paid_cents, decision.copay_cents) == ("paid", 7500, 2500)
    counts = [count(session, m) for m in (Claim, LineDecision, ChangeRecord, Accumulator)]
    again = submit(world, sent, received_at=WHEN + timedelta(days=3))
    assert again.id == first.id
    (same,) = run(world, again)
    assert same.id == decision.id
    assert [count(session, m) for m in (Claim, LineDecision, ChangeRecord, Accumulator)] == counts
    # the same key with other content is a mistake, not a resubmission
    changed = claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "160")])
    with pytest.raises(ClaimError) as caught:
        submit_claim(session, changed, received_at=WHEN, actor=CLAIMS_ACTOR)
    assert caught.value.field == "idempotency_key"
    assert first.claim_id in str(caught.value)


def test_a_true_duplicate_is_denied_oa18(world):
    ada = world.m["Ada"]
    line = [(date(2026, 2, 2), "99213", "150")]
    first = submit(world, claim_in(ada, world.pcp.npi, line, pcn="PCN-1"))
    run(world, first)
    duplicate = submit(world, claim_in(ada, world.pcp.npi, line, pcn="PCN-9"))
    (denied,) = run(world, duplicate)
    assert denied.status == "denied"
    assert adjustments(denied) == [("OA", "18", 15000)]
    assert denied.explanation_id == "explain.denied.duplicate"
    assert f"duplicate of claim {first.claim_id}" in denied.trace[-1]["clause"]
    (kept,) = current(world.session, first)
    assert kept.status == "paid"
    assert duplicate.status == "adjudicated"


# --- referrals, voids, replacements ----------------------------------------------------------


def test_a_specialist_visit_without_a_referral_then_with_one(world):
    session, ada = world.session, world.m["Ada"]
    visit = [(date(2026, 3, 2), "99213", "180")]
    original = submit(world, claim_in(ada, world.cardio.npi, visit, dx=("I20.9",)))
    (denied,) = run(world, original)
    assert (denied.status, denied.category) == ("denied", "specialist_visit")
    assert [(a["group"], a["carc"], a["rarc"]) for a in denied.adjustments] == [
        ("CO", "288", "N54")
    ]
    assert denied.explanation_id == "explain.denied.referral_required"
    assert denied.explanation_params["pcp"] == "Pat Family, MD"

    referral = request_referral(
        session,
        member=ada,
        referring_provider=world.pcp,
        specialist=world.cardio,
        visits=2,
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 6, 30),
        diagnosis_codes=["I20.9"],
        actor="pcp-office:family",
    )
    session.commit()
    assert referral.status == "approved"
    fixed = claim_in(
        ada,
        world.cardio.npi,
        visit,
        dx=("I20.9",),
        frequency_code="7",
        replaces_claim_id=original.claim_id,
        referral_number=referral.referral_number,
    )
    replacement = submit(world, fixed, received_at=WHEN + timedelta(days=1))
    (paid,) = run(world, replacement)
    assert (paid.status, paid.allowed_cents, paid.copay_cents, paid.plan_paid_cents) == (
        "paid",
        10000,
        5000,
        5000,
    )
    assert adjustments(paid) == [("CO", "45", 8000), ("PR", "3", 5000)]
    assert paid.referral_number == referral.referral_number
    # the original now says it was replaced, in a new row; its first decision is kept
    session.refresh(original)
    assert original.status == "replaced"
    (now,) = current(session, original)
    assert (now.status, now.explanation_id) == ("replaced", "explain.replaced")
    session.refresh(denied)
    assert (denied.superseded_at is not None, denied.superseded_by) == (True, now.id)
    usage = session.scalar(select(ReferralUsage))
    assert (usage.referral_number, usage.used) == (referral.referral_number, 1)


def test_a_referral_used_up_is_marked_exhausted(world):
    session, ada = world.session, world.m["Ada"]
    referral = request_referral(
        session,
        member=ada,
        referring_provider=world.pcp,
        specialist=world.cardio,
        visits=2,
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 6, 30),
        diagnosis_codes=["I20.9"],
        actor="pcp-office:family",
    )
    session.commit()
    statuses = []
    for i, day in enumerate((date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16))):
        claim = submit(world, claim_in(ada, world.cardio.npi, [(day, "99213", "180")], pcn=f"V{i}"))
        (decision,) = run(world, claim)
        statuses.append((decision.status, decision.adjustments[-1]["carc"]))
    assert statuses == [("paid", "3"), ("paid", "3"), ("denied", "287")]
    session.refresh(referral)
    assert referral.status == "exhausted"
    assert session.scalar(select(ReferralUsage.used)) == 2


def test_a_void_and_a_replacement_give_back_and_re_adjudicate_the_later_claims(world):
    session, ada, sam = world.session, world.m["Ada"], world.m["Sam"]
    pcp = world.pcp.npi
    a = submit(world, claim_in(ada, pcp, [(date(2026, 2, 2), "59425", "400")], pcn="A"))
    b = submit(world, claim_in(ada, pcp, [(date(2026, 3, 2), "59425", "400")], pcn="B"))
    c = submit(world, claim_in(ada, pcp, [(date(2026, 4, 2), "59425", "400")], pcn="C"))
    d = submit(world, claim_in(sam, pcp, [(date(2026, 3, 5), "99214", "200")], pcn="D"))
    for claim in (a, b, c, d):
        run(world, claim)
    # $300 allowed each: A takes $300 of Ada's $500 deductible, B $200 and 20% of $100,
    # C 20% of $300; Sam's visit is a $25 copay.
    shares = [
        (x.deductible_cents, x.coinsurance_cents, x.copay_cents)
        for claim in (a, b, c, d)
        for x in current(session, claim)
    ]
    assert shares == [(30000, 0, 0), (20000, 2000, 0), (0, 6000, 0), (0, 0, 2500)]
    assert totals(session, world.family_id) == engine_totals(session, world.family_id, [a, b, c, d])
    assert totals(session, world.family_id)[(ada.id, 2026, "in_network", "deductible")] == 50000

    void = claim_in(
        ada,
        pcp,
        [(date(2026, 2, 2), "59425", "400")],
        pcn="A",
        frequency_code="8",
        replaces_claim_id=a.claim_id,
    )
    v = submit(world, void, received_at=WHEN + timedelta(days=2))
    (void_line,) = run(world, v)
    assert void_line.status == "void"
    session.refresh(a)
    assert a.status == "voided"
    assert [x.status for x in current(session, a)] == ["voided"]
    assert [
        (x.deductible_cents, x.coinsurance_cents)
        for claim in (b, c)
        for x in current(session, claim)
    ] == [(30000, 0), (20000, 2000)]
    assert totals(session, world.family_id) == engine_totals(session, world.family_id, [b, c, d])

    # B is corrected to the postpartum code ($200): C takes the rest of the deductible
    fix = claim_in(
        ada,
        pcp,
        [(date(2026, 3, 2), "59430", "250")],
        pcn="B",
        frequency_code="7",
        replaces_claim_id=b.claim_id,
    )
    b2 = submit(world, fix, received_at=WHEN + timedelta(days=3))
    run(world, b2)
    session.refresh(b)
    assert b.status == "replaced"
    assert [(x.deductible_cents, x.coinsurance_cents) for x in current(session, b2)] == [(20000, 0)]
    assert [(x.deductible_cents, x.coinsurance_cents) for x in current(session, c)] == [(30000, 0)]
    assert totals(session, world.family_id) == engine_totals(session, world.family_id, [b2, c, d])
    # every decision ever made is still there: one row per change, none updated in place
    assert (
        session.scalar(
            select(func.count()).select_from(LineDecision).where(LineDecision.claim_id == c.id)
        )
        == 3
    )
    history = session.scalars(
        select(ChangeRecord.action).where(
            ChangeRecord.entity == "claim", ChangeRecord.entity_id == c.claim_id
        )
    ).all()
    assert history == [
        "claim_received",
        "claim_adjudicated",
        "claim_readjudicated",
        "claim_readjudicated",
    ]


def test_a_failed_run_leaves_the_database_as_it_was(world):
    session, ada = world.session, world.m["Ada"]
    # a submission rolled back leaves nothing, not even half of it
    history = count(session, ChangeRecord)
    submit_claim(
        session,
        claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")], pcn="GONE"),
        received_at=WHEN,
        actor=CLAIMS_ACTOR,
    )
    session.rollback()
    assert [count(session, m) for m in (Claim, ClaimLine, ChangeRecord)] == [0, 0, history]
    claim = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")]))
    before = [count(session, m) for m in (LineDecision, ChangeRecord, Accumulator)]
    with pytest.raises(ClaimError):
        approve(session, claim.claim_id, 1, allowed_cents=100, reason="fine", actor=STAFF)
    session.rollback()
    assert [count(session, m) for m in (LineDecision, ChangeRecord, Accumulator)] == before
    session.refresh(claim)
    assert claim.status == "received"


# --- the work queue -------------------------------------------------------------------------------


def test_pend_for_pricing_then_approve_with_an_allowed_amount(world):
    session, ada = world.session, world.m["Ada"]
    claim = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99215", "210")]))
    (pended,) = run(world, claim)
    assert (pended.status, pended.pend_reason, pended.plan_paid_cents) == (
        "pended",
        "pricing",
        None,
    )
    assert claim.status == "pended"
    (item,) = queue(session, as_of=WHEN + timedelta(days=4))
    assert (item.claim_id, item.line_number, item.pend_reason) == (claim.claim_id, 1, "pricing")
    assert (item.member_number, item.member_name) == (ada.member_number, "Ada Okafor")
    assert (item.charge_cents, item.age_days, item.procedure_code) == (21000, 4, "99215")

    with pytest.raises(ClaimError) as caught:
        approve(session, claim.claim_id, 1, reason="priced by hand", actor=STAFF)
    assert caught.value.field == "allowed_cents"
    session.rollback()
    with pytest.raises(ClaimError) as caught:
        approve(session, claim.claim_id, 1, allowed_cents=8000, reason="  ", actor=STAFF)
    assert caught.value.field == "reason"
    session.rollback()

    (paid,) = approve(
        session,
        claim.claim_id,
        1,
        allowed_cents=8000,
        reason="priced at the 99214 rate",
        actor=STAFF,
    )
    session.commit()
    assert (paid.status, paid.allowed_cents, paid.copay_cents, paid.plan_paid_cents) == (
        "paid",
        8000,
        2500,
        5500,
    )
    assert adjustments(paid) == [("CO", "45", 13000), ("PR", "3", 2500)]
    assert "priced by staff review: priced at the 99214 rate" in [t["clause"] for t in paid.trace]
    session.refresh(claim)
    assert claim.status == "adjudicated"
    assert queue(session) == []
    override = session.scalar(select(ClaimOverride))
    assert (override.action, override.allowed_cents, override.actor) == ("approve", 8000, STAFF)
    actions = session.scalars(
        select(ChangeRecord.action).where(ChangeRecord.entity_id == claim.claim_id)
    ).all()
    assert "line_approved_by_review" in actions


def test_pend_then_deny_with_a_carc(world):
    session, ada = world.session, world.m["Ada"]
    claim = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99215", "210")]))
    run(world, claim)
    with pytest.raises(ClaimError) as caught:
        deny(session, claim.claim_id, 1, carc="fifty", reason="x", actor=STAFF)
    assert caught.value.field == "carc"
    session.rollback()
    with pytest.raises(ClaimError) as caught:
        deny(session, claim.claim_id, 2, carc="50", reason="x", actor=STAFF)
    assert (caught.value.field, "has no line 2" in str(caught.value)) == ("line_number", True)
    session.rollback()
    (denied,) = deny(
        session, claim.claim_id, 1, carc="50", reason="not medically necessary", actor=STAFF
    )
    session.commit()
    assert denied.status == "denied"
    assert adjustments(denied) == [("CO", "50", 21000)]
    assert denied.explanation_id == "explain.denied.by_review"
    assert denied.explanation_params == {"reason": "not medically necessary"}
    # a line that is no longer pended cannot be resolved again
    with pytest.raises(ClaimError, match="is not pended"):
        approve(session, claim.claim_id, 1, allowed_cents=100, reason="oops", actor=STAFF)


# --- the command line -----------------------------------------------------------------------------


def test_the_cli_end_to_end(world, database_url, monkeypatch, tmp_path):
    ada = world.m["Ada"]
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "staff:jlee")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    base = {
        "member_number": ada.member_number,
        "billing_npi": world.pcp.npi,
        "diagnosis_codes": ["I10"],
        "received_at": "2026-03-01T09:00:00Z",
    }
    claims = [
        {
            **base,
            "patient_control_number": "OFFICE-1",
            "lines": [
                {"service_date": "2026-02-02", "procedure_code": "99213", "charge": "150.00"}
            ],
        },
        {
            **base,
            "patient_control_number": "OFFICE-2",
            "lines": [{"service_date": "2026-02-09", "procedure_code": "99215", "charge": 210}],
        },
        {
            **base,
            "patient_control_number": "BAD",
            "lines": [{"service_date": "2026-02-10", "procedure_code": "99213", "charge": "0"}],
        },
    ]
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": claims}), encoding="utf-8")
    out = cli("claims", "submit", str(path), code=1)
    assert f"{path}: claim 2: lines.0.charge: the charge must be more than $0.00" in out
    assert "2 of 3 claim(s) in; 1 refused" in out
    with session_factory(world.session.get_bind())() as s:
        first, second = s.scalars(select(Claim).order_by(Claim.id)).all()
    assert cli("claims", "submit", str(path), code=1).count("already received") == 2

    out = cli("claims", "adjudicate")
    assert "│ 2      │ 2     │ 1    │ 0      │ 1      │" in out

    out = cli("claims", "show", first.claim_id, "--language", "ja")
    assert "CO-45 $50.00, PR-3 $25.00" in out
    assert "pricing: core-2026: 99213 $100.00 per unit x 1" in out
    assert (
        "支払済み：かかりつけ医の受診について、プランの許容額は$100.00、プランの支払額は$75.00、"
        "あなたの負担額は$25.00です。" in out
    )

    out = cli("claims", "queue")
    assert second.claim_id in out and "pricing" in out and "Ada Okafor" in out

    out = cli("claims", "approve", second.claim_id, "1", "--reason", "by hand", code=1)
    assert "allowed_cents" in out  # a pricing pend needs the allowed amount
    out = cli(
        "claims", "approve", second.claim_id, "1", "--allowed", "$90.00", "--reason", "by hand"
    )
    assert "line 1: paid allowed $90.00, plan paid $65.00, member $25.00" in out
    assert "0 pended line(s)" in cli("claims", "queue")

    out = cli("claims", "accumulators", ada.member_number)
    assert "out_of_pocket" in out and "$50.00" in out

    with session_factory(world.session.get_bind())() as s:
        audited = s.scalars(select(PhiAccess.what).where(PhiAccess.actor == "staff:jlee")).all()
    assert f"claim {first.claim_id}" in audited
    assert "claims accumulators" in audited


# --- the batch, the lock, late enrollment ----------------------------------------------------


def test_adjudicate_waiting_goes_family_by_family(world, engine):
    session, ada = world.session, world.m["Ada"]
    other = family(session, spouse=False, children=0)
    ben = session.get(Member, other.subscriber_id)
    day = [(date(2026, 2, 2), "99213", "150")]
    submit(world, claim_in(ada, world.pcp.npi, day, pcn="1"))
    submit(world, claim_in(ada, world.cardio.npi, day, pcn="2"))
    submit(world, claim_in(ben, world.pcp.npi, [(date(2026, 2, 3), "99215", "200")], pcn="3"))
    stranger = SimpleNamespace(member_number="OHM999999999-00")
    submit(world, claim_in(stranger, world.pcp.npi, day, pcn="4"))
    advanced = []
    report = adjudicate_waiting(
        session_factory(engine), actor=STAFF, progress=advanced.append, families_per_run=1
    )
    assert (report.claims, report.lines, report.families, report.errors) == (4, 4, 3, [])
    assert sorted(advanced) == [1, 1, 2]
    assert dict(report.statuses) == {"paid": 1, "denied": 2, "pended": 1}
    assert dict(report.denials) == {"CO-288": 1, "CO-31": 1}
    session.expire_all()
    assert sorted(session.scalars(select(Claim.status)).all()) == [
        "adjudicated",
        "adjudicated",
        "adjudicated",
        "pended",
    ]
    again = adjudicate_waiting(session_factory(engine), actor=STAFF)
    assert (again.claims, again.families) == (0, 0)


def test_adjudicate_waiting_decides_many_families_in_one_run_alike(world, engine):
    """A batch of families in one engine run decides exactly as one family at a time."""
    session, ada = world.session, world.m["Ada"]
    others = [family(session, spouse=False, children=0) for _ in range(3)]
    members = [ada] + [session.get(Member, c.subscriber_id) for c in others]
    for i, member in enumerate(members):
        for j, (code, doctor) in enumerate([("99213", world.pcp), ("99214", world.cardio)]):
            day = [(date(2026, 2, 2 + j), code, "150")]
            submit(world, claim_in(member, doctor.npi, day, pcn=f"B{i}-{j}"))
    advanced = []
    report = adjudicate_waiting(session_factory(engine), actor=STAFF, progress=advanced.append)
    assert advanced == [8] and report.errors == [] and report.claims == 8
    session.expire_all()
    batch = sorted(
        (d.claim_id, d.status, d.plan_paid_cents, d.member_share_cents)
        for d in session.scalars(select(LineDecision))
    )
    # The same claims again, one family at a time, as replacements of themselves would
    # be: compare with a fresh run of each family through the real-time path.
    for claim in session.scalars(select(Claim)).all():
        adjudicate_claim(session, claim.claim_id, actor=STAFF)
    session.commit()
    session.expire_all()
    current = sorted(
        (d.claim_id, d.status, d.plan_paid_cents, d.member_share_cents)
        for d in session.scalars(select(LineDecision).where(LineDecision.superseded_at.is_(None)))
    )
    assert current == batch
    assert session.scalar(select(func.count()).select_from(LineDecision)) == len(batch)


def test_a_second_run_of_the_family_waits_for_the_first(world, engine):
    session, ada, sam = world.session, world.m["Ada"], world.m["Sam"]
    first = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "59425", "400")]))
    second = submit(
        world, claim_in(sam, world.pcp.npi, [(date(2026, 1, 20), "59425", "400")], pcn="S")
    )
    adjudicate_claim(session, first.claim_id, actor=CLAIMS_ACTOR)  # holds the family's lock
    done = threading.Event()

    def other() -> None:
        with session_factory(engine)() as s:
            adjudicate_claim(s, second.claim_id, actor=CLAIMS_ACTOR)
            s.commit()
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert not done.wait(1.0), "the second run went ahead while the first held the family"
    session.commit()
    thread.join(10)
    assert done.is_set()
    session.expire_all()
    # Sam's earlier visit took the deductible first: the second run re-ran the family
    (a,) = current(session, first)
    (s,) = current(session, second)
    assert (s.deductible_cents, a.deductible_cents) == (30000, 30000)
    assert totals(session, world.family_id)[(None, 2026, "in_network", "deductible")] == 60000


def test_a_claim_received_before_the_member_was_enrolled(world):
    session, ada = world.session, world.m["Ada"]
    claim = submit(world, claim_in(ada, world.pcp.npi, [(date(2026, 2, 2), "99213", "150")]))
    # as if stored before the enrollment reached us
    session.execute(update(Claim).values(member_id=None, family_id=None))
    session.commit()
    session.expire_all()
    (decision,) = run(world, claim)
    assert decision.status == "paid"
    session.refresh(claim)
    assert (claim.member_id, claim.family_id) == (ada.id, ada.id)
    assert session.scalar(
        select(ChangeRecord.action).where(ChangeRecord.action == "claim_member_found")
    )


# --- the context from the database -------------------------------------------------------------


def test_contracts_of_an_organization_cover_its_providers_and_the_qpa_is_the_median(world):
    session, ada = world.session, world.m["Ada"]
    group = add_organization(
        session,
        name="Harbor Family Practice",
        npi=valid_npi(900),
        taxonomy_code="261QP2300X",
        actor=ACTOR,
    )
    member = provider(session, last_name="Grouped", network_key=None)
    member.organization_id = group.id
    solo = provider(session, last_name="Solo", pcp=False, network_key=None)
    medicare = provider(session, last_name="Medicare", pcp=False, network_key=None)
    schedules = {"low": 8000, "high": 13000}
    for key, cents in schedules.items():
        add_fee_schedule(
            session,
            key=key,
            name=key,
            method="per_code",
            rates={RateKey("99213"): Rate(cents)},
            actor=ACTOR,
        )
    add_fee_schedule(
        session,
        key="mpfs-150",
        name="150% of Medicare",
        method="percent_of_medicare",
        percent=Decimal(150),
        medicare_locality="MA-01",
        actor=ACTOR,
    )
    day = date(2026, 1, 1)
    add_contract(
        session,
        "openhmo-core",
        organization=group,
        fee_schedule_key="low",
        effective_from=day,
        actor=ACTOR,
    )
    add_contract(
        session,
        "openhmo-core",
        provider=solo,
        fee_schedule_key="high",
        effective_from=day,
        actor=ACTOR,
    )
    add_contract(
        session,
        "openhmo-core",
        provider=medicare,
        fee_schedule_key="mpfs-150",
        effective_from=day,
        actor=ACTOR,
    )
    session.commit()

    claim = submit(world, claim_in(ada, member.npi, [(date(2026, 2, 2), "99213", "150")]))
    context = build_context(session, [world.family_id], [2026], claims=[claim])
    contracts = {(r["npi"], r["fee_schedule_key"]) for r in context.contracts.iter_rows(named=True)}
    assert contracts == {(member.npi, "low"), (world.pcp.npi, "core-2026")}
    assert set(context.providers["npi"]) == {member.npi, world.pcp.npi}
    everything = build_context(session, None)  # every NPI: the group bills under its own
    contracts = {
        (r["npi"], r["fee_schedule_key"]) for r in everything.contracts.iter_rows(named=True)
    }
    assert {(member.npi, "low"), (group.npi, "low"), (solo.npi, "high")} <= contracts
    group_row = everything.providers.filter(everything.providers["npi"] == group.npi).row(
        0, named=True
    )
    assert (group_row["name"], group_row["entity_type"]) == (
        "Harbor Family Practice",
        "organization",
    )
    # in-network schedules for 99213: low $80, core-2026 $100, high $130, and 150% of
    # the Medicare fee (non-facility MA-01); the QPA is the median of the four
    mpfs = allowed_amount(
        ServiceLine("99213"),
        FeeScheduleSnapshot(
            key="mpfs-150",
            method="percent_of_medicare",
            percent=Decimal(150),
            medicare_locality="MA-01",
        ),
    ).amount_cents
    four = sorted([8000, 10000, 13000, mpfs])
    median = (four[1] + four[2] + 1) // 2
    qpa = {
        (r["procedure_code"], r["billing_class"]): r["amount_cents"]
        for r in context.qpa.iter_rows(named=True)
    }
    # institutional: percent of Medicare cannot price it, so the median of the three
    assert qpa == {("99213", "professional"): median, ("99213", "institutional"): 10000}

    (decision,) = run(world, claim)  # the group's contract prices its provider's visit
    assert (decision.status, decision.network_tier, decision.allowed_cents) == (
        "paid",
        "in_network",
        8000,
    )


def test_a_run_reads_with_a_handful_of_queries_whatever_the_family_has(world, engine):
    """No N+1: the same queries for a family with 3 claims and one with 24."""
    ada, sam = world.m["Ada"], world.m["Sam"]
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731

    def queries_of_one_run(n: int) -> tuple[int, int]:
        for i in range(n):
            who = ada if i % 2 else sam
            day = date(2026, 1, 5) + timedelta(days=i)
            submit(world, claim_in(who, world.pcp.npi, [(day, "99213", "150")], pcn=f"Q{n}-{i}"))
        last = submit(
            world,
            claim_in(ada, world.pcp.npi, [(date(2026, 8, 1), "99214", "200")], pcn=f"Q{n}-last"),
        )
        world.session.expire_all()
        event.listen(engine, "before_cursor_execute", listen)
        try:
            statements.clear()
            build_context(world.session, [world.family_id], [2026], claims=[last])
            # BEGIN opens the transaction on SQLite (db.make_engine); it reads nothing.
            context_queries = sum(s.strip() != "BEGIN" for s in statements)
            statements.clear()
            run(world, last)
            return context_queries, sum(s.lstrip().startswith("SELECT") for s in statements)
        finally:
            event.remove(engine, "before_cursor_execute", listen)

    few = queries_of_one_run(2)
    many = queries_of_one_run(20)
    assert few[0] == many[0] <= 20  # one query per table, however many claims
    # the run writes a row per changed decision, but its reads do not grow with the claims
    assert few[1] == many[1] <= 32


def test_a_batch_of_claims_is_stored_like_one_at_a_time(world):
    """submit_claims: one look-up per batch, the same keys, numbers and history as one by one."""
    session, ada, sam = world.session, world.m["Ada"], world.m["Sam"]
    day = [(date(2026, 2, 2), "99213", "150")]
    first = submit(world, claim_in(ada, world.pcp.npi, day, pcn="K-1"))
    batch = [
        (claim_in(ada, world.pcp.npi, day, pcn="K-1"), WHEN),  # a resubmission
        (claim_in(sam, world.pcp.npi, day, pcn="K-2"), WHEN),
        (claim_in(sam, world.cardio.npi, day, pcn="K-3"), WHEN),
    ]
    stored = submit_claims(session, batch, actor=CLAIMS_ACTOR)
    session.commit()
    assert stored[0].id == first.id
    assert [c.claim_id for c in stored[1:]] == [f"C{c.id:09d}" for c in stored[1:]]
    assert {c.member_id for c in stored[1:]} == {sam.id}
    assert session.scalar(select(func.count()).select_from(Claim)) == 3
    received = session.scalars(
        select(ChangeRecord.entity_id).where(ChangeRecord.action == "claim_received")
    ).all()
    assert sorted(received) == sorted(c.claim_id for c in {*stored})
    again = submit_claims(session, batch, actor=CLAIMS_ACTOR)
    assert [c.id for c in again] == [c.id for c in stored]
    changed = claim_in(sam, world.pcp.npi, [(date(2026, 2, 2), "99214", "150")], pcn="K-2")
    with pytest.raises(ClaimError, match="already used"):
        submit_claims(session, [(changed, WHEN)], actor=CLAIMS_ACTOR)
