"""Referrals and prior authorizations (DOMAIN.md §1) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.adjudication.context import SCHEMAS, Context, empty
from openhmo.cli.main import app
from openhmo.db import session_factory
from openhmo.enrollment.models import Member, Notice
from openhmo.enrollment.pcp import choose_pcp
from openhmo.history.models import ChangeRecord, PhiAccess
from openhmo.i18n import translate
from openhmo.plans.design import ReferralRules
from openhmo.referrals.models import PriorAuthorization, Referral
from openhmo.referrals.service import (
    CLAIMS_ACTOR,
    RULES_ACTOR,
    ReferralError,
    approve_prior_auth,
    approve_referral,
    context_tables,
    decide_referral,
    deny_prior_auth,
    deny_referral,
    expire_prior_auths,
    expire_referrals,
    mark_exhausted,
    prior_auth_queue,
    referral_queue,
    request_prior_auth,
    request_referral,
)
from support import ACTOR, family, load_examples, provider

DAY = date(2026, 2, 2)
STAFF = "staff:utilization-review"


# --- the rules, without a database ----------------------------------------------------------


RULES = ReferralRules(
    auto_approve_max_visits=6, auto_approve_max_days=180, review_specialties=["207X", "208600000X"]
)


def _decide(visits=6, days=180, taxonomies=("207RC0000X",)):
    return decide_referral(
        RULES,
        visits=visits,
        valid_from=DAY,
        valid_to=DAY + timedelta(days=days),
        taxonomies=taxonomies,
    )


def test_within_every_limit_is_approved_at_once():
    decision = _decide()
    assert decision.status == "approved"
    assert "auto-approved" in decision.reason


def test_more_visits_than_the_plan_approves_waits_for_staff():
    decision = _decide(visits=7)
    assert (decision.status, decision.reasons) == ("requested", ("more than 6 visits (7 asked)",))


def test_a_longer_window_than_the_plan_approves_waits_for_staff():
    decision = _decide(days=181)
    assert (decision.status, decision.reasons) == (
        "requested",
        ("valid for 181 days, more than 180",),
    )


@pytest.mark.parametrize(
    ("taxonomy", "reviewed"),
    [
        ("207X00000X", "orthopaedic surgery"),
        ("207XS0117X", "orthopaedic surgery"),  # a specialization of a reviewed one
        ("207X", "orthopaedic surgery"),  # a referral to the specialty
        ("2086S0120X", "surgery"),  # '208600000X' stands for its whole classification
        ("207", "orthopaedic surgery"),  # a broad prefix reaches the reviewed specialty
    ],
)
def test_a_reviewed_specialty_waits_for_staff(taxonomy, reviewed):
    decision = _decide(taxonomies=(taxonomy,))
    assert decision.status == "requested"
    assert f"{reviewed} referrals are reviewed by staff" in decision.reasons


def test_every_reason_is_given():
    decision = _decide(visits=10, days=365, taxonomies=("207X00000X",))
    assert len(decision.reasons) == 3
    assert decision.reason.count(";") == 2


# --- the database shell ------------------------------------------------------------------------


@pytest.fixture
def hmo(session):
    """Ada (subscriber of the Silver HMO from 2026-01-01) with her PCP, and specialists."""
    load_examples(session)
    coverage = family(session)
    m = {
        x.first_name: x
        for x in session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        )
    }
    p = {
        "pcp": provider(session, last_name="Family"),
        "other_pcp": provider(session, last_name="Otherdoc"),
        "cardio": provider(session, last_name="Heart", taxonomy="207RC0000X", pcp=False),
        "ortho": provider(session, last_name="Bones", taxonomy="207X00000X", pcp=False),
        "outside": provider(
            session,
            last_name="Faraway",
            taxonomy="207RC0000X",
            pcp=False,
            network_key="other-network",
        ),
        "ended": provider(
            session,
            last_name="Gone",
            taxonomy="207RC0000X",
            pcp=False,
            contract_to=date(2026, 1, 31),
        ),
        "imaging": provider(session, last_name="Scan", taxonomy="2085R0202X", pcp=False),
    }
    choose_pcp(
        session,
        member=m["Ada"],
        provider=p["pcp"],
        requested_on=date(2026, 1, 1),
        actor=ACTOR,
        initial=True,
    )
    session.commit()
    return session, m, p


def _refer(session, m, p, **kwargs):
    args = {
        "member": m["Ada"],
        "referring_provider": p["pcp"],
        "specialist": p["cardio"],
        "visits": 3,
        "valid_from": DAY,
        "valid_to": DAY + timedelta(days=90),
        "diagnosis_codes": ["I20.9"],
        "actor": "pcp-office:family",
        "source": "api",
    }
    args.update(kwargs)
    referral = request_referral(session, **args)
    session.commit()
    return referral


def _history(session, entity, number):
    return session.scalars(
        select(ChangeRecord)
        .where(ChangeRecord.entity == entity, ChangeRecord.entity_id == number)
        .order_by(ChangeRecord.id)
    ).all()


def test_a_referral_within_the_rules_is_approved_and_recorded(hmo):
    session, m, p = hmo
    referral = _refer(session, m, p)
    assert referral.referral_number == f"R{referral.id:09d}"
    assert referral.status == "approved"
    assert referral.decided_by == RULES_ACTOR and referral.decided_at is not None
    assert referral.diagnosis_codes == ["I209"]  # stored without the dot, as claims carry it
    assert referral.category == "specialist_visit"
    history = _history(session, "referral", referral.referral_number)
    assert [(h.action, h.actor) for h in history] == [
        ("referral_requested", "pcp-office:family"),
        ("referral_approved", RULES_ACTOR),
    ]
    assert history[0].changes["specialist_npi"] == p["cardio"].npi
    assert history[1].changes == {"status": ["requested", "approved"]}
    assert "auto-approved" in history[1].reason
    assert all(h.member_id == m["Ada"].id for h in history)
    notice = session.scalar(select(Notice).where(Notice.message_id == "referral.notice.approved"))
    text = translate(notice.message_id, "sv", **notice.params)
    assert referral.referral_number in text and "Pat Heart, MD" in text


def test_a_referral_without_an_end_date_gets_the_plans_default_window(hmo):
    session, m, p = hmo
    referral = _refer(session, m, p, valid_to=None)
    assert referral.valid_to == DAY + timedelta(days=90)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"visits": 7}, "more than 6 visits (7 asked)"),
        ({"valid_to": DAY + timedelta(days=181)}, "valid for 181 days, more than 180"),
        ({"specialist": "ortho"}, "orthopaedic surgery referrals are reviewed by staff"),
        (
            {"specialist": None, "specialty_prefix": "207X"},
            "orthopaedic surgery referrals are reviewed by staff",
        ),
    ],
)
def test_a_referral_outside_the_rules_waits_for_staff_with_the_reason(hmo, change, reason):
    session, m, p = hmo
    if isinstance(change.get("specialist"), str):
        change = {**change, "specialist": p[change["specialist"]]}
    referral = _refer(session, m, p, **change)
    assert referral.status == "requested"
    assert referral.status_reason == reason
    assert referral.decided_by is None
    assert [r.referral_number for r in referral_queue(session)] == [referral.referral_number]
    assert [h.action for h in _history(session, "referral", referral.referral_number)] == [
        "referral_requested",
        "referral_sent_to_review",
    ]
    assert session.scalar(select(Notice).where(Notice.message_id == "referral.notice.pending"))


def test_a_referral_to_a_specialty_matches_any_provider_of_it(hmo):
    session, m, p = hmo
    referral = _refer(session, m, p, specialist=None, specialty_prefix="207rc")
    assert (referral.status, referral.specialty_prefix) == ("approved", "207RC")
    assert referral.specialist_provider_id is None


REFUSALS = [
    # (what changes, message id, words of the staff reason)
    (
        {"valid_from": date(2025, 12, 1)},
        "referral.refused.not_covered",
        "not covered on 2025-12-01",
    ),
    (
        {"category": "ob_gyn_visit"},
        "referral.refused.not_needed",
        "no referral is needed for ob_gyn_visit: it is direct access",
    ),
    (
        {"category": "emergency_room"},
        "referral.refused.not_needed",
        "no referral is needed for emergency_room",
    ),
    ({"category": "lab"}, "referral.refused.not_needed", "no referral is needed for lab"),
    ({"referring_provider": "other_pcp"}, "referral.refused.not_pcp", "is not Ada Okafor's PCP"),
    ({"member": "Sam"}, "referral.refused.not_pcp", "is not Sam Okafor's PCP"),
    (
        {"specialist": "outside"},
        "referral.refused.specialist_not_in_network",
        "is not in the network of OpenHMO Silver HMO on 2026-02-02",
    ),
    (
        {"specialist": "ended"},
        "referral.refused.specialist_not_in_network",
        "is not in the network",
    ),
    ({"specialist": None}, "referral.refused.no_specialist", "names a specialist or a specialty"),
    (
        {"specialist": None, "specialty_prefix": "ZZZ9"},
        "referral.refused.unknown_specialty",
        "'ZZZ9' is not a NUCC provider taxonomy",
    ),
    ({"diagnosis_codes": []}, "referral.refused.no_diagnosis", "needs a diagnosis"),
    (
        {"diagnosis_codes": ["I20.9", "I25"]},
        "referral.refused.invalid_diagnosis",
        "not a billable ICD-10-CM diagnosis code: I25",
    ),
    ({"visits": 0}, "referral.refused.no_visits", "at least one visit (got 0)"),
    (
        {"valid_to": DAY - timedelta(days=1)},
        "referral.refused.dates",
        "valid_to 2026-02-01 is before valid_from 2026-02-02",
    ),
]


@pytest.mark.parametrize(("change", "message_id", "words"), REFUSALS)
def test_a_referral_the_rules_refuse_is_not_stored(hmo, change, message_id, words):
    session, m, p = hmo
    change = dict(change)
    for key in ("referring_provider", "specialist"):
        if isinstance(change.get(key), str):
            change[key] = p[change[key]]
    if isinstance(change.get("member"), str):
        change["member"] = m[change["member"]]
    with pytest.raises(ReferralError) as caught:
        _refer(session, m, p, **change)
    session.rollback()
    assert caught.value.message_id == message_id
    assert words in caught.value.reason
    for language in ("en", "ja", "sv"):
        assert caught.value.member_text(language).strip()
    assert session.scalar(select(func.count()).select_from(Referral)) == 0


def test_a_plan_without_referrals_refuses_one_as_unnecessary(session):
    load_examples(session)
    coverage = family(session, plan_key="openhmo-silver-epo", children=0, spouse=False)
    ada = session.get(Member, coverage.subscriber_id)
    pcp = provider(session, last_name="Family")
    cardio = provider(session, last_name="Heart", taxonomy="207RC0000X", pcp=False)
    with pytest.raises(ReferralError) as caught:
        request_referral(
            session,
            member=ada,
            referring_provider=pcp,
            specialist=cardio,
            visits=2,
            valid_from=DAY,
            diagnosis_codes=["I10"],
            actor=ACTOR,
        )
    assert "OpenHMO Silver EPO does not require referrals" in caught.value.reason
    assert caught.value.member_text("en") == (
        "No referral is needed for a specialist visit under OpenHMO Silver EPO: "
        "you may go directly to an in-network provider."
    )


def test_member_facing_refusals_in_japanese_and_swedish(hmo):
    session, m, p = hmo
    with pytest.raises(ReferralError) as caught:
        _refer(session, m, p, category="ob_gyn_visit")
    japanese = caught.value.member_text("ja")
    assert "産婦人科の受診" in japanese and "紹介は必要ありません" in japanese
    assert "OpenHMO Silver HMO" in japanese
    swedish = caught.value.member_text("sv")
    assert swedish == (
        "Ingen remiss behövs för ett besök hos gynekolog i OpenHMO Silver HMO: "
        "du kan gå direkt till en vårdgivare i nätverket."
    )
    with pytest.raises(ReferralError) as caught:
        _refer(session, m, p, referring_provider=p["other_pcp"])
    assert "かかりつけ医ではありません" in caught.value.member_text("ja")
    assert "Pat Otherdoc, MD" in caught.value.member_text("ja")
    assert "bara medlemmens egen husläkare" in caught.value.member_text("sv")


def test_staff_approve_and_deny_with_reasons_in_the_history(hmo):
    session, m, p = hmo
    first = _refer(session, m, p, visits=12)
    second = _refer(session, m, p, specialist=p["ortho"])
    approve_referral(session, first.referral_number, actor=STAFF, reason="chronic angina")
    deny_referral(session, second.referral_number, actor=STAFF, reason="try physical therapy first")
    session.commit()
    assert (first.status, first.decided_by, first.status_reason) == (
        "approved",
        STAFF,
        "chronic angina",
    )
    assert (second.status, second.status_reason) == ("denied", "try physical therapy first")
    assert referral_queue(session) == []
    last = _history(session, "referral", first.referral_number)[-1]
    assert (last.action, last.actor, last.reason) == ("referral_approved", STAFF, "chronic angina")
    last = _history(session, "referral", second.referral_number)[-1]
    assert (last.action, last.actor, last.reason) == (
        "referral_denied",
        STAFF,
        "try physical therapy first",
    )
    assert last.changes == {"status": ["requested", "denied"]}
    denied = session.scalar(select(Notice).where(Notice.message_id == "referral.notice.denied"))
    assert "try physical therapy first" in translate(denied.message_id, "ja", **denied.params)


def test_only_a_requested_referral_can_be_decided_and_only_with_a_reason(hmo):
    session, m, p = hmo
    approved = _refer(session, m, p)
    waiting = _refer(session, m, p, visits=9)
    with pytest.raises(ReferralError, match="is approved: it cannot become denied"):
        deny_referral(session, approved.referral_number, actor=STAFF, reason="no")
    with pytest.raises(ReferralError, match="with a reason"):
        approve_referral(session, waiting.referral_number, actor=STAFF, reason="  ")
    with pytest.raises(ReferralError, match="no referral R999"):
        approve_referral(session, "R999", actor=STAFF, reason="x")
    deny_referral(session, waiting.referral_number, actor=STAFF, reason="not indicated")
    with pytest.raises(ReferralError, match="is denied: it cannot become approved"):
        approve_referral(session, waiting.referral_number, actor=STAFF, reason="changed my mind")


def test_approved_referrals_past_their_window_expire(hmo):
    session, m, p = hmo
    short = _refer(session, m, p, valid_to=date(2026, 3, 1))
    long = _refer(session, m, p, valid_to=date(2026, 5, 1))
    waiting = _refer(session, m, p, valid_to=date(2026, 3, 1), visits=8)
    assert expire_referrals(session, date(2026, 3, 1)) == []  # the last valid day
    expired = expire_referrals(session, date(2026, 3, 2))
    session.commit()
    assert [r.referral_number for r in expired] == [short.referral_number]
    assert (short.status, long.status, waiting.status) == ("expired", "approved", "requested")
    last = _history(session, "referral", short.referral_number)[-1]
    assert last.action == "referral_expired" and "valid to 2026-03-01" in last.reason
    # an expired referral is not exhausted afterwards, nor approved again
    assert mark_exhausted(session, short.referral_number, 99).status == "expired"
    with pytest.raises(ReferralError, match="is expired: it cannot become approved"):
        approve_referral(session, short.referral_number, actor=STAFF, reason="x")


def test_an_approved_referral_whose_visits_are_used_is_exhausted(hmo):
    session, m, p = hmo
    referral = _refer(session, m, p, visits=3)
    assert mark_exhausted(session, referral.referral_number, 2).status == "approved"
    assert mark_exhausted(session, referral.referral_number, 3).status == "exhausted"
    session.commit()
    last = _history(session, "referral", referral.referral_number)[-1]
    assert (last.action, last.actor, last.reason) == (
        "referral_exhausted",
        CLAIMS_ACTOR,
        "3 of 3 visit(s) used",
    )
    # an exhausted referral neither expires nor is exhausted twice
    assert expire_referrals(session, date(2027, 1, 1)) == []
    assert mark_exhausted(session, referral.referral_number, 5).status == "exhausted"
    assert len(_history(session, "referral", referral.referral_number)) == 3


# --- prior authorizations ----------------------------------------------------------------------


def _authorize(session, m, p, **kwargs):
    args = {
        "member": m["Ada"],
        "requesting_provider": p["pcp"],
        "servicing_provider": p["imaging"],
        "category": "advanced_imaging",
        "procedure_codes": ["70551"],
        "diagnosis_codes": ["G43.909"],
        "valid_from": DAY,
        "valid_to": DAY + timedelta(days=30),
        "units": 1,
        "actor": "pcp-office:family",
    }
    args.update(kwargs)
    auth = request_prior_auth(session, **args)
    session.commit()
    return auth


def test_a_prior_authorization_waits_for_staff_who_approve_or_deny_it(hmo):
    session, m, p = hmo
    first = _authorize(session, m, p)
    second = _authorize(session, m, p, procedure_codes=["72148"], diagnosis_codes=["M54.50"])
    assert first.auth_number == f"PA{first.id:09d}"
    assert (first.status, first.procedure_codes, first.diagnosis_codes) == (
        "requested",
        ["70551"],
        ["G43909"],
    )
    assert "staff review" in first.status_reason
    assert [a.auth_number for a in prior_auth_queue(session)] == [
        first.auth_number,
        second.auth_number,
    ]
    approve_prior_auth(session, first.auth_number, actor=STAFF, reason="meets imaging criteria")
    deny_prior_auth(session, second.auth_number, actor=STAFF, reason="conservative care first")
    session.commit()
    assert (first.status, first.decided_by) == ("approved", STAFF)
    assert second.status == "denied"
    assert [
        (h.action, h.reason) for h in _history(session, "prior_authorization", first.auth_number)
    ] == [
        (
            "prior_auth_requested",
            "waits for staff review: the plan has no automatic approval of prior authorizations",
        ),
        ("prior_auth_approved", "meets imaging criteria"),
    ]
    with pytest.raises(ReferralError, match="is denied: it cannot become approved"):
        approve_prior_auth(session, second.auth_number, actor=STAFF, reason="x")
    assert expire_prior_auths(session, DAY + timedelta(days=30)) == []
    assert expire_prior_auths(session, DAY + timedelta(days=31)) == [first]
    assert first.status == "expired"
    assert _history(session, "prior_authorization", first.auth_number)[-1].action == (
        "prior_auth_expired"
    )
    notices = session.scalars(
        select(Notice).where(Notice.message_id.like("prior_auth.notice.%")).order_by(Notice.id)
    ).all()
    assert [n.message_id for n in notices] == [
        "prior_auth.notice.pending",
        "prior_auth.notice.pending",
        "prior_auth.notice.approved",
        "prior_auth.notice.denied",
    ]


def test_no_prior_authorization_is_needed_in_network_for_a_category_without_one(hmo):
    session, m, p = hmo
    with pytest.raises(ReferralError) as caught:
        _authorize(session, m, p, category="lab", procedure_codes=["80053"])
    assert "no prior authorization is needed" in caught.value.reason
    assert caught.value.message_id == "prior_auth.refused.not_needed"
    assert "臨床検査" in caught.value.member_text("ja")
    assert "laboratorieprover" in caught.value.member_text("sv")
    session.rollback()
    # from a provider outside the network the request is taken, for staff to decide
    outside = _authorize(
        session, m, p, category="lab", procedure_codes=["80053"], servicing_provider=p["outside"]
    )
    assert outside.status == "requested" and "not in the network" in outside.status_reason


@pytest.mark.parametrize(
    ("change", "message_id"),
    [
        ({"valid_from": date(2025, 6, 1)}, "prior_auth.refused.not_covered"),
        ({"procedure_codes": ["7055"]}, "prior_auth.refused.invalid_procedure"),
        ({"diagnosis_codes": []}, "prior_auth.refused.no_diagnosis"),
        ({"diagnosis_codes": ["G43"]}, "prior_auth.refused.invalid_diagnosis"),
        ({"units": 0}, "prior_auth.refused.no_units"),
        ({"valid_to": DAY - timedelta(days=3)}, "prior_auth.refused.dates"),
    ],
)
def test_a_prior_authorization_the_rules_refuse_is_not_stored(hmo, change, message_id):
    session, m, p = hmo
    with pytest.raises(ReferralError) as caught:
        _authorize(session, m, p, **change)
    session.rollback()
    assert caught.value.message_id == message_id
    assert all(caught.value.member_text(lang).strip() for lang in ("en", "ja", "sv"))
    assert session.scalar(select(func.count()).select_from(PriorAuthorization)) == 0


# --- what adjudication reads -------------------------------------------------------------------


def test_context_tables_have_the_engine_schemas_and_rows(hmo):
    session, m, p = hmo
    approved = _refer(session, m, p)
    to_specialty = _refer(session, m, p, specialist=None, specialty_prefix="207RC", visits=9)
    denied = _refer(session, m, p, specialist=p["ortho"])
    deny_referral(session, denied.referral_number, actor=STAFF, reason="no")
    used_up = _refer(session, m, p, visits=1)
    mark_exhausted(session, used_up.referral_number, 1)
    auth = _authorize(session, m, p)
    session.commit()

    referrals, prior_auths = context_tables(session)
    assert dict(referrals.schema) == SCHEMAS["referrals"]
    assert dict(prior_auths.schema) == SCHEMAS["prior_auths"]
    Context(
        designs={}, eligibility=empty("eligibility"), referrals=referrals, prior_auths=prior_auths
    )
    rows = {r["referral_number"]: r for r in referrals.to_dicts()}
    assert denied.referral_number not in rows  # can never match a claim
    assert rows[approved.referral_number] == {
        "referral_number": approved.referral_number,
        "member_id": m["Ada"].id,
        "referring_npi": p["pcp"].npi,
        "specialist_npi": p["cardio"].npi,
        "specialty_prefix": None,
        "category": "specialist_visit",
        "visits": 3,
        "valid_from": DAY,
        "valid_to": DAY + timedelta(days=90),
        "status": "approved",
    }
    assert rows[to_specialty.referral_number]["specialist_npi"] is None
    assert rows[to_specialty.referral_number]["specialty_prefix"] == "207RC"
    assert rows[to_specialty.referral_number]["status"] == "requested"
    # the engine counts the visits itself (CO-287): an exhausted referral stays approved there
    assert rows[used_up.referral_number]["status"] == "approved"
    assert prior_auths.to_dicts() == [
        {
            "auth_number": auth.auth_number,
            "member_id": m["Ada"].id,
            "category": "advanced_imaging",
            "procedure_codes": ["70551"],
            "valid_from": DAY,
            "valid_to": DAY + timedelta(days=30),
            "status": "requested",
        }
    ]
    only_sam, none = context_tables(session, member_ids=[m["Sam"].id])
    assert only_sam.height == 0 and none.height == 0
    assert context_tables(session, member_ids=[m["Ada"].id])[0].height == 3
    assert isinstance(only_sam, pl.DataFrame)


# --- the command line --------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli(hmo, database_url, monkeypatch):
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "staff:jlee")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["referrals", *args])
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_the_referral_commands_end_to_end(cli, hmo, engine):
    _session, m, p = hmo
    ada, pcp = m["Ada"].member_number, p["pcp"].npi
    base = ["--from", "2026-02-02", "--diagnosis", "I20.9"]
    out = cli("request", ada, pcp, "--specialist", p["cardio"].npi, "--visits", "3", *base)
    assert "R000000001 approved" in out and "auto-approved" in out
    out = cli(
        "request", ada, pcp, "--specialty", "207X", "--visits", "10", "--to", "2026-04-01", *base
    )
    assert "R000000002 requested" in out
    assert "more than 6 visits (10 asked)" in out and "orthopaedic surgery" in out
    out = cli(
        "request",
        ada,
        pcp,
        "--category",
        "ob_gyn_visit",
        "--specialist",
        p["cardio"].npi,
        "--visits",
        "1",
        *base,
        code=1,
    )
    assert "no referral is needed for ob_gyn_visit" in out
    out = cli(
        "request",
        ada,
        p["other_pcp"].npi,
        "--specialist",
        p["cardio"].npi,
        "--visits",
        "1",
        *base,
        code=1,
    )
    assert "is not Ada Okafor's PCP on 2026-02-02" in out

    out = cli("queue")
    assert "R000000002" in out and "R000000001" not in out and "1 waiting" in out
    cli("deny", "R000000001", "--reason", "x", code=1)
    out = cli("approve", "R000000002", "--reason", "surgical consult needed")
    assert "R000000002 approved" in out
    assert "0 waiting" in cli("queue")
    out = cli("show", "R000000002")
    for words in (
        "Orthopaedic Surgery (207X)",
        "referral_sent_to_review",
        "referral_approved",
        "staff:jlee",
        "surgical consult needed",
        "I209",
    ):
        assert words in out
    out = cli("expire", "--as-of", "2026-05-10")
    assert "2 referral(s) expired R000000001 R000000002" in out
    assert "expired" in cli("show", "R000000001")
    cli("show", "R404", code=1)

    out = cli(
        "auth",
        "request",
        ada,
        pcp,
        "--servicing",
        p["imaging"].npi,
        "--category",
        "advanced_imaging",
        "--procedure",
        "70551",
        "--diagnosis",
        "G43.909",
        "--from",
        "2026-02-02",
        "--to",
        "2026-03-02",
        "--units",
        "1",
    )
    assert "PA000000001 requested" in out
    out = cli(
        "auth",
        "request",
        ada,
        pcp,
        "--category",
        "lab",
        "--procedure",
        "80053",
        "--diagnosis",
        "E11.9",
        "--from",
        "2026-02-02",
        "--to",
        "2026-03-02",
        code=1,
    )
    assert "no prior authorization is needed" in out
    assert "PA000000001" in cli("auth", "queue")
    assert "PA000000001 approved" in cli("auth", "approve", "PA000000001", "--reason", "ok")
    out = cli("auth", "show", "PA000000001")
    assert "prior_auth_approved" in out and "70551" in out
    assert "1 prior authorization(s) expired PA000000001" in cli(
        "auth", "expire", "--as-of", "2026-03-03"
    )

    with session_factory(engine)() as s:
        referrals = {r.referral_number: r for r in s.scalars(select(Referral))}
        assert referrals["R000000001"].source == "cli"
        assert referrals["R000000002"].decided_by == "staff:jlee"
        assert s.scalar(select(func.count()).select_from(Referral)) == 2  # refusals not stored
        reads = s.scalars(select(PhiAccess).where(PhiAccess.actor == "staff:jlee")).all()
        assert {r.what for r in reads} >= {"referral R000000002", "prior authorization PA000000001"}
