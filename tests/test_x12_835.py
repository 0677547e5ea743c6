"""The 835 remittance advice (005010X221A1) and the payment run, on SQLite and PostgreSQL.

Every 835 the run writes is judged three ways: `remit835.check_balance` (the guide's
balancing rules, read back from the file), a recomputation here from the database's
own line decisions (parsed with this file's own small reader, not the module's), and
pyx12, which validates it against the 005010X221A1 map. Hypothesis checks that the
pure builder balances whatever claims, lines and adjustments it is given.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.claims.intake import ClaimIn, submit_claim
from openhmo.claims.models import Claim, LineDecision
from openhmo.claims.service import adjudicate_claim
from openhmo.cli.x12_remit import remit
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.interop.x12 import remit835 as x835
from openhmo.network.service import add_organization
from openhmo.referrals.service import request_referral
from openhmo.remittance.models import (
    Remittance,
    RemittanceAdjustment,
    RemittanceRun,
    RemittedClaim,
)
from openhmo.remittance.service import run_remittance
from support import ACTOR, choose_pcp_for, family, load_examples, price_network, provider, valid_npi

try:  # the shared helper, with the repository's extra maps; else pyx12 as it ships
    from x12_validate import pyx12_validate
except ImportError:  # pragma: no cover - depends on what the tree holds
    pyx12_validate = None

CLAIMS_ACTOR = "test:claims-intake"
PAYER_RUN = "test:payment-run"
WHEN = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
RATES = {"99213": 10000, "99214": 15000, "59425": 30000, "59430": 20000, "59400": 300000}


# --- judges --------------------------------------------------------------------------------


def validate(path: Path) -> tuple[bool, list[str]]:
    """pyx12's verdict on a file and the errors it logged."""
    if pyx12_validate is not None:
        return pyx12_validate(path)
    import pyx12.params
    import pyx12.x12n_document

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("pyx12")
    handler = Collect(level=logging.ERROR)
    logger.addHandler(handler)
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=str(path),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            xslt_files=None,
        )
    finally:
        logger.removeHandler(handler)
    return bool(ok) and not messages, messages


def cents(text: str) -> int:
    value = Decimal(text or "0") * 100
    assert value == value.to_integral_value(), text
    return int(value)


@dataclass
class Clp:
    elements: list[str]
    cas: list[tuple[str, str, int]] = field(default_factory=list)  # claim-level
    lines: list[dict] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        e = self.elements + [""] * 10
        return (e[7], e[2], cents(e[3]), cents(e[4]), cents(e[5]))


@dataclass
class Parsed:
    bpr: list[str]
    claims: list[Clp]
    plb: list[tuple[str, int]]
    st: list[str]


def parse(text: str) -> Parsed:
    """This test's own reading of one interchange holding one 835."""
    separator, terminator = text[3], text[105]
    bpr: list[str] = []
    claims: list[Clp] = []
    plb: list[tuple[str, int]] = []
    st: list[str] = []
    for raw in text.split(terminator):
        e = raw.strip().split(separator)
        if e[0] == "ST":
            st = e
        elif e[0] == "BPR":
            bpr = e
        elif e[0] == "CLP":
            claims.append(Clp(e))
        elif e[0] == "SVC":
            claims[-1].lines.append({"svc": e, "cas": []})
        elif e[0] == "CAS":
            triplets = [(e[1], e[n - 1], cents(e[n])) for n in range(3, len(e), 3)]
            target = claims[-1].lines[-1]["cas"] if claims[-1].lines else claims[-1].cas
            target.extend(triplets)
        elif e[0] == "PLB":
            plb += [(e[n - 1], cents(e[n])) for n in range(4, len(e), 2)]
    return Parsed(bpr, claims, plb, st)


def judge(session, tmp_path: Path, run_id: int) -> list[Remittance]:
    """Every 835 of a run: balanced (checker), recomputed from the decisions, pyx12-valid."""
    rows = session.scalars(
        select(Remittance).where(Remittance.run_id == run_id).order_by(Remittance.id)
    ).all()
    assert rows
    for row in rows:
        path = tmp_path / f"judge-{row.trace_number}.x12"
        path.write_text(row.x12, encoding="ascii")
        assert x835.check_balance(path) == []
        ok, errors = validate(path)
        assert ok, errors
        recompute(session, row, parse(row.x12))
    return rows


def recompute(session, row: Remittance, parsed: Parsed) -> None:
    """The 835's claims and totals again, from the line decisions each claim row names."""
    remitted = session.scalars(
        select(RemittedClaim)
        .where(RemittedClaim.remittance_id == row.id)
        .order_by(RemittedClaim.id)
    ).all()
    assert len(remitted) == len(parsed.claims)
    for r, clp in zip(remitted, parsed.claims, strict=True):
        decisions = sorted(
            session.scalars(select(LineDecision).where(LineDecision.id.in_(r.decision_ids))),
            key=lambda d: d.line_number,
        )
        sign = -1 if r.kind == "reversal" else 1
        paid = [d.plan_paid_cents if d.status == "paid" else 0 for d in decisions]
        owed = sum(
            a["amount_cents"] for d in decisions for a in d.adjustments if a["group"] == "PR"
        )
        status = (
            "22"
            if r.kind == "reversal"
            else "4"
            if all(d.status == "denied" for d in decisions)
            else "1"
        )
        claim = session.get(Claim, r.claim_id)
        expected = (
            claim.claim_id,
            status,
            sign * sum(d.charge_cents for d in decisions),
            sign * sum(paid),
            sign * owed,
        )
        assert clp.key == expected
        assert (r.charge_cents, r.paid_cents, r.patient_responsibility_cents) == expected[2:]
        assert clp.cas == []  # every adjustment is a line's
        for line, d, p in zip(clp.lines, decisions, paid, strict=True):
            svc = line["svc"]
            assert (cents(svc[2]), cents(svc[3])) == (sign * d.charge_cents, sign * p)
            want = {}
            for a in d.adjustments:
                key = (a["group"], a["carc"])
                want[key] = want.get(key, 0) + sign * a["amount_cents"]
            assert {(g, c): v for g, c, v in line["cas"]} == want
            assert cents(svc[2]) - sum(v for _, _, v in line["cas"]) == cents(svc[3])
    plb = session.scalars(
        select(RemittanceAdjustment.amount_cents).where(
            RemittanceAdjustment.remittance_id == row.id
        )
    ).all()
    assert sorted(a for _, a in parsed.plb) == sorted(plb)
    total = sum(c.key[3] for c in parsed.claims) - sum(plb)
    assert cents(parsed.bpr[2]) == total == row.total_paid_cents >= 0
    assert parsed.bpr[4] == ("NON" if total == 0 else "CHK") == row.payment_method
    assert parsed.st == ["ST", "835", "0001"]


# --- the world -----------------------------------------------------------------------------


@pytest.fixture
def world(session):
    """Ada's family on the Silver HMO; a PCP (under a group with a TIN), a cardiologist,
    both contracted; a provider in no network."""
    load_examples(session)
    coverage = family(session)
    members = {
        m.first_name: m
        for m in session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        )
    }
    group = add_organization(
        session, name="Harbor Family Practice", tin="04-1234567", npi=valid_npi(950), actor=ACTOR
    )
    pcp = provider(session, last_name="Family")
    pcp.organization_id = group.id
    cardio = provider(session, last_name="Heart", taxonomy="207RC0000X", pcp=False)
    faraway = provider(session, last_name="Faraway", pcp=False, network_key=None)
    price_network(session, [pcp, cardio], RATES)
    choose_pcp_for(session, members.values(), pcp)
    session.commit()
    return SimpleNamespace(session=session, m=members, pcp=pcp, cardio=cardio, faraway=faraway)


def claim(w, member, npi, lines, *, pcn, received=WHEN, adjudicate=True, **kwargs) -> Claim:
    claim_in = ClaimIn(
        patient_control_number=pcn,
        member_number=member.member_number,
        billing_npi=npi,
        diagnosis_codes=["I20.9"],
        lines=[{"service_date": d, "procedure_code": c, "charge": ch} for d, c, ch in lines],
        **kwargs,
    )
    stored = submit_claim(w.session, claim_in, received_at=received, actor=CLAIMS_ACTOR)
    w.session.commit()
    if adjudicate:
        adjudicate_claim(w.session, stored.claim_id, actor=CLAIMS_ACTOR)
        w.session.commit()
    return stored


def pay(w, day: date = date(2026, 6, 5)):
    report = run_remittance(w.session, payment_date=day, actor=PAYER_RUN)
    w.session.commit()
    return report


def clps(report, npi: str) -> list[tuple]:
    (payee,) = [p for p in report.payees if p.remittance.payee.npi == npi]
    return [
        (
            c.payer_claim_control_number,
            c.status,
            c.charge_cents,
            c.paid_cents,
            c.patient_responsibility_cents,
        )
        for c in payee.remittance.claims
    ]


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- the payment run -----------------------------------------------------------------------


def test_a_run_pays_each_payee_once_and_every_835_balances(world, tmp_path):
    ada, sam = world.m["Ada"], world.m["Sam"]
    feb = date(2026, 2, 2)
    visit = claim(world, ada, world.pcp.npi, [(feb, "99213", "150")], pcn="VISIT")
    # maternity, 20% after the $500 deductible: $300 allowed all deductible; then $3,000
    # allowed: the last $200 of deductible and 20% of $2,800
    maternity = claim(
        world, ada, world.pcp.npi, [(feb, "59425", "400"), (feb, "59400", "3500")], pcn="MAT"
    )
    specialist = claim(world, ada, world.cardio.npi, [(feb, "99214", "200")], pcn="SPEC")
    nobody = SimpleNamespace(member_number="OHM999999999-00")  # not our member: CO-31
    stranger = claim(world, nobody, world.cardio.npi, [(feb, "99214", "200")], pcn="WHO")
    out_of_network = claim(world, sam, world.faraway.npi, [(feb, "99214", "200")], pcn="OON")
    emergency = claim(
        world,
        sam,
        world.faraway.npi,
        [(feb, "99214", "900")],
        pcn="ER",
        emergency=True,
        place_of_service="23",
    )
    pended = claim(world, ada, world.pcp.npi, [(feb, "99215", "300")], pcn="PEND")  # no price
    waiting = claim(
        world,
        ada,
        world.pcp.npi,
        [(date(2026, 2, 9), "99213", "150")],
        pcn="NEW",
        adjudicate=False,
    )

    report = pay(world)
    assert report.problems == []
    assert sorted(p.remittance.payee.npi for p in report.payees) == sorted(
        [world.pcp.npi, world.cardio.npi, world.faraway.npi]
    )
    assert clps(report, world.pcp.npi) == [
        (visit.claim_id, "1", 15000, 7500, 2500),
        (maternity.claim_id, "1", 390000, 224000, 106000),
    ]
    assert clps(report, world.cardio.npi) == [
        (specialist.claim_id, "4", 20000, 0, 0),
        (stranger.claim_id, "4", 20000, 0, 0),
    ]
    # out of network: the HMO denies the office visit (CO-242); the emergency is paid on
    # the recognized amount (the QPA, $150) with the in-network $300 ER copay: all the
    # member's, the $750 above it written off (CO-45, No Surprises Act)
    assert clps(report, world.faraway.npi) == [
        (out_of_network.claim_id, "4", 20000, 0, 0),
        (emergency.claim_id, "1", 90000, 0, 15000),
    ]
    remitted = {
        session_claim.claim_id
        for session_claim in world.session.scalars(
            select(Claim).join(RemittedClaim, RemittedClaim.claim_id == Claim.id)
        )
    }
    assert pended.claim_id not in remitted and waiting.claim_id not in remitted
    by_npi = {p.remittance.payee.npi: p.remittance for p in report.payees}
    group = by_npi[world.pcp.npi]
    assert (group.payee.tin, group.total_paid_cents, group.payment_method) == (
        "04-1234567",
        231500,
        "CHK",
    )
    assert by_npi[world.faraway.npi].payment_method == "NON"
    assert report.total_paid_cents == 231500
    rows = judge(world.session, tmp_path, report.run_id)
    assert {r.payee_npi: r.payee_name for r in rows}[world.cardio.npi] == "Pat Heart, MD"
    x12 = {p.remittance.payee.npi: p.x12 for p in report.payees}
    assert "REF*TJ*041234567~" in x12[world.pcp.npi]
    assert "CAS*PR*1*200**2*560~" in x12[world.pcp.npi]  # one CAS per group code
    assert "LQ*HE*N54~" in x12[world.cardio.npi]  # the denial's remark
    assert "CAS*CO*31*200~" in x12[world.cardio.npi]
    assert "NM1*QC*1******MI*OHM999999999-00~" in x12[world.cardio.npi]
    assert "NM1*QC*1*Okafor*Sam****MI*" in x12[world.faraway.npi]
    assert "NM1*IL*1*Okafor*Ada****MI*OHM" in x12[world.faraway.npi]  # Sam is a dependent
    assert "BPR*H*0*C*NON" in x12[world.faraway.npi]

    # a second run finds nothing new: nothing is paid twice
    before = (count(world.session, RemittedClaim), count(world.session, Remittance))
    again = pay(world, date(2026, 6, 12))
    assert (again.run_id, again.payees, again.recorded) == (None, [], 0)
    assert (count(world.session, RemittedClaim), count(world.session, Remittance)) == before
    assert count(world.session, RemittanceRun) == 1

    # the waiting claim, once adjudicated, is paid by the next run, alone
    adjudicate_claim(world.session, waiting.claim_id, actor=CLAIMS_ACTOR)
    world.session.commit()
    later = pay(world, date(2026, 6, 19))
    assert clps(later, world.pcp.npi) == [(waiting.claim_id, "1", 15000, 7500, 2500)]
    judge(world.session, tmp_path, later.run_id)


def test_a_replacement_after_remittance_is_a_reversal_and_a_new_payment(world, tmp_path):
    session, ada = world.session, world.m["Ada"]
    visit = [(date(2026, 3, 2), "99213", "180")]
    original = claim(world, ada, world.cardio.npi, visit, pcn="SPEC")
    first = pay(world)
    assert clps(first, world.cardio.npi) == [(original.claim_id, "4", 18000, 0, 0)]

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
    replacement = claim(
        world,
        ada,
        world.cardio.npi,
        visit,
        pcn="SPEC",
        frequency_code="7",
        replaces_claim_id=original.claim_id,
        referral_number=referral.referral_number,
        received=WHEN + timedelta(days=1),
    )
    second = pay(world, date(2026, 6, 12))
    # the denial reversed (every amount negated), the replacement paid: $100 allowed,
    # $50 specialist copay
    assert clps(second, world.cardio.npi) == [
        (original.claim_id, "22", -18000, 0, 0),
        (replacement.claim_id, "1", 18000, 5000, 5000),
    ]
    rows = judge(session, tmp_path, second.run_id)
    assert "CAS*CO*288*-180~" in rows[0].x12
    kinds = session.execute(
        select(RemittedClaim.claim_id, RemittedClaim.sequence, RemittedClaim.kind).order_by(
            RemittedClaim.id
        )
    ).all()
    assert kinds == [
        (original.id, 1, "payment"),
        (original.id, 2, "reversal"),
        (replacement.id, 1, "payment"),
    ]
    reversal = session.scalars(select(RemittedClaim).where(RemittedClaim.kind == "reversal")).one()
    assert (
        reversal.reverses_id
        == session.scalars(
            select(RemittedClaim.id).where(RemittedClaim.claim_id == original.id)
        ).first()
    )
    assert pay(world, date(2026, 6, 19)).payees == []


def test_a_void_after_remittance_and_a_take_back_larger_than_the_payments(world, tmp_path):
    """A void re-adjudicates the family: the later claims' deductible moves. The 835
    reverses the voided claim, reverses and pays again the re-adjudicated ones; it takes
    back more than it pays, so the shortfall is deferred (PLB WO) and recovered from the
    next payments."""
    session, ada, sam = world.session, world.m["Ada"], world.m["Sam"]
    pcp = world.pcp.npi
    a = claim(world, ada, pcp, [(date(2026, 2, 2), "59425", "400")], pcn="A")
    b = claim(world, ada, pcp, [(date(2026, 3, 2), "59425", "400")], pcn="B")
    c = claim(world, ada, pcp, [(date(2026, 4, 2), "59425", "400")], pcn="C")
    first = pay(world)
    # $300 allowed each: A all deductible; B $200 deductible, 20% of $100; C 20% of $300
    assert clps(first, pcp) == [
        (a.claim_id, "1", 40000, 0, 30000),
        (b.claim_id, "1", 40000, 8000, 22000),
        (c.claim_id, "1", 40000, 24000, 6000),
    ]
    void = claim(
        world,
        ada,
        pcp,
        [(date(2026, 2, 2), "59425", "400")],
        pcn="A",
        frequency_code="8",
        replaces_claim_id=a.claim_id,
        received=WHEN + timedelta(days=2),
    )
    second = pay(world, date(2026, 6, 12))
    assert clps(second, pcp) == [
        (a.claim_id, "22", -40000, 0, -30000),
        (b.claim_id, "22", -40000, -8000, -22000),
        (b.claim_id, "1", 40000, 0, 30000),
        (c.claim_id, "22", -40000, -24000, -6000),
        (c.claim_id, "1", 40000, 8000, 22000),
    ]
    (payee,) = second.payees
    assert payee.remittance.adjustments == (
        x835.ProviderAdjustment("WO", c.claim_id, -16000),
        x835.ProviderAdjustment("WO", b.claim_id, -8000),
    )
    assert (payee.remittance.total_paid_cents, payee.remittance.payment_method) == (0, "NON")
    assert second.recorded == 1  # the void's own line: nothing to remit
    assert (
        session.scalar(select(RemittedClaim.kind).where(RemittedClaim.claim_id == void.id))
        == "no_payment"
    )
    judge(session, tmp_path, second.run_id)

    # the next payment recovers what is owed, oldest first, as far as it goes
    visit = claim(world, sam, pcp, [(date(2026, 5, 4), "99213", "150")], pcn="SAM1")
    third = pay(world, date(2026, 6, 19))
    (payee,) = third.payees
    assert clps(third, pcp) == [(visit.claim_id, "1", 15000, 7500, 2500)]
    assert payee.remittance.adjustments == (x835.ProviderAdjustment("WO", c.claim_id, 7500),)
    assert payee.remittance.total_paid_cents == 0
    judge(session, tmp_path, third.run_id)
    big = claim(world, ada, pcp, [(date(2026, 5, 11), "59400", "3000")], pcn="ADA2")
    fourth = pay(world, date(2026, 6, 26))
    (payee,) = fourth.payees
    paid = payee.remittance.claims[0].paid_cents
    assert payee.remittance.adjustments == (
        x835.ProviderAdjustment("WO", c.claim_id, 8500),
        x835.ProviderAdjustment("WO", b.claim_id, 8000),
    )
    assert payee.remittance.total_paid_cents == paid - 16500 > 0
    assert clps(fourth, pcp)[0][0] == big.claim_id
    judge(session, tmp_path, fourth.run_id)
    owed = session.scalar(select(func.sum(RemittanceAdjustment.amount_cents)))
    assert owed == 0


def test_a_re_adjudication_that_pays_the_same_sends_nothing(world, tmp_path):
    """A late, earlier specialist visit makes the remitted one the referral's second
    visit: its decision is rewritten (the trace says so) but pays the same $50 copay
    visit. Recorded as unchanged; no reversal, no 835 for it."""
    session, ada = world.session, world.m["Ada"]
    referral = request_referral(
        session,
        member=ada,
        referring_provider=world.pcp,
        specialist=world.cardio,
        visits=3,
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 6, 30),
        diagnosis_codes=["I20.9"],
        actor="pcp-office:family",
    )
    session.commit()
    number = referral.referral_number
    later = [(date(2026, 4, 6), "99213", "180")]
    visit = claim(world, ada, world.cardio.npi, later, pcn="V2", referral_number=number)
    first = pay(world)
    assert clps(first, world.cardio.npi) == [(visit.claim_id, "1", 18000, 5000, 5000)]
    (old,) = session.scalars(select(LineDecision).where(LineDecision.claim_id == visit.id))
    earlier = [(date(2026, 3, 9), "99213", "180")]
    late = claim(world, ada, world.cardio.npi, earlier, pcn="V1", referral_number=number)
    session.refresh(old)
    assert old.superseded_at is not None  # the visit was decided again
    second = pay(world, date(2026, 6, 12))
    assert clps(second, world.cardio.npi) == [(late.claim_id, "1", 18000, 5000, 5000)]
    rows = session.scalars(
        select(RemittedClaim).where(RemittedClaim.claim_id == visit.id).order_by(RemittedClaim.id)
    ).all()
    assert [(r.kind, r.remittance_id is None, r.paid_cents) for r in rows] == [
        ("payment", False, 5000),
        ("unchanged", True, 0),
    ]
    assert rows[1].decision_ids != rows[0].decision_ids
    assert second.recorded == 1
    judge(session, tmp_path, second.run_id)
    assert pay(world, date(2026, 6, 19)).payees == []


def test_two_runs_at_once_pay_each_claim_once(world, engine):
    ada, sam = world.m["Ada"], world.m["Sam"]
    for n, member in enumerate((ada, sam, ada, sam)):
        day = date(2026, 2, 2) + timedelta(days=7 * n)
        claim(world, member, world.pcp.npi, [(day, "99213", "150")], pcn=f"V{n}")
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def one_run(day: date) -> None:
        try:
            with session_factory(engine)() as session:
                barrier.wait()
                reports.append(run_remittance(session, payment_date=day, actor=PAYER_RUN))
                session.commit()
        except Exception as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=one_run, args=(date(2026, 6, d),)) for d in (5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(r.claims for r in reports) == [0, 4]
    session = world.session
    assert count(session, RemittedClaim) == 4
    assert session.scalar(select(func.count(func.distinct(RemittedClaim.claim_id)))) == 4
    assert count(session, RemittanceRun) == 1


def test_the_cli_writes_one_balanced_valid_file_per_payee(world, database_url, tmp_path):
    ada = world.m["Ada"]
    feb = date(2026, 2, 2)
    claim(world, ada, world.pcp.npi, [(feb, "99213", "150")], pcn="VISIT")
    claim(world, ada, world.cardio.npi, [(feb, "99214", "200")], pcn="SPEC")
    app = typer.Typer()
    app.command()(remit)
    runner = CliRunner()
    out = tmp_path / "remit"
    args = ["--out", str(out), "--payment-date", "2026-06-05", "--database", database_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.x12"))
    assert len(files) == 2
    for path in files:
        assert x835.check_balance(path) == []
        ok, errors = validate(path)
        assert ok, errors
    assert "$75.00" in result.output and world.pcp.npi in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "Nothing to remit" in again.output
    assert len(list(out.glob("*.x12"))) == 2
    bad = runner.invoke(app, [*args[:2], "--payment-date", "June", *args[4:]])
    assert bad.exit_code == 1


# --- the pure builder ----------------------------------------------------------------------

PAYER = x835.Payer(
    name="TEST PLAN",
    tin="12-3456789",
    address=x835.Address("1 Main St", "Boston", "MA", "02108"),
    technical_contact=x835.Contact("EDI", phone="6175550100"),
    business_contact=x835.Contact("CLAIMS", phone="6175550101", email="claims@example.org"),
    bank=x835.BankAccount("011000015", "123456789"),
)
PAYEE = x835.Payee(
    "CLINIC*~:ONE",
    valid_npi(7),
    "04-1234567",
    x835.Address("2 Main St", "Boston", "MA", "02108"),
    x835.BankAccount("011000028", "987654321"),
)
PATIENT = x835.Person("DOE", "JANE", "OHM000000009-00")


def _line(charge: int, adjustments, *, paid: int | None = None, **kw) -> x835.ServiceLine:
    adjustments = tuple(x835.Adjustment(*a) for a in adjustments)
    if paid is None:
        paid = charge - sum(a.amount_cents for a in adjustments)
    return x835.ServiceLine(charge, paid, date(2026, 2, 2), "99213", **kw, adjustments=adjustments)


def _check_text(text: str) -> list[str]:
    return x835.check_balance(io.BytesIO(text.encode("ascii")))


def test_an_ach_835_with_reversal_and_many_adjustments_is_valid(tmp_path):
    many = [("CO", str(n), 100) for n in range(1, 9)]  # eight reasons of one group: two CAS
    paid = x835.claim_payment(
        patient_control_number="PCN1",
        payer_claim_control_number="C000000001",
        patient=PATIENT,
        insured=x835.Person("DOE", "JOHN", "OHM000000009-00"),
        rendering=x835.Person("SMITH", "ANN", valid_npi(8)),
        lines=[
            _line(10000, [*many, ("PR", "3", 1000)], allowed_cents=2000, remarks=("N130",)),
            x835.ServiceLine(
                5000,
                0,
                date(2026, 2, 3),
                None,
                revenue_code="0450",
                paid_units=Decimal(0),
                submitted_units=Decimal(2),
                adjustments=(x835.Adjustment("CO", "96", 5000),),
                remarks=("M76",),
            ),
        ],
        received=date(2026, 2, 10),
        frequency_code="1",
    )
    assert (paid.charge_cents, paid.paid_cents, paid.patient_responsibility_cents) == (
        15000,
        8200,
        1000,
    )
    back = x835.reversal(paid)
    owed = [(f"C00000000{n}", 1) for n in range(1, 9)]  # eight owed, six recovered now
    remittance = x835.Remittance(
        payer=PAYER,
        payee=PAYEE,
        payment_date=date(2026, 6, 5),
        trace_number="12345",
        method="ACH",
        claims=(back, paid, paid),
        adjustments=x835.provider_adjustments((back, paid, paid), owed),
        production_date=date(2026, 6, 4),
        receiver_id="CLEARINGHOUSE",
    )
    assert remittance.total_paid_cents == 8200 - 6
    text = x835.render(remittance, control=7, moment=datetime(2026, 6, 4, 12, 0))
    path = tmp_path / "ach.835"
    path.write_text(text, encoding="ascii")
    assert x835.check_balance(path) == []
    ok, errors = validate(path)
    assert ok, errors
    assert "BPR*I*81.94*C*ACH*CCP*01*011000015*DA*123456789*1123456789**01*011000028" in text
    assert "N1*PE*CLINIC ONE*XX*" in text  # delimiters taken out of free text
    assert text.count("PLB*") == 1 and text.count("CAS*CO*1*1*") == 2
    assert "SVC*NU:0450*50*0**0**2~" in text  # denied: no unit paid, two submitted
    assert "SVC*NU:0450*-50*0**0**-2~" in text  # its reversal
    assert "REF*EV*CLEARINGHOUSE~" in text


def test_the_checker_names_what_does_not_balance():
    good = x835.render(
        x835.Remittance(
            PAYER,
            PAYEE,
            date(2026, 6, 5),
            "1",
            claims=(
                x835.claim_payment(
                    patient_control_number="P",
                    payer_claim_control_number="C1",
                    patient=PATIENT,
                    lines=[_line(10000, [("CO", "45", 2000), ("PR", "1", 3000)])],
                ),
            ),
        ),
        control=1,
        moment=datetime(2026, 6, 5, 8, 0),
    )
    assert _check_text(good) == []
    problems = _check_text(good.replace("SVC*HC:99213*100*50", "SVC*HC:99213*100*51"))
    assert any("SVC02 100 - CAS 50 != SVC03 51" in p for p in problems)
    problems = _check_text(good.replace("*50*30*HM*", "*50*29*HM*"))
    assert any("CLP05 29 != the PR adjustments 30" in p for p in problems)
    problems = _check_text(good.replace("BPR*I*50*", "BPR*I*49*"))
    assert any("BPR02 49 != sum(CLP04) 50 - sum(PLB) 0" in p for p in problems)
    problems = _check_text(good.replace("CAS*CO*45*20", "CAS*CO*45*20.001"))
    assert any("fraction of a cent" in p for p in problems)
    with pytest.raises(ValueError, match="negative payment"):
        x835.render(
            x835.Remittance(
                PAYER,
                PAYEE,
                date(2026, 6, 5),
                "2",
                claims=(
                    x835.reversal(
                        x835.claim_payment(
                            patient_control_number="P",
                            payer_claim_control_number="C1",
                            patient=PATIENT,
                            lines=[_line(10000, [])],
                        )
                    ),
                ),
            ),
            control=2,
            moment=datetime(2026, 6, 5, 8, 0),
        )


GROUPS = ["CO", "PR", "OA", "PI"]
CARCS = ["1", "2", "3", "45", "96", "242", "288", "18", "16", "119"]
RARCS = ["N54", "M76", "N130", "MA130"]


@st.composite
def service_lines(draw) -> x835.ServiceLine:
    charge = draw(st.integers(1, 10_000_000))
    if draw(st.booleans()):  # denied: the whole charge adjusted away
        group, carc = draw(st.sampled_from(GROUPS)), draw(st.sampled_from(CARCS))
        return _line(
            charge,
            [(group, carc, charge)],
            remarks=tuple(draw(st.lists(st.sampled_from(RARCS), max_size=2))),
        )
    allowed = draw(st.integers(0, charge))
    share = draw(st.integers(0, allowed))
    deductible = draw(st.integers(0, share))
    copay = draw(st.integers(0, share - deductible))
    extra = draw(
        st.lists(
            st.tuples(st.sampled_from(GROUPS), st.sampled_from(CARCS), st.integers(-5000, 5000)),
            max_size=8,
        )
    )
    adjustments = [
        (draw(st.sampled_from(["CO", "PR"])), "45", charge - allowed),
        ("PR", "1", deductible),
        ("PR", "3", copay),
        ("PR", "2", share - deductible - copay),
        *extra,
    ]
    return _line(
        charge, adjustments, allowed_cents=allowed, paid_units=Decimal(draw(st.integers(1, 20)))
    )


@st.composite
def remittances(draw) -> x835.Remittance:
    claims = []
    for n in range(draw(st.integers(0, 6))):
        c = x835.claim_payment(
            patient_control_number=f"PCN{n}",
            payer_claim_control_number=f"C{n:09d}",
            patient=PATIENT,
            lines=draw(st.lists(service_lines(), min_size=1, max_size=5)),
            adjustments=[
                x835.Adjustment(*a)
                for a in draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(GROUPS),
                            st.sampled_from(CARCS),
                            st.integers(-3000, 3000),
                        ),
                        max_size=2,
                    )
                )
            ],
        )
        claims.append(x835.reversal(c) if draw(st.booleans()) else c)
    owed = draw(st.lists(st.integers(1, 500_000), max_size=9))
    outstanding = [(f"C{900 + i:09d}", cents) for i, cents in enumerate(owed)]
    return x835.Remittance(
        PAYER,
        PAYEE,
        date(2026, 6, 5),
        "TRACE1",
        method=draw(st.sampled_from(["CHK", "ACH"])),
        claims=tuple(claims),
        adjustments=x835.provider_adjustments(claims, outstanding),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(remittances())
def test_whatever_the_claims_the_835_balances(remittance):
    text = x835.render(remittance, control=1, moment=datetime(2026, 6, 5, 8, 0))
    assert _check_text(text) == []
    total = remittance.total_paid_cents
    assert total >= 0
    parsed = parse(text)
    assert cents(parsed.bpr[2]) == total
    assert sum(c.key[3] for c in parsed.claims) - sum(a for _, a in parsed.plb) == total
    for c in parsed.claims:
        every = c.cas + [t for line in c.lines for t in line["cas"]]
        assert c.key[2] - sum(v for _, _, v in every) == c.key[3]
        assert c.key[4] == sum(v for g, _, v in every if g == "PR")
    if remittance.claims_paid_cents < 0:  # a take-back: deferred, nothing paid
        assert total == 0 and all(a.amount_cents < 0 for a in remittance.adjustments)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(remittances())
def test_pyx12_accepts_what_the_builder_writes(tmp_path, remittance):
    path = tmp_path / "property.835"
    path.write_text(
        x835.render(remittance, control=1, moment=datetime(2026, 6, 5, 8, 0)), encoding="ascii"
    )
    ok, errors = validate(path)
    assert ok, errors
