"""CoverageEligibilityRequest/$submit: is this person covered, and for what (a FHIR 270/271).

Who may ask about whom: a member about themself and their minor children; a provider
office or a system (clearinghouse) about anyone it can name by member number and birth
date, as in a 270; staff about anyone. A person the caller may not ask about is answered
exactly as one we do not have (outcome `error`, "no member matches"), so the answer never
tells whether a member number exists. The answer is built by
openhmo.interop.fhir.eligibility from what the 271 answers from (interop.x12.lookup270:
the coverage span of the day, the plan design, the family's accumulators, the PCP), read in
one statement (interop.eligibility_read), and every answer about a member is audited.
"""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller, may_see
from openhmo.api.deps import confirm_account, confirms_account, require, write_transaction
from openhmo.api.fhir.capabilities import Operation, ResourceSupport, declare
from openhmo.api.fhir.inputs import Body, language, refuse
from openhmo.api.fhir.responses import fhir_response
from openhmo.config import plan_identity
from openhmo.db.types import utcnow
from openhmo.i18n import translate
from openhmo.interop.eligibility_read import EligibilityFacts, read_eligibility
from openhmo.interop.fhir.eligibility import (
    EligibilityAsk,
    Found,
    eligibility_response,
    read_request,
)
from openhmo.interop.fhir.reading import FhirInputError, unwrap
from openhmo.interop.x12.answer271 import CATEGORY_SERVICE_TYPE, NETWORK, asked_service_types
from openhmo.plans.design import PlanDesign, PlanYear
from openhmo.plans.store import kept_per_design

router = APIRouter()

SUBMIT = "https://openhmo.org/fhir/OperationDefinition/CoverageEligibilityRequest-submit"
declare(
    ResourceSupport(
        type="CoverageEligibilityRequest",
        interactions=(),
        operations=(Operation("submit", SUBMIT),),
        documentation="POST /fhir/CoverageEligibilityRequest/$submit: coverage on a day and, "
        "for purpose benefits, copays, coinsurance, deductibles and out-of-pocket maximums "
        "with what is used, and the PCP; answered with a CoverageEligibilityResponse. "
        "Providers and systems name the patient by member number and birth date.",
    )
)

Asker = Annotated[Caller, Depends(require("CoverageEligibilityRequest", "write"))]


def _match(
    session: Session, caller: Caller, ask: EligibilityAsk, today: date, day: date
) -> EligibilityFacts | None:
    """What the answer reads about the member asked about, if the caller may ask about
    them (see the module's text)."""
    number, birth = ask.patient.member_number, ask.patient.birth_date
    if number is None:
        return None
    facts = read_eligibility(session, number, day)
    if facts is None:
        return None
    if birth is not None and birth != facts.member.birth_date.isoformat():
        return None
    if caller.role == "member" and not may_see(session, caller, facts.member.id, today):
        return None
    return facts


@cache
def _category_names(lang: str) -> dict[str, str]:
    """Service type -> the category's name in `lang`."""
    return {
        code: translate(f"category.{category.value}", lang)
        for category, code in CATEGORY_SERVICE_TYPE.items()
    }


# The plan's words for its cost shares, per plan year and language (kept_per_design).
_words: dict = {}


def _plan_words(
    design: PlanDesign | None, plan_year: PlanYear | None, lang: str
) -> dict[tuple[str, str], str]:
    """(service type, network) -> the plan's own words for its cost share, in `lang`: the
    same for every member of the plan year, so made once."""
    if design is None or plan_year is None:
        return {}

    def make() -> dict[tuple[str, str], str]:
        described = {}
        for category, benefit in plan_year.benefits.items():
            code = CATEGORY_SERVICE_TYPE.get(category)
            for tier, share in benefit.cost.items():
                if code is not None:
                    described[(code, NETWORK[tier])] = share.describe(lang)
        return described

    return kept_per_design(_words, design, (plan_year.year, lang), make)


def _found(session: Session, facts: EligibilityFacts, ask: EligibilityAsk, lang: str) -> Found:
    day, member = facts.day, facts.member
    eligibility, _, coverage = facts.coverage_of()
    design = facts.design(session, coverage.plan_id) if coverage is not None else None
    plan_year = design.plan_year_on(day) if design is not None else None
    benefits = None
    if eligibility.covered and design is not None:
        benefits = facts.benefits(design, coverage)
    return Found(
        member_number=member.member_number,
        name=member.name,
        day=day,
        status=eligibility.status,
        grace_month=eligibility.grace_month,
        coverage_id=f"{coverage.id}-{member.member_number}" if coverage is not None else None,
        plan_name=design.name if design is not None else None,
        period=(plan_year.starts, plan_year.ends) if plan_year is not None else None,
        benefits=benefits,
        wanted=asked_service_types(ask.categories)[0],
        names=_category_names(lang),
        described=_plan_words(design, plan_year, lang),
    )


@router.post(
    "/CoverageEligibilityRequest/$submit",
    summary="Ask whether a member is covered; answered with a CoverageEligibilityResponse",
)
@confirms_account
async def submit(request: Request, caller: Asker, body: Body):
    lang = language(request)
    try:
        ask = read_request(unwrap(body, "CoverageEligibilityRequest"))
    except FhirInputError as exc:
        refuse(exc)
    # The whole of the database work in one worker thread, its transaction included (an
    # AuditedDB dependency would take two more hops: ~0.1 ms of CPU each, on every call).
    return await run_in_threadpool(_answer, request.app.state.sessions, caller, ask, lang)


def _answer(sessions: sessionmaker, caller: Caller, ask: EligibilityAsk, lang: str):
    """The answer and its audit record, committed before the answer is sent (the read is
    a writing transaction: see api.deps)."""
    today = date.today()
    day = ask.day or today
    # A provider or a system must know the birth date, as in a 270; members and staff need not.
    birth_missing = caller.role in ("provider", "system") and ask.patient.birth_date is None
    with write_transaction(sessions) as session:
        confirm_account(session.connection(), caller)
        facts = None if birth_missing else _match(session, caller, ask, today, day)
        found = _found(session, facts, ask, lang) if facts is not None else None
        response_id = uuid.uuid4().hex
        answer = eligibility_response(
            ask,
            found,
            response_id=response_id,
            day=day,
            identity=plan_identity(),
            created=utcnow(),
            language=lang,
            birth_date_missing=birth_missing,
        )
        if facts is not None:
            record_reads(
                session,
                caller,
                [(facts.member.id, "CoverageEligibilityResponse", response_id)],
                action="read",
                what="POST /fhir/CoverageEligibilityRequest/$submit",
            )
    return fhir_response(answer)
