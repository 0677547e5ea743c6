"""A plan design: the plan's benefits, cost sharing and rules, as validated data.

A design file is written the way a Summary of Benefits and Coverage reads: amounts as
"$1,500", cost sharing as "$30 copay" or "20% coinsurance after deductible". Its plan
type (HMO, EPO, POS, PPO, indemnity) brings the defaults of DOMAIN.md §1 (plan_types.yaml),
and the design may override each one under `rules:`.

This module holds the structure (Pydantic models). The checks that read across fields
(the law, consistency between tiers and rules) live in openhmo.plans.checks, and
reading a file with errors that name file, line and field lives in openhmo.plans.loader.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from openhmo.categories import ServiceCategory
from openhmo.money import Cents, MoneyError, format_money, parse_money, parse_percent
from openhmo.plans.cost_share import CostShare, parse_cost_share
from openhmo.reference.geo import UnknownCounty, UnknownZip, county_fips, normalise_zip


class PlanType(StrEnum):
    HMO = "HMO"
    EPO = "EPO"
    POS = "POS"
    PPO = "PPO"
    INDEMNITY = "indemnity"


class OutOfNetwork(StrEnum):
    EMERGENCY_ONLY = "emergency_only"
    OUT_OF_NETWORK_TIER = "out_of_network_tier"
    ANY_PROVIDER = "any_provider"


class TierName(StrEnum):
    IN_NETWORK = "in_network"
    OUT_OF_NETWORK = "out_of_network"
    ALL_PROVIDERS = "all_providers"


class CoverageTier(StrEnum):
    SELF_ONLY = "self_only"
    SELF_PLUS_SPOUSE = "self_plus_spouse"
    SELF_PLUS_CHILDREN = "self_plus_children"
    FAMILY = "family"


class BillingFrequency(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"


# The tiers a design must define, by what the plan pays out of network.
REQUIRED_TIERS: dict[OutOfNetwork, frozenset[TierName]] = {
    OutOfNetwork.EMERGENCY_ONLY: frozenset({TierName.IN_NETWORK}),
    OutOfNetwork.OUT_OF_NETWORK_TIER: frozenset({TierName.IN_NETWORK, TierName.OUT_OF_NETWORK}),
    OutOfNetwork.ANY_PROVIDER: frozenset({TierName.ALL_PROVIDERS}),
}


def _money(value: Any) -> Cents:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f'write an amount of money as text with a dollar sign, e.g. "$1,500" (got {value!r})'
        )
    try:
        return parse_money(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _percent(value: Any) -> Decimal:
    try:
        return parse_percent(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _cost_share(value: Any) -> Any:
    if isinstance(value, str):
        return parse_cost_share(value)  # CostShareError is a ValueError: pydantic reports it
    return value


Money = Annotated[Cents, BeforeValidator(_money), PlainSerializer(format_money, return_type=str)]
Percent = Annotated[
    Decimal, BeforeValidator(_percent), PlainSerializer(lambda p: f"{p}%", return_type=str)
]
CostShareField = Annotated[CostShare, BeforeValidator(_cost_share)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanRules(Strict):
    """What the plan type means, after the design's overrides."""

    pcp_required: bool
    referral_required: bool
    out_of_network: OutOfNetwork
    service_area_required: bool


@cache
def plan_type_defaults() -> dict[PlanType, PlanRules]:
    raw = yaml.safe_load(
        resources.files(__package__).joinpath("plan_types.yaml").read_text(encoding="utf-8")
    )
    return {PlanType(name): PlanRules.model_validate(rules) for name, rules in raw.items()}


def _county(value: Any) -> str:
    try:
        return county_fips(str(value))
    except UnknownCounty as exc:
        raise ValueError(str(exc)) from None


def _zip(value: Any) -> str:
    try:
        return normalise_zip(str(value))
    except UnknownZip as exc:
        raise ValueError(str(exc)) from None


class ServiceArea(Strict):
    """Counties (5-digit FIPS, or 'Name County, ST' in the file) and ZIP codes."""

    counties: list[Annotated[str, BeforeValidator(_county)]] = Field(default_factory=list)
    zip_codes: list[Annotated[str, BeforeValidator(_zip)]] = Field(default_factory=list)

    @field_validator("counties", "zip_codes")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    def contains(self, zip_code: str, county: str | None) -> bool:
        return zip_code in self.zip_codes or (county is not None and county in self.counties)

    @property
    def empty(self) -> bool:
        return not self.counties and not self.zip_codes


class ReferralRules(Strict):
    """Which services need the PCP's referral, and which never do (direct access)."""

    required_for: list[ServiceCategory] = Field(
        default_factory=lambda: [ServiceCategory.SPECIALIST_VISIT]
    )
    direct_access: list[ServiceCategory] = Field(
        default_factory=lambda: [
            ServiceCategory.EMERGENCY_ROOM,
            ServiceCategory.OB_GYN_VISIT,
            ServiceCategory.SCREENING_MAMMOGRAPHY,
            ServiceCategory.PREVENTIVE,
        ]
    )
    # A PCP's referral is approved at once when it asks for no more than this, and it
    # is not to a specialty staff review; otherwise it waits for staff.
    auto_approve_max_visits: int = Field(default=6, ge=0)
    auto_approve_max_days: int = Field(default=180, ge=0)
    review_specialties: list[str] = Field(
        default_factory=list,
        description="NUCC taxonomy prefixes whose referrals staff always review",
    )
    # How long a referral is valid when the PCP does not say.
    default_valid_days: int = Field(default=90, ge=1)


class PremiumBilling(Strict):
    frequencies: list[BillingFrequency] = Field(
        default_factory=lambda: [BillingFrequency.MONTHLY, BillingFrequency.ANNUAL]
    )
    annual_discount: Percent = Decimal(0)
    due_day: int = Field(default=1, ge=1, le=28, description="day of the month premiums are due")


class GracePeriodPolicy(Strict):
    """Time to pay an overdue premium before coverage ends (DOMAIN.md §2)."""

    unsubsidized_days: int = Field(default=31, ge=0)
    subsidized_months: int = Field(default=3, ge=0)
    # After the grace period, coverage ends on the last day of the last month paid for
    # (DOMAIN.md §2). 45 CFR 156.270(g) instead ends subsidized enrollees' coverage on
    # the last day of the grace period's first month: choose it here where it applies.
    subsidized_termination: Literal["end_of_last_paid_month", "end_of_first_grace_month"] = (
        "end_of_last_paid_month"
    )
    pend_claims_in_grace_months: list[int] = Field(default_factory=lambda: [2, 3])


class ClaimsRules(Strict):
    """How the plan takes claims."""

    # A claim received more than this many days after the date of service is denied
    # for timely filing (CO-29).
    timely_filing_days: int = Field(default=365, ge=1)
    # The Medicare locality whose fees price providers without a contract
    # (non_contracted_allowed), e.g. "MA-01" (Metropolitan Boston).
    medicare_locality: str = "MA-01"


class EligibilityRules(Strict):
    """The plan's own enrollment policies (DOMAIN.md §2), with the usual defaults."""

    # A move out of the service area ends eligibility at the end of the month of the
    # move, or on the day of it.
    move_out_of_area_ends: Literal["end_of_month_of_move", "date_of_move"] = "end_of_month_of_move"
    pcp_change_effective: Literal["first_of_next_month", "immediately"] = "first_of_next_month"
    # A pediatrician can be the PCP of a member younger than this.
    pediatrician_max_age: int = Field(default=18, ge=1, le=26)
    dependent_child_max_age: int = Field(default=26, ge=18, le=30)


class Deductible(Strict):
    individual: Money
    family: Money
    kind: Literal["embedded", "aggregate"] = "embedded"


class OutOfPocketMax(Strict):
    """Always embedded: no one person pays more than `individual` (DOMAIN.md §4)."""

    individual: Money
    family: Money


def _percent_of_medicare(value: Any) -> Any:
    if value is None or isinstance(value, Decimal | int):
        return value
    text = str(value).strip()
    number = text[: -len("of medicare")].strip().rstrip("%").strip()
    if not text.lower().endswith("of medicare") or not number.replace(".", "", 1).isdigit():
        raise ValueError(
            f'write a non-contracted allowed amount like "150% of Medicare" (got {value!r})'
        )
    percent = Decimal(number)
    if not Decimal(0) < percent <= Decimal(1000):
        raise ValueError(f"{value!r}: the percent of Medicare must be above 0% and at most 1000%")
    return percent


class NetworkTier(Strict):
    deductible: Deductible
    # A separate deductible for prescription drugs, where the plan's medical and drug
    # deductibles are not integrated; otherwise drugs share `deductible`.
    drug_deductible: Deductible | None = None
    out_of_pocket_max: OutOfPocketMax
    coinsurance: Percent = Decimal(0)
    # What the plan allows a provider it has no contract with, as a percent of the
    # Medicare fee (the out-of-network tier, or every provider of an indemnity plan).
    non_contracted_allowed: (
        Annotated[
            Decimal,
            BeforeValidator(_percent_of_medicare),
            PlainSerializer(lambda p: f"{p}% of Medicare", return_type=str),
        ]
        | None
    ) = None


class VisitLimit(Strict):
    count: int = Field(gt=0)
    unit: Literal["visits", "days"] = "visits"
    per: Literal["plan_year", "stay", "lifetime"] = "plan_year"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"count": value}
        if not isinstance(value, str):
            return value
        words = value.lower().replace("-", " ").split()
        if not words or not words[0].isdigit():
            raise ValueError(f'write a limit like "20 visits per year" (got {value!r})')
        out: dict[str, Any] = {"count": int(words[0])}
        rest = " ".join(words[1:])
        if rest.startswith(("day", "days")):
            out["unit"] = "days"
        elif rest and not rest.startswith(("visit", "visits")):
            raise ValueError(f"a limit counts visits or days (got {value!r})")
        if "stay" in rest or "admission" in rest:
            out["per"] = "stay"
        elif "lifetime" in rest:
            out["per"] = "lifetime"
        return out

    def describe(self) -> str:
        per = {"plan_year": "per plan year", "stay": "per stay", "lifetime": "per lifetime"}
        return f"{self.count} {self.unit} {per[self.per]}"


class Benefit(Strict):
    """One row of the SBC: what the member pays for a service category, per network tier."""

    cost: dict[TierName, CostShareField]
    # The SBC's "physician/surgeon fees" row, where it differs from the facility's:
    # professional claims of the category use it, institutional claims use `cost`.
    professional: dict[TierName, CostShareField] | None = None
    limit: VisitLimit | None = None
    prior_authorization: bool | None = None
    notes: str = ""


def _benefit_shorthand(value: Any, primary: TierName) -> Any:
    """Expand "pcp_visit: $30 copay" and {in_network: ..., limit: ...} into a Benefit's shape.

    A bare cost share belongs to the plan's primary tier: in_network, or all_providers
    for a plan with one tier for every provider.
    """
    if isinstance(value, str):
        return {"cost": {primary.value: value}}
    if not isinstance(value, dict):
        return value
    value = dict(value)
    if "cost" not in value:
        value["cost"] = {t.value: value.pop(t.value) for t in TierName if t.value in value}
    for key in ("cost", "professional"):
        if isinstance(value.get(key), str):
            value[key] = {primary.value: value[key]}
    return value


class PlanYear(Strict):
    year: int = Field(ge=2000, le=2100)
    starts: date
    ends: date
    # Monthly premium by coverage tier. A design imported without rates has none yet;
    # enrollment and billing refuse a plan year without the tier's premium.
    premiums: dict[CoverageTier, Money] = Field(default_factory=dict)
    tiers: dict[TierName, NetworkTier]
    benefits: dict[ServiceCategory, Benefit]
    # Benefits the SBC lists that no OpenHMO service category prices (e.g. "Infertility
    # Treatment" from a CMS template), kept so nothing the source states is lost.
    other_benefits: dict[str, Benefit] = Field(default_factory=dict)
    accumulation: Literal["separate", "cross"] = Field(
        default="separate",
        description="whether in- and out-of-network spending count toward each other's limits",
    )


class PlanDesign(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1)
    type: PlanType
    metal_level: str | None = None
    network: str | None = None
    hios_plan_id: str | None = None
    grandfathered: bool = False
    rules: PlanRules
    rules_overridden: list[str] = Field(default_factory=list)
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    referrals: ReferralRules = Field(default_factory=ReferralRules)
    prior_authorization: list[ServiceCategory] = Field(default_factory=list)
    premium_billing: PremiumBilling = Field(default_factory=PremiumBilling)
    grace_period: GracePeriodPolicy = Field(default_factory=GracePeriodPolicy)
    eligibility: EligibilityRules = Field(default_factory=EligibilityRules)
    claims: ClaimsRules = Field(default_factory=ClaimsRules)
    plan_years: list[PlanYear] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_plan_type_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = dict(value)
        try:
            defaults = plan_type_defaults()[PlanType(value.get("type"))]
        except ValueError:
            # The `type` field reports the bad plan type; reading the rest as an HMO keeps
            # that one error from burying the file under errors that follow from it.
            defaults = plan_type_defaults()[PlanType.HMO]
        overrides = value.get("rules") or {}
        if not isinstance(overrides, dict):
            return value
        if "rules_overridden" not in value:
            value["rules_overridden"] = sorted(
                k for k, v in overrides.items() if getattr(defaults, k, v) != v
            )
        value["rules"] = {**defaults.model_dump(mode="json"), **overrides}
        try:
            one_tier = OutOfNetwork(value["rules"]["out_of_network"]) is OutOfNetwork.ANY_PROVIDER
        except ValueError:
            return value  # rules.out_of_network reports it
        primary = TierName.ALL_PROVIDERS if one_tier else TierName.IN_NETWORK
        if isinstance(value.get("plan_years"), list):
            value["plan_years"] = [
                dict(p) if isinstance(p, dict) else p for p in value["plan_years"]
            ]
        for plan_year in value.get("plan_years") or []:
            if isinstance(plan_year, dict):
                for key in ("benefits", "other_benefits"):
                    if isinstance(plan_year.get(key), dict):
                        plan_year[key] = {
                            k: _benefit_shorthand(v, primary) for k, v in plan_year[key].items()
                        }
        return value

    @property
    def primary_tier(self) -> TierName:
        if self.rules.out_of_network is OutOfNetwork.ANY_PROVIDER:
            return TierName.ALL_PROVIDERS
        return TierName.IN_NETWORK

    def plan_year_on(self, day: date) -> PlanYear | None:
        for plan_year in self.plan_years:
            if plan_year.starts <= day <= plan_year.ends:
                return plan_year
        return None

    def needs_prior_authorization(self, plan_year: PlanYear, category: ServiceCategory) -> bool:
        benefit = plan_year.benefits.get(category)
        if benefit is not None and benefit.prior_authorization is not None:
            return benefit.prior_authorization
        return category in self.prior_authorization
