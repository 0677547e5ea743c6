"""Plan designs as tables the engine joins on: plan years, network tiers, benefits.

A design is read once per run and flattened so that every rule the engine applies is
a column of a row keyed by (plan, plan year[, category, tier, class]); each row also
carries the `clause` (the design's field path and its text) that a decision's trace
names.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from openhmo.categories import ServiceCategory
from openhmo.plans.cost_share import CostShare, DeductibleRule
from openhmo.plans.design import OutOfNetwork, PlanDesign, TierName

DRUG_CATEGORIES = frozenset(
    {
        ServiceCategory.DRUGS_GENERIC,
        ServiceCategory.DRUGS_PREFERRED_BRAND,
        ServiceCategory.DRUGS_NON_PREFERRED_BRAND,
        ServiceCategory.DRUGS_SPECIALTY,
    }
)
PREVENTIVE = frozenset({ServiceCategory.PREVENTIVE, ServiceCategory.SCREENING_MAMMOGRAPHY})

PLAN_YEARS = {
    "plan_key": pl.String,
    "plan_year": pl.Int64,
    "py_index": pl.Int64,
    "py_starts": pl.Date,
    "py_ends": pl.Date,
    "plan_name": pl.String,
    "network_key": pl.String,
    "oon_rule": pl.String,
    "referral_required": pl.Boolean,
    "timely_filing_days": pl.Int64,
    "medicare_locality": pl.String,
    "grace_pend_months": pl.List(pl.Int64),
    "accumulation": pl.String,
}
TIERS = {
    "plan_key": pl.String,
    "plan_year": pl.Int64,
    "tier": pl.String,
    "ded_ind": pl.Int64,
    "ded_fam": pl.Int64,
    "ded_kind": pl.String,
    "drug_ded_ind": pl.Int64,
    "drug_ded_fam": pl.Int64,
    "drug_ded_kind": pl.String,
    "oop_ind": pl.Int64,
    "oop_fam": pl.Int64,
    "non_contracted_pct": pl.String,
    "tier_clause": pl.String,
}
BENEFITS = {
    "plan_key": pl.String,
    "plan_year": pl.Int64,
    "category": pl.String,
    "tier": pl.String,
    "klass": pl.String,
    "benefit_covered": pl.Boolean,
    "no_charge": pl.Boolean,
    "copay": pl.Int64,
    "copay_unit": pl.String,
    "copay_max_units": pl.Int64,
    "coins_milli": pl.Int64,
    "deductible_rule": pl.String,
    "benefit_clause": pl.String,
}
CATEGORY_RULES = {
    "plan_key": pl.String,
    "plan_year": pl.Int64,
    "category": pl.String,
    "has_benefit": pl.Boolean,
    "referral_needed": pl.Boolean,
    "prior_auth_needed": pl.Boolean,
    "limit_count": pl.Int64,
    "limit_unit": pl.String,
    "limit_per": pl.String,
    "limit_text": pl.String,
    "limit_clause": pl.String,
}


PLAN_CATEGORY_RULES = {
    "plan_key": pl.String,
    "category": pl.String,
    "plan_referral_needed": pl.Boolean,
    "plan_prior_auth_needed": pl.Boolean,
}


def coinsurance_milli(percent: Decimal | None) -> int | None:
    """A percent as thousandths of a percent (20% -> 20000), exactly."""
    if percent is None:
        return None
    milli = Decimal(percent) * 1000
    if milli != milli.to_integral_value():
        raise ValueError(f"coinsurance {percent}% has more than three decimals")
    return int(milli)


def _cost_row(cs: CostShare) -> dict:
    return {
        "benefit_covered": cs.covered,
        "no_charge": cs.covered and cs.is_no_charge,
        "copay": cs.copay,
        "copay_unit": cs.copay_unit.value if cs.copay is not None else None,
        "copay_max_units": cs.copay_max_units,
        "coins_milli": coinsurance_milli(cs.coinsurance),
        "deductible_rule": cs.deductible.value
        if cs.covered
        else DeductibleRule.NO_DEDUCTIBLE.value,
    }


def build(designs: dict[str, PlanDesign]) -> dict[str, pl.DataFrame]:
    years, tiers, benefits, rules, plan_rules = [], [], [], [], []
    for key, design in designs.items():
        # What the design says of a category whatever the plan year (a covered date
        # outside every plan year still meets the plan's referral and authorization rules).
        for category in ServiceCategory:
            plan_rules.append(
                {
                    "plan_key": key,
                    "category": category.value,
                    "plan_referral_needed": (
                        design.rules.referral_required
                        and category in design.referrals.required_for
                        and category not in design.referrals.direct_access
                    ),
                    "plan_prior_auth_needed": category in design.prior_authorization,
                }
            )
        for index, plan_year in enumerate(design.plan_years):
            base = {"plan_key": key, "plan_year": plan_year.year}
            years.append(
                {
                    **base,
                    "py_index": index,
                    "py_starts": plan_year.starts,
                    "py_ends": plan_year.ends,
                    "plan_name": design.name,
                    "network_key": design.network,
                    "oon_rule": design.rules.out_of_network.value,
                    "referral_required": design.rules.referral_required,
                    "timely_filing_days": design.claims.timely_filing_days,
                    "medicare_locality": design.claims.medicare_locality,
                    "grace_pend_months": list(design.grace_period.pend_claims_in_grace_months),
                    "accumulation": plan_year.accumulation,
                }
            )
            for tier_name, tier in plan_year.tiers.items():
                drug = tier.drug_deductible
                tiers.append(
                    {
                        **base,
                        "tier": tier_name.value,
                        "ded_ind": tier.deductible.individual,
                        "ded_fam": tier.deductible.family,
                        "ded_kind": tier.deductible.kind,
                        "drug_ded_ind": drug.individual if drug else None,
                        "drug_ded_fam": drug.family if drug else None,
                        "drug_ded_kind": drug.kind if drug else None,
                        "oop_ind": tier.out_of_pocket_max.individual,
                        "oop_fam": tier.out_of_pocket_max.family,
                        "non_contracted_pct": (
                            str(tier.non_contracted_allowed)
                            if tier.non_contracted_allowed is not None
                            else None
                        ),
                        "tier_clause": f"plan_years[{index}].tiers.{tier_name.value}",
                    }
                )
            for category in ServiceCategory:
                benefit = plan_year.benefits.get(category)
                limit = benefit.limit if benefit else None
                rules.append(
                    {
                        **base,
                        "category": category.value,
                        "has_benefit": benefit is not None,
                        "referral_needed": (
                            design.rules.referral_required
                            and category in design.referrals.required_for
                            and category not in design.referrals.direct_access
                        ),
                        "prior_auth_needed": design.needs_prior_authorization(plan_year, category),
                        "limit_count": limit.count if limit else None,
                        "limit_unit": limit.unit if limit else None,
                        "limit_per": limit.per if limit else None,
                        "limit_text": limit.describe() if limit else None,
                        "limit_clause": (
                            f"plan_years[{index}].benefits.{category.value}.limit"
                            if limit
                            else None
                        ),
                    }
                )
                if benefit is None:
                    continue
                for tier_name, cost in benefit.cost.items():
                    professional = (benefit.professional or {}).get(tier_name, cost)
                    for klass, cs, field in (
                        ("facility", cost, ""),
                        (
                            "professional",
                            professional,
                            ".professional"
                            if benefit.professional and tier_name in benefit.professional
                            else "",
                        ),
                    ):
                        benefits.append(
                            {
                                **base,
                                "category": category.value,
                                "tier": tier_name.value,
                                "klass": klass,
                                **_cost_row(cs),
                                "benefit_clause": (
                                    f"plan_years[{index}].benefits.{category.value}"
                                    f"{field}.{tier_name.value}: {cs.describe()}"
                                ),
                            }
                        )
    return {
        "plan_years": pl.DataFrame(years, schema=PLAN_YEARS),
        "tiers": pl.DataFrame(tiers, schema=TIERS),
        "benefits": pl.DataFrame(benefits, schema=BENEFITS),
        "category_rules": pl.DataFrame(rules, schema=CATEGORY_RULES),
        "plan_category_rules": pl.DataFrame(plan_rules, schema=PLAN_CATEGORY_RULES),
    }


def any_provider(design: PlanDesign) -> bool:
    return design.rules.out_of_network is OutOfNetwork.ANY_PROVIDER


__all__ = ["DRUG_CATEGORIES", "PREVENTIVE", "TierName", "build", "coinsurance_milli"]
