"""Plans for staff: the stored plan designs, their plan years, and their premiums.

The design is given as the plan store holds it: the validated PlanDesign document of
every plan year (`plans.store.design_of`), amounts written as the design files write
them. Premiums are the `plan_premium` rows billing reads, in integer cents.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from openhmo.access.visibility import Caller
from openhmo.api.deps import DB
from openhmo.api.errors import ApiError
from openhmo.api.staff.common import Out, errors, staff
from openhmo.plans.models import Plan, PlanYear
from openhmo.plans.store import UnknownPlan, design_of, get_plan

router = APIRouter()

PlanKey = Annotated[
    str,
    Path(
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}$",
        description="the plan's id, e.g. openhmo-silver-hmo",
        examples=["openhmo-silver-hmo"],
    ),
]


class PremiumOut(Out):
    year: int
    tier: str = Field(description="coverage tier: self_only, self_plus_spouse, ...")
    monthly_cents: int = Field(description="the monthly premium, in cents")


class PlanYearOut(Out):
    year: int
    starts: date
    ends: date
    design_digest: str = Field(description="SHA-256 of the year's stored design document")
    premiums: list[PremiumOut]


class PlanSummary(Out):
    key: str
    name: str
    type: str = Field(description="HMO, EPO, POS, PPO or indemnity")
    metal_level: str | None
    network_key: str | None
    hios_plan_id: str | None
    years: list[int]


class ServiceArea(Out):
    counties: list[str] = Field(description="5-digit FIPS county codes")
    zip_codes: list[str]


class PlanDetail(PlanSummary):
    source: str = Field(description="where the design was loaded from")
    service_area: ServiceArea
    plan_years: list[PlanYearOut]
    design: dict[str, Any] = Field(
        description="the validated plan design of every plan year, as the plan store holds it"
    )


def _premiums(plan_year: PlanYear) -> list[PremiumOut]:
    return [
        PremiumOut(year=plan_year.year, tier=p.tier, monthly_cents=p.monthly_cents)
        for p in sorted(plan_year.premiums, key=lambda p: p.monthly_cents)
    ]


def _summary(plan: Plan) -> dict[str, Any]:
    metal = design_of(plan).metal_level if plan.years else None
    return {
        "key": plan.plan_key,
        "name": plan.name,
        "type": plan.plan_type,
        "metal_level": getattr(metal, "value", metal),
        "network_key": plan.network_key,
        "hios_plan_id": plan.hios_plan_id,
        "years": [y.year for y in plan.years],
    }


def _plan(session, key: str) -> Plan:
    try:
        return get_plan(session, key)
    except UnknownPlan as exc:
        raise ApiError(404, str(exc), expression=["key"]) from None


@router.get(
    "/plans",
    response_model=list[PlanSummary],
    summary="Every stored plan",
    responses=errors(),
)
def list_plans(session: DB, caller: Annotated[Caller, staff("Plan", "read")]) -> Any:
    plans = session.scalars(
        select(Plan).options(selectinload(Plan.years)).order_by(Plan.plan_key)
    ).all()
    return [_summary(p) for p in plans]


@router.get(
    "/plans/{key}",
    response_model=PlanDetail,
    summary="A plan: its design, plan years and premiums",
    responses=errors(_404="no plan with this key"),
)
def show_plan(key: PlanKey, session: DB, caller: Annotated[Caller, staff("Plan", "read")]) -> Any:
    plan = _plan(session, key)
    entries = plan.service_area
    return {
        **_summary(plan),
        "source": plan.source,
        "service_area": {
            "counties": sorted(e.code for e in entries if e.kind == "county"),
            "zip_codes": sorted(e.code for e in entries if e.kind == "zip"),
        },
        "plan_years": [
            {
                "year": y.year,
                "starts": y.starts,
                "ends": y.ends,
                "design_digest": y.design_digest,
                "premiums": _premiums(y),
            }
            for y in plan.years
        ],
        "design": design_of(plan).model_dump(mode="json") if plan.years else {},
    }


@router.get(
    "/plans/{key}/premiums",
    response_model=list[PremiumOut],
    summary="A plan's monthly premiums by plan year and coverage tier",
    responses=errors(_404="no plan with this key"),
)
def plan_premiums(
    key: PlanKey,
    session: DB,
    caller: Annotated[Caller, staff("Plan", "read")],
    year: Annotated[int | None, Query(ge=1900, le=9999, description="only this plan year")] = None,
) -> Any:
    plan = _plan(session, key)
    return [p for y in plan.years if year in (None, y.year) for p in _premiums(y)]
