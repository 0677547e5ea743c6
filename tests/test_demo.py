"""The demo builds a coherent HMO through the real rules, and the same seed builds the same one."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.billing.models import Invoice, Payment
from openhmo.billing.service import run_billing
from openhmo.cli.main import app
from openhmo.db import make_engine, transaction
from openhmo.demo.generator import DemoConfig, build_demo
from openhmo.enrollment.models import Coverage, Member, MemberAddress, MemberCoverage, PcpAssignment
from openhmo.enrollment.pcp import members_without_pcp
from openhmo.network.models import Provider
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of

FAMILIES = 60


def fingerprint(engine) -> tuple:
    with transaction(engine) as session:
        members = session.execute(
            select(
                Member.member_number,
                Member.first_name,
                Member.last_name,
                Member.birth_date,
                MemberAddress.zip_code,
            )
            .join(MemberAddress, MemberAddress.member_id == Member.id)
            .order_by(Member.member_number, MemberAddress.effective_from)
        ).all()
        coverages = session.execute(
            select(Coverage.id, Plan.plan_key, Coverage.tier, Coverage.termination_date)
            .join(Plan, Plan.id == Coverage.plan_id)
            .order_by(Coverage.id)
        ).all()
        pcps = session.execute(
            select(PcpAssignment.member_id, Provider.npi, PcpAssignment.method)
            .join(Provider, Provider.id == PcpAssignment.provider_id)
            .order_by(PcpAssignment.id)
        ).all()
        billed = session.scalar(select(func.sum(Invoice.amount_cents)))
        paid = session.scalar(select(func.sum(Payment.amount_cents)))
    return tuple(members), tuple(coverages), tuple(pcps), int(billed), int(paid)


@pytest.fixture
def built(engine, tmp_path):
    result = build_demo(engine, DemoConfig(seed=7, families=FAMILIES, workdir=tmp_path / "files"))
    return engine, result


def test_the_demo_builds_a_coherent_hmo(built):
    engine, result = built
    with transaction(engine) as session:
        coverages = session.scalars(select(Coverage)).all()
        assert len(coverages) + len(result.refused) == FAMILIES
        assert all("outside the service area" in reason for reason in result.refused)
        assert session.scalar(select(func.count()).select_from(Provider)) > 300
        # every member of a plan that requires a PCP, covered at year end, has one
        assert members_without_pcp(session, date(2026, 12, 1)) == []
        for plan in session.scalars(select(Plan)):
            design = design_of(plan)
            if not design.rules.service_area_required:
                continue
            for coverage in (c for c in coverages if c.plan_id == plan.id):
                home = session.scalar(
                    select(MemberAddress)
                    .where(MemberAddress.member_id == coverage.subscriber_id)
                    .order_by(MemberAddress.effective_from)
                )
                assert design.service_area.contains(home.zip_code, home.county_fips)
        spans = session.scalars(select(MemberCoverage)).all()
        assert {s.termination_reason for s in spans} <= {
            None,
            "moved_out_of_service_area",
            "non_payment_of_premium",
        }
        assert session.scalar(select(func.count()).select_from(Invoice)) > 10 * len(coverages) * 0.8
        # the year was billed: a billing run over it again bills nothing
        assert run_billing(session, through=date(2026, 12, 31), actor="test").invoices == 0


def test_the_demo_adjudicates_a_year_of_claims_that_balance(built):
    from openhmo.claims.models import Claim, ClaimLine, LineDecision

    engine, result = built
    report = result.claims
    assert report is not None and report.errors == []
    with transaction(engine) as session:
        claims = session.scalar(select(func.count()).select_from(Claim))
        assert claims == report.claims > 10 * 60 * 0.5  # about a dozen a member
        rows = session.execute(
            select(LineDecision, ClaimLine.charge_cents)
            .join(ClaimLine, ClaimLine.id == LineDecision.line_id)
            .where(LineDecision.superseded_at.is_(None))
        ).all()
        statuses = {d.status for d, _ in rows}
        assert {"paid", "denied"} <= statuses
        for decision, charge in rows:
            if decision.status not in ("paid", "denied"):
                continue
            others = sum(
                a["amount_cents"]
                for a in decision.adjustments
                if a["group"] != "PR" or a["carc"] not in ("1", "2", "3")
            )
            assert charge == decision.plan_paid_cents + decision.member_share_cents + others
        assert (
            session.scalar(
                select(func.count()).select_from(Claim).where(Claim.status == "received")
            )
            == 0
        )
    assert sum(report.statuses.values()) == report.lines
    assert report.statuses["pended"] < 0.2 * report.lines


def test_the_same_seed_builds_the_same_hmo(built, tmp_path):
    engine, _ = built
    other = make_engine(f"sqlite:///{tmp_path / 'again.db'}")
    from openhmo.db import migrate

    migrate(other)
    build_demo(other, DemoConfig(seed=7, families=FAMILIES, workdir=tmp_path / "files2"))
    assert fingerprint(engine) == fingerprint(other)
    third = make_engine(f"sqlite:///{tmp_path / 'other-seed.db'}")
    migrate(third)
    build_demo(third, DemoConfig(seed=8, families=FAMILIES, workdir=tmp_path / "files3"))
    assert fingerprint(third)[0] != fingerprint(engine)[0]


def test_the_demo_command_prints_a_summary_and_replaces_only_a_demo(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OPENHMO_DATABASE_URL", url)
    runner = CliRunner()
    args = ["demo", "--families", "25", "--files", str(tmp_path / "files")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    for heading in (
        "Membership, 2026",
        "Provider network",
        "Primary care physicians",
        "A year of premiums",
        str(tmp_path / "cli.db"),
    ):
        assert heading in first.output
    again = runner.invoke(app, args)  # a previous demo is replaced, not added to
    assert again.exit_code == 0, again.output
    with transaction(make_engine(url)) as session:
        families = session.scalar(select(func.count()).select_from(Coverage))
    assert families <= 25
    # a database with other members is not silently replaced
    with transaction(make_engine(url)) as session:
        from openhmo.history.models import ChangeRecord

        session.query(ChangeRecord).filter(ChangeRecord.action == "demo_built").delete()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--reset" in refused.output
