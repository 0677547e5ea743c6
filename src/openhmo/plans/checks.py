"""Checks of a plan design that read across its fields: the law, and its own consistency.

Each check returns issues with the path of the field at fault, so that the loader can
name the file, the line and the field. A design with any issue is not stored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from openhmo.categories import ServiceCategory
from openhmo.money import Cents, format_money, parse_money
from openhmo.plans.design import REQUIRED_TIERS, PlanDesign, TierName

Path = tuple[str | int, ...]

# Direct access the law guarantees in a non-grandfathered plan (45 CFR 147.138 for
# emergencies and OB/GYN; ACA §2713 preventive services; screening mammography).
STATUTORY_DIRECT_ACCESS = (
    ServiceCategory.EMERGENCY_ROOM,
    ServiceCategory.OB_GYN_VISIT,
    ServiceCategory.SCREENING_MAMMOGRAPHY,
    ServiceCategory.PREVENTIVE,
)

# The essential health benefits a non-grandfathered plan must cover (ACA §1302(b)),
# as the service categories that carry them.
ESSENTIAL_HEALTH_BENEFITS = (
    ServiceCategory.PREVENTIVE,
    ServiceCategory.PCP_VISIT,
    ServiceCategory.SPECIALIST_VISIT,
    ServiceCategory.EMERGENCY_ROOM,
    ServiceCategory.AMBULANCE,
    ServiceCategory.INPATIENT,
    ServiceCategory.OUTPATIENT_SURGERY,
    ServiceCategory.MATERNITY,
    ServiceCategory.MENTAL_HEALTH_OUTPATIENT,
    ServiceCategory.MENTAL_HEALTH_INPATIENT,
    ServiceCategory.REHABILITATION,
    ServiceCategory.LAB,
    ServiceCategory.DRUGS_GENERIC,
)


@dataclass(frozen=True)
class Issue:
    path: Path
    message: str


@cache
def aca_limits() -> dict[int, tuple[Cents, Cents]]:
    """Plan year -> (self-only, other than self-only) out-of-pocket limit."""
    raw = yaml.safe_load(
        resources.files("openhmo.plans").joinpath("aca_limits.yaml").read_text(encoding="utf-8")
    )
    return {
        int(year): (parse_money(v["self_only"]), parse_money(v["other_than_self_only"]))
        for year, v in raw.items()
    }


def check_design(design: PlanDesign) -> list[Issue]:
    issues: list[Issue] = []
    issues += _rules(design)
    for i in range(len(design.plan_years)):
        issues += _plan_year(design, i)
    issues += _overlapping_years(design)
    return issues


def _rules(design: PlanDesign) -> list[Issue]:
    issues = []
    if design.rules.service_area_required and design.service_area.empty:
        issues.append(
            Issue(
                ("service_area",),
                f"a {design.type} plan whose members must live in its service area "
                "needs counties or zip_codes",
            )
        )
    if design.rules.referral_required and not design.grandfathered:
        for i, category in enumerate(design.referrals.required_for):
            if category in STATUTORY_DIRECT_ACCESS:
                issues.append(
                    Issue(
                        ("referrals", "required_for", i),
                        f"{category} cannot need a referral: the law gives members "
                        "direct access to it (45 CFR 147.138, ACA §2713)",
                    )
                )
    if (design.rules.pcp_required or design.rules.referral_required) and not design.network:
        issues.append(Issue(("network",), "a plan with PCPs or referrals needs a provider network"))
    return issues


def _plan_year(design: PlanDesign, i: int) -> list[Issue]:
    plan_year = design.plan_years[i]
    base: Path = ("plan_years", i)
    issues = []
    if plan_year.ends < plan_year.starts:
        issues.append(Issue((*base, "ends"), f"ends ({plan_year.ends}) before it starts"))

    required = REQUIRED_TIERS[design.rules.out_of_network]
    for tier in required - plan_year.tiers.keys():
        issues.append(Issue((*base, "tiers"), _missing_tier(design, tier)))
    for tier in plan_year.tiers.keys() - required:
        issues.append(
            Issue(
                (*base, "tiers", tier.value),
                f"a plan whose out_of_network rule is {design.rules.out_of_network} "
                f"has no {tier} tier",
            )
        )

    for tier_name, tier in plan_year.tiers.items():
        path = (*base, "tiers", tier_name.value)
        ded, oop = tier.deductible, tier.out_of_pocket_max
        if ded.family < ded.individual and ded.kind == "embedded":
            issues.append(
                Issue(
                    (*path, "deductible", "family"),
                    "the family deductible is less than the individual one",
                )
            )
        if oop.family < oop.individual:
            issues.append(
                Issue(
                    (*path, "out_of_pocket_max", "family"),
                    "the family out-of-pocket maximum is less than the individual one",
                )
            )
        if ded.individual > oop.individual:
            issues.append(
                Issue(
                    (*path, "deductible", "individual"),
                    "the deductible is more than the out-of-pocket maximum",
                )
            )
        if ded.family > oop.family:
            issues.append(
                Issue(
                    (*path, "deductible", "family"),
                    "the family deductible is more than the family out-of-pocket maximum",
                )
            )
        if tier_name is not TierName.OUT_OF_NETWORK and not design.grandfathered:
            issues += _aca_limit(plan_year.year, oop.individual, oop.family, path)

    for category, benefit in plan_year.benefits.items():
        path = (*base, "benefits", category.value)
        for tier in (
            benefit.cost.keys() | (benefit.professional or {}).keys()
        ) - plan_year.tiers.keys():
            issues.append(
                Issue((*path, tier.value), f"the plan has no {tier} tier for this cost share")
            )
        for tier in plan_year.tiers.keys() - benefit.cost.keys():
            issues.append(Issue(path, f"no cost sharing given for the {tier} tier"))
        if category is ServiceCategory.EMERGENCY_ROOM and TierName.OUT_OF_NETWORK in benefit.cost:
            in_net = benefit.cost.get(TierName.IN_NETWORK)
            if in_net is not None and _differs(benefit.cost[TierName.OUT_OF_NETWORK], in_net):
                issues.append(
                    Issue(
                        (*path, "out_of_network"),
                        "emergency care out of network must cost the member what it "
                        "costs in network (No Surprises Act)",
                    )
                )
    if not design.grandfathered:
        issues += _aca_benefits(design, i)
    return issues


def _missing_tier(design: PlanDesign, tier: TierName) -> str:
    return (
        f"a plan whose out_of_network rule is {design.rules.out_of_network} needs the "
        f"{tier} tier (deductible, out_of_pocket_max, coinsurance)"
    )


def _differs(a, b) -> bool:
    return a.model_dump(exclude={"text"}) != b.model_dump(exclude={"text"})


def _aca_limit(year: int, individual: Cents, family: Cents, path: Path) -> list[Issue]:
    limits = aca_limits().get(year)
    if limits is None:
        return [
            Issue(
                path,
                f"no ACA out-of-pocket limit is known for {year}: add it to "
                "openhmo/plans/aca_limits.yaml, or mark the plan grandfathered",
            )
        ]
    self_only, other = limits
    issues = []
    if individual > self_only:
        issues.append(
            Issue(
                (*path, "out_of_pocket_max", "individual"),
                f"{format_money(individual)} is above the {year} ACA limit of "
                f"{format_money(self_only)} (45 CFR 156.130); only a grandfathered "
                "plan may exceed it",
            )
        )
    if family > other:
        issues.append(
            Issue(
                (*path, "out_of_pocket_max", "family"),
                f"{format_money(family)} is above the {year} ACA limit of "
                f"{format_money(other)} for other than self-only coverage",
            )
        )
    return issues


def _aca_benefits(design: PlanDesign, i: int) -> list[Issue]:
    plan_year = design.plan_years[i]
    base: Path = ("plan_years", i, "benefits")
    issues = []
    for category in ESSENTIAL_HEALTH_BENEFITS:
        benefit = plan_year.benefits.get(category)
        if benefit is None or not benefit.cost.get(design.primary_tier, _NOT_COVERED).covered:
            issues.append(
                Issue(
                    base,
                    f"{category} is an essential health benefit and must be "
                    "covered by a plan that is not grandfathered",
                )
            )
    preventive = plan_year.benefits.get(ServiceCategory.PREVENTIVE)
    if preventive is not None:
        cost = preventive.cost.get(design.primary_tier)
        if cost is not None and cost.covered and not cost.is_no_charge:
            issues.append(
                Issue(
                    (*base, "preventive"),
                    "preventive care in network must be free of cost sharing (ACA §2713)",
                )
            )
    return issues


class _NotCovered:
    covered = False


_NOT_COVERED = _NotCovered()


def _overlapping_years(design: PlanDesign) -> list[Issue]:
    issues = []
    years = sorted(enumerate(design.plan_years), key=lambda p: p[1].starts)
    for (_, a), (j, b) in itertools.pairwise(years):
        if b.starts <= a.ends:
            issues.append(
                Issue(
                    ("plan_years", j, "starts"),
                    f"plan year {b.year} starts before plan year {a.year} ends",
                )
            )
    return issues
