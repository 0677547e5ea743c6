"""The FastAPI application: routers, error handlers, and the database it serves."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from fastapi import Depends, FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload, sessionmaker
from starlette.concurrency import run_in_threadpool

from openhmo.access.tokens import signing_key
from openhmo.api import auth, authorize, connected_apps, errors
from openhmo.api.deps import check_token
from openhmo.api.fhir import router as fhir_router
from openhmo.api.staff import router as staff_router
from openhmo.claims.realtime import RealTimeAdjudicator
from openhmo.db import make_engine, session_factory

# No call waits on the database longer than this (PostgreSQL): a caller gets a 503 and the
# server's worker is free again, instead of a search that runs on after its caller left.
STATEMENT_TIMEOUT_MS = 15_000


def warm(sessions: sessionmaker) -> int:
    """Load, before the first caller, what the first calls would otherwise load on their
    time: the ZIP code table (plan designs' service areas), the message catalogue, every
    stored plan's validated design, the eligibility check's statement and the compiled
    pass of cost sharing. Returns the number of plans warmed."""
    from openhmo.adjudication import share_pass
    from openhmo.i18n import catalogue
    from openhmo.interop.eligibility_read import read_eligibility
    from openhmo.plans.models import Plan
    from openhmo.plans.store import design_of
    from openhmo.reference.geo import counties, zip_table

    zip_table()
    counties()
    catalogue()
    share_pass.ready()
    with sessions() as session:
        # Every plan's years in one more query, not one per plan.
        plans = session.scalars(select(Plan).options(selectinload(Plan.years))).all()
        for plan in plans:
            if plan.years:
                design_of(plan)
        # The eligibility statement is large: compiled now, not on the first check's time.
        read_eligibility(session, "", date.today())
    return len(plans)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Without this the first eligibility check after a start waited seconds for the
    # ZIP table and the plan designs (bench_api measures the first call).
    await run_in_threadpool(warm, app.state.sessions)
    # What is loaded now lives as long as the server. A full collection walked all of it
    # (~200,000 objects, ~50 ms with the call waiting): frozen, collections walk only
    # what calls create.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await run_in_threadpool(app.state.adjudicator.close)


def _single_reads(engine: Engine) -> Engine:
    """The engine for a read of one statement outside the call's transaction (the token's
    account, on every call). On PostgreSQL it runs in no transaction: no BEGIN and
    ROLLBACK round trips, and psycopg keeps its prepared statements, which it drops at
    every ROLLBACK (so every statement of every call was parsed and planned again)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def create_app(engine: Engine | None = None, *, key: str | None = None) -> FastAPI:
    """The API over `engine` (default: the configured database), signing tokens with `key`."""
    app = FastAPI(
        title="OpenHMO API",
        version="0.1.0",
        description=(
            "FHIR R4 payer APIs under /fhir (provider directory per Da Vinci PDex Plan-Net, "
            "Patient Access per CARIN Blue Button, referrals, claims and eligibility) and the "
            "staff API under /staff. Every call but the public directory needs an OAuth2 "
            "bearer token from /auth/token."
        ),
        lifespan=_lifespan,
    )
    app.state.engine = engine or make_engine(statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    app.state.sessions = session_factory(app.state.engine)
    app.state.single_reads = _single_reads(app.state.engine)
    app.state.adjudicator = RealTimeAdjudicator(app.state.sessions)
    app.state.signing_key = key or signing_key()
    errors.install(app)
    app.include_router(auth.router)
    app.include_router(authorize.router)
    app.include_router(connected_apps.router)
    # A token that is sent is checked even where none is needed (RFC 6750 section 3.1).
    checked = [Depends(check_token)]
    for area in fhir_router.AREAS:
        app.include_router(area.router, prefix="/fhir", tags=["fhir"], dependencies=checked)
    app.include_router(staff_router.router, prefix="/staff", dependencies=checked)
    return app
