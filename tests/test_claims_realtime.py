"""The real-time adjudicator (claims.realtime) on SQLite and PostgreSQL.

Callers that ask at the same moment are decided in one engine run; what they get is
what each would have got alone: after every claim of three families is decided through
the adjudicator from eight threads at once, every line's current decision and every
accumulator equal one sequential engine run of all the claims. A run that fails is
retried claim by claim, so one bad claim fails alone; a caller that stops waiting still
has its claim decided.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from openhmo.adjudication.engine import adjudicate
from openhmo.claims.context_db import build_context, claim_lines_frame
from openhmo.claims.intake import ClaimError, submit_claim
from openhmo.claims.models import Claim, LineDecision
from openhmo.claims.realtime import RealTimeAdjudicator, _Ask
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from support import choose_pcp_for, family
from test_claims_concurrency import OUTCOME
from test_claims_shell import CLAIMS_ACTOR, WHEN, claim_in, setup_world, totals

CALLERS = 8


def _world(session):
    """Ada's family of setup_world and two more families with the same PCP."""
    w = setup_world(session)
    families = [w.family_id]
    for _ in range(2):
        coverage = family(session)
        members = session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        ).all()
        choose_pcp_for(session, members, w.pcp)
        families.append(coverage.subscriber_id)
    session.commit()
    people = session.scalars(
        select(Member).where(Member.subscriber_id.in_(families)).order_by(Member.id)
    ).all()
    return w, families, people


def _store(session, w, people, count: int) -> list[str]:
    """`count` claims spread over the families' members: maternity (deductible and
    coinsurance) for the subscribers, PCP visits (copays) for the others."""
    ids = []
    for i in range(count):
        member = people[i % len(people)]
        subscriber = member.id == member.subscriber_id
        code = ("59400", "59425")[i % 2] if subscriber else ("99213", "99214")[i % 2]
        day = date(2026, 1, 5) + timedelta(days=3 * i)
        claim = claim_in(member, w.pcp.npi, [(day, code, "3500")], pcn=f"RT-{i:03d}")
        stored = submit_claim(
            session, claim, received_at=WHEN + timedelta(minutes=i), actor=CLAIMS_ACTOR
        )
        ids.append(stored.claim_id)
    session.commit()
    return ids


@pytest.fixture
def world(engine):
    """Three families' world, and a session factory on it."""
    factory = session_factory(engine)
    with factory() as session:
        w, families, people = _world(session)
    return SimpleNamespace(factory=factory, w=w, families=families, people=people)


def _stored(world, count: int) -> list[str]:
    with world.factory() as session:
        return _store(session, world.w, world.people, count)


def _current(session) -> dict:
    numbers = {c.id: c.claim_id for c in session.scalars(select(Claim))}
    return {
        (numbers[d.claim_id], d.line_number): tuple(getattr(d, f) for f in OUTCOME)
        for d in session.scalars(select(LineDecision).where(LineDecision.superseded_at.is_(None)))
    }


def test_callers_at_once_get_what_one_sequential_run_gives(world):
    factory, families = world.factory, world.families
    ids = _stored(world, 48)
    adjudicator = RealTimeAdjudicator(factory)
    start = threading.Barrier(CALLERS)

    def caller(k: int) -> None:
        start.wait()
        for claim_id in ids[k::CALLERS]:
            assert adjudicator.decide(claim_id, actor=CLAIMS_ACTOR, timeout=120)

    try:
        with ThreadPoolExecutor(CALLERS) as pool:
            for future in [pool.submit(caller, k) for k in range(CALLERS)]:
                future.result()
    finally:
        adjudicator.close()
    # The callers' claims were decided many to a run, not one by one.
    assert adjudicator.done.claims == len(ids)
    assert adjudicator.done.runs < len(ids)
    assert adjudicator.done.largest > 1

    with factory() as session:
        stored = session.scalars(select(Claim).order_by(Claim.id)).all()
        assert {c.status for c in stored} == {"adjudicated"}
        sequential = adjudicate(
            claim_lines_frame(session, stored), build_context(session, families)
        )
        want = {
            (r["claim_id"], r["line_number"]): tuple(r[f] for f in OUTCOME)
            for r in sequential.decisions.iter_rows(named=True)
        }
        assert _current(session) == want
        expected = {
            (r["family_id"], r["member_id"], r["plan_year"], r["pool"], r["kind"]): r[
                "amount_cents"
            ]
            for r in sequential.accumulators.iter_rows(named=True)
        }
        held = {(f, *key): amount for f in families for key, amount in totals(session, f).items()}
        assert held == expected
        # Copays, deductibles and coinsurance were all reached: the run is not trivial.
        assert {v[4] > 0 for v in want.values()} == {True, False}
        assert any(v[3] > 0 for v in want.values()) and any(v[5] > 0 for v in want.values())


def test_a_failing_run_is_retried_claim_by_claim(world):
    factory = world.factory
    good = _stored(world, 4)
    adjudicator = RealTimeAdjudicator(factory)
    asks = [_Ask(good[0], CLAIMS_ACTOR), _Ask("NO-SUCH-CLAIM", CLAIMS_ACTOR)]
    asks += [_Ask(claim_id, CLAIMS_ACTOR) for claim_id in good[1:]]
    adjudicator._decide(asks)  # as the thread decides what it found waiting
    with pytest.raises(ClaimError, match="NO-SUCH-CLAIM"):
        asks[1].done.result(0)
    for ask in asks[:1] + asks[2:]:
        assert ask.done.result(0) is None
    assert adjudicator.done.retried == 1
    assert adjudicator.done.runs == len(good)  # each good claim in a run of its own
    with factory() as session:
        statuses = {c.claim_id: c.status for c in session.scalars(select(Claim))}
    assert statuses == dict.fromkeys(good, "adjudicated")
    # The thread goes on deciding after a failure.
    with factory() as session:
        more = _store(session, world.w, world.people[:1], 1)
    try:
        with pytest.raises(ClaimError):
            adjudicator.decide("NO-SUCH-CLAIM", actor=CLAIMS_ACTOR, timeout=60)
        assert adjudicator.decide(more[0], actor=CLAIMS_ACTOR, timeout=60)
    finally:
        adjudicator.close()


def test_a_caller_that_stops_waiting_still_has_its_claim_decided(world):
    factory = world.factory
    ids = _stored(world, 2)
    adjudicator = RealTimeAdjudicator(factory)
    try:
        assert adjudicator.decide(ids[0], actor=CLAIMS_ACTOR, timeout=0) is False
        assert adjudicator.decide(ids[1], actor=CLAIMS_ACTOR, timeout=120) is True
    finally:
        adjudicator.close()  # decides what was asked before it stops
    with factory() as session:
        statuses = {c.claim_id: c.status for c in session.scalars(select(Claim))}
    assert statuses == dict.fromkeys(ids, "adjudicated")


def test_a_run_reads_its_claims_lines_once(world, engine):
    """The family's claim lines are read once a run, not again for its context."""
    from sqlalchemy import event

    from openhmo.claims.service import adjudicate_claims

    ids = _stored(world, 6)
    reads: list[str] = []

    def seen(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("SELECT") and "FROM claim_line" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with world.factory() as session, session.begin():
            run = adjudicate_claims(session, ids[-1:], actor=CLAIMS_ACTOR)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(run.lines) >= 2  # the family's year, re-run
    assert len(reads) == 1, reads
