"""Many real-time runs of one family at once end where one sequential run ends.

PostgreSQL only (the server serves many writers; SQLite has one writer at a time, and
its path is covered by test_claims_shell). 16 threads each submit and adjudicate their
share of 200 claims of one family, every claim in its own transaction, all at once.
Every real-time run re-runs the whole family plan year under the family lock, so after
the last commit the family must hold exactly what the engine gives for all 200 claims
in one sequential pass: the same accumulators, the same decision for every line, one
current decision per line. Resubmitting every claim, again from 16 threads, must then
change nothing at all.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from openhmo.adjudication.engine import adjudicate
from openhmo.claims.context_db import build_context, claim_lines_frame
from openhmo.claims.intake import submit_claim
from openhmo.claims.models import Accumulator, Claim, ClaimLine, LineDecision
from openhmo.claims.service import adjudicate_claim
from openhmo.db import make_engine, session_factory
from openhmo.history.models import ChangeRecord
from test_claims_shell import CLAIMS_ACTOR, WHEN, claim_in, setup_world, totals

THREADS = 16
CLAIMS = 200
RECEIVED = WHEN + timedelta(days=92)
OUTCOME = (
    "status",
    "allowed_cents",
    "plan_paid_cents",
    "deductible_cents",
    "copay_cents",
    "coinsurance_cents",
    "member_share_cents",
)


def _claims(w) -> list:
    """200 claims of Ada's family: maternity for Ada (deductible, coinsurance, the
    out-of-pocket maximum), PCP visits for the others (copays), and a few duplicates."""
    people = [w.m["Ada"], w.m["Sam"], w.m["Kid0"], w.m["Kid1"]]
    out = []
    for i in range(CLAIMS):
        pcn = f"CONC-{i:03d}"
        if i % 25 == 24:  # the lines of claim i - 4 under another CLM01: OA-18
            out.append(out[i - 4].model_copy(update={"patient_control_number": pcn}))
            continue
        member = people[i % 4]
        code = ("59400", "59425", "59430")[i % 3] if i % 4 == 0 else ("99213", "99214")[i % 2]
        day = date(2026, 1, 2) + timedelta(days=i)
        out.append(claim_in(member, w.pcp.npi, [(day, code, "3500")], pcn=pcn))
    return out


def _in_threads(factory, claims, work) -> None:
    start = threading.Barrier(THREADS)

    def worker(k: int) -> None:
        start.wait()
        for i in range(k, len(claims), THREADS):
            with factory() as session:
                work(session, i, claims[i])
                session.commit()

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(worker, k) for k in range(THREADS)]:
            future.result()


def _submit_and_adjudicate(session, i, claim) -> None:
    stored = submit_claim(
        session, claim, received_at=RECEIVED + timedelta(minutes=i), actor=CLAIMS_ACTOR
    )
    adjudicate_claim(session, stored.claim_id, actor=CLAIMS_ACTOR)


def _state(session) -> tuple:
    return (
        session.scalar(select(func.count()).select_from(Claim)),
        session.scalar(select(func.count()).select_from(LineDecision)),
        session.scalar(select(func.max(LineDecision.id))),
        session.scalar(select(func.count()).select_from(ChangeRecord)),
        session.scalar(select(func.max(ChangeRecord.id))),
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_sixteen_threads_on_one_family_end_as_the_sequential_run(engine):
    # a connection for every thread (the default pool holds 5 + 10)
    pooled = make_engine(engine.url.render_as_string(hide_password=False), pool_size=THREADS)
    try:
        _sixteen_threads(pooled)
    finally:
        pooled.dispose()


def _sixteen_threads(engine) -> None:
    factory = session_factory(engine)
    with factory() as session:
        w = setup_world(session)
        claims = _claims(w)
        family_id = w.family_id

    _in_threads(factory, claims, _submit_and_adjudicate)

    with factory() as session:
        stored = session.scalars(select(Claim).order_by(Claim.id)).all()
        assert len(stored) == CLAIMS
        assert {c.status for c in stored} == {"adjudicated"}
        sequential = adjudicate(
            claim_lines_frame(session, stored), build_context(session, [family_id])
        )
        expected = {
            (r["member_id"], r["plan_year"], r["pool"], r["kind"]): r["amount_cents"]
            for r in sequential.accumulators.iter_rows(named=True)
        }
        assert totals(session, family_id) == expected
        numbers = {c.id: c.claim_id for c in stored}
        now = {
            (numbers[d.claim_id], d.line_number): tuple(getattr(d, f) for f in OUTCOME)
            for d in session.scalars(
                select(LineDecision).where(LineDecision.superseded_at.is_(None))
            )
        }
        want = {
            (r["claim_id"], r["line_number"]): tuple(r[f] for f in OUTCOME)
            for r in sequential.decisions.iter_rows(named=True)
        }
        assert now == want
        lines = session.scalar(select(func.count()).select_from(ClaimLine))
        current = session.scalar(
            select(func.count())
            .select_from(LineDecision)
            .where(LineDecision.superseded_at.is_(None))
        )
        assert current == lines == CLAIMS
        # the run really reached the limits and the duplicates
        statuses = [v[0] for v in now.values()]
        assert statuses.count("denied") == CLAIMS // 25
        ada = w.m["Ada"].id
        assert expected[(ada, 2026, "in_network", "out_of_pocket")] == 600000
        assert expected[(None, 2026, "in_network", "deductible")] == 50000
        before = _state(session)
        accumulators = totals(session, family_id)

    _in_threads(factory, claims, _submit_and_adjudicate)

    with factory() as session:
        assert _state(session) == before
        assert totals(session, family_id) == accumulators
        assert session.scalar(select(func.count()).select_from(Accumulator)) == len(accumulators)
