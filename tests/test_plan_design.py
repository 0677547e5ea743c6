"""Plan designs as data: plan-type defaults, overrides, the law, and errors that say where."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from openhmo.categories import ServiceCategory
from openhmo.plans.cost_share import DeductibleRule
from openhmo.plans.design import OutOfNetwork, PlanType, TierName
from openhmo.plans.loader import PlanDesignError, example_designs, load_design, load_design_text

EXAMPLES = {path.stem: path for path in example_designs()}

EXPECTED_DEFAULTS = {
    PlanType.HMO: (True, True, OutOfNetwork.EMERGENCY_ONLY, True),
    PlanType.EPO: (False, False, OutOfNetwork.EMERGENCY_ONLY, True),
    PlanType.POS: (True, True, OutOfNetwork.OUT_OF_NETWORK_TIER, True),
    PlanType.PPO: (False, False, OutOfNetwork.OUT_OF_NETWORK_TIER, False),
    PlanType.INDEMNITY: (False, False, OutOfNetwork.ANY_PROVIDER, False),
}


def minimal(plan_type: str, **extra) -> dict:
    """The smallest valid design of a plan type, as a dict (grandfathered, so no EHB list)."""
    one_tier = plan_type == "indemnity"
    has_oon = plan_type in ("POS", "PPO")
    primary = "all_providers" if one_tier else "in_network"
    tier = {
        "deductible": {"individual": "$500", "family": "$1,000"},
        "out_of_pocket_max": {"individual": "$5,000", "family": "$10,000"},
    }
    tiers = {primary: tier} | ({"out_of_network": tier} if has_oon else {})
    cost = (
        {"in_network": "$30 copay", "out_of_network": "40% coinsurance after deductible"}
        if has_oon
        else "$30 copay"
    )
    design = {
        "id": f"test-{plan_type.lower()}",
        "name": f"Test {plan_type}",
        "type": plan_type,
        "network": "openhmo-core",
        "grandfathered": True,
        "service_area": {"counties": ["Suffolk County, MA"]},
        "plan_years": [
            {
                "year": 2026,
                "starts": "2026-01-01",
                "ends": "2026-12-31",
                "premiums": {"self_only": "$400"},
                "tiers": tiers,
                "benefits": {"pcp_visit": cost},
            }
        ],
    }
    design.update(extra)
    return design


def load_dict(data: dict, name: str = "design.yaml"):
    return load_design_text(yaml.safe_dump(data, sort_keys=False), name)


@pytest.mark.parametrize("plan_type", list(PlanType))
def test_each_plan_type_brings_its_defaults(plan_type):
    design = load_dict(minimal(plan_type.value))
    rules = design.rules
    assert (
        rules.pcp_required,
        rules.referral_required,
        rules.out_of_network,
        rules.service_area_required,
    ) == EXPECTED_DEFAULTS[plan_type]
    assert design.rules_overridden == []


@pytest.mark.parametrize("plan_type", list(PlanType))
@pytest.mark.parametrize("rule", ["pcp_required", "referral_required", "service_area_required"])
def test_each_default_can_be_overridden(plan_type, rule):
    default = getattr(load_dict(minimal(plan_type.value)).rules, rule)
    design = load_dict(minimal(plan_type.value, rules={rule: not default}))
    assert getattr(design.rules, rule) is (not default)
    assert design.rules_overridden == [rule]
    untouched = {"pcp_required", "referral_required", "service_area_required"} - {rule}
    for other in untouched:
        assert (
            getattr(design.rules, other)
            == EXPECTED_DEFAULTS[plan_type][
                [
                    "pcp_required",
                    "referral_required",
                    "out_of_network",
                    "service_area_required",
                ].index(other)
            ]
        )


def test_out_of_network_rule_can_be_overridden_and_then_needs_its_tiers():
    data = minimal("HMO", rules={"out_of_network": "out_of_network_tier"})
    with pytest.raises(PlanDesignError) as caught:
        load_dict(data, "hmo-with-oon.yaml")
    messages = [str(e) for e in caught.value.errors]
    assert any("plan_years[0].tiers" in m and "out_of_network tier" in m for m in messages)

    tier = data["plan_years"][0]["tiers"]["in_network"]
    data["plan_years"][0]["tiers"]["out_of_network"] = tier
    data["plan_years"][0]["benefits"]["pcp_visit"] = {
        "in_network": "$30 copay",
        "out_of_network": "50% coinsurance after deductible",
    }
    design = load_dict(data)
    assert design.rules.out_of_network is OutOfNetwork.OUT_OF_NETWORK_TIER
    assert design.rules_overridden == ["out_of_network"]


@pytest.mark.parametrize("stem", sorted(EXAMPLES))
def test_every_shipped_example_is_valid(stem):
    design = load_design(EXAMPLES[stem])
    assert (
        design.plan_years[0]
        .benefits[ServiceCategory.PREVENTIVE]
        .cost[design.primary_tier]
        .is_no_charge
    )


def test_one_example_of_each_plan_type_ships():
    assert sorted(load_design(p).type.value for p in EXAMPLES.values()) == sorted(
        t.value for t in PlanType
    )


def test_the_hmo_example_reads_like_its_sbc():
    design = load_design(EXAMPLES["hmo-silver"])
    y2026 = design.plan_years[0]
    tier = y2026.tiers[TierName.IN_NETWORK]
    assert (tier.deductible.individual, tier.deductible.family, tier.deductible.kind) == (
        50000,
        100000,
        "embedded",
    )
    assert (tier.out_of_pocket_max.individual, tier.out_of_pocket_max.family) == (600000, 1200000)
    specialist = y2026.benefits[ServiceCategory.SPECIALIST_VISIT].cost[TierName.IN_NETWORK]
    assert (specialist.copay, specialist.deductible) == (5000, DeductibleRule.NO_DEDUCTIBLE)
    inpatient = y2026.benefits[ServiceCategory.INPATIENT].cost[TierName.IN_NETWORK]
    assert (inpatient.copay, inpatient.copay_unit, inpatient.copay_max_units) == (30000, "day", 5)
    rehab = y2026.benefits[ServiceCategory.REHABILITATION]
    assert (rehab.limit.count, rehab.limit.unit, rehab.limit.per) == (30, "visits", "plan_year")
    assert ServiceCategory.SPECIALIST_VISIT in design.referrals.required_for
    assert ServiceCategory.OB_GYN_VISIT in design.referrals.direct_access
    assert design.needs_prior_authorization(y2026, ServiceCategory.ADVANCED_IMAGING)
    assert not design.needs_prior_authorization(y2026, ServiceCategory.PCP_VISIT)
    assert design.premium_billing.annual_discount == Decimal(2)
    assert [y.year for y in design.plan_years] == [2026, 2027]
    assert design.plan_years[1].premiums["family"] == 147600
    assert "25025" in design.service_area.counties  # Suffolk County, MA


def errors_of(text: str, name: str = "plan.yaml") -> list[str]:
    with pytest.raises(PlanDesignError) as caught:
        load_design_text(text, name)
    return [str(e) for e in caught.value.errors]


HMO_TEXT = EXAMPLES["hmo-silver"].read_text()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            ("specialist_visit: $50 copay", "specialist_visit: $5o copay"),
            "plan_years[0].benefits.specialist_visit.in_network",
            "could not read '$5o copay' at '5o'",
        ),
        (
            ('individual: "$500"', "individual: 500"),
            "plan_years[0].tiers.in_network.deductible.individual",
            "dollar sign",
        ),
        (("type: HMO", "type: HMOO"), "type", "Input should be"),
        (
            ("kind: embedded}", "kind: embeded}"),
            "plan_years[0].tiers.in_network.deductible.kind",
            "'embedded' or 'aggregate'",
        ),
        (
            ("    - Suffolk County, MA", "    - Atlantis County, MA"),
            "service_area.counties[0]",
            "Atlantis",
        ),
        (
            (
                "rehabilitation: {cost: $30 copay, limit: 30 visits per year}",
                "rehabilitation: {cost: $30 copay, limit: thirty visits}",
            ),
            "plan_years[0].benefits.rehabilitation.limit",
            "20 visits per year",
        ),
        (
            ("  pcp_visit: $25 copay", "  pcp_visits: $25 copay"),
            "plan_years[0].benefits.pcp_visits",
            "Input should be",
        ),
        (("starts: 2026-01-01", "starts: 2026-13-01"), "plan_years[0].starts", ""),
        (
            ("network: openhmo-core", "network: openhmo-core\ncolour: blue"),
            "colour",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_design_errors_name_file_line_and_field(change, field, message):
    old, new = change
    assert old in HMO_TEXT
    text = HMO_TEXT.replace(old, new, 1)
    found = errors_of(text, "plans/hmo.yaml")
    matching = [e for e in found if f": {field}:" in e]
    assert matching, found
    assert message in matching[0]
    line = int(matching[0].split(":")[1])
    assert line == line_of(text, new.splitlines()[-1])
    assert matching[0].startswith("plans/hmo.yaml:")


def test_out_of_pocket_above_the_aca_limit_is_an_error_unless_grandfathered():
    text = HMO_TEXT.replace('individual: "$6,000"', 'individual: "$10,700"')
    found = errors_of(text)
    assert any(
        "plan_years[0].tiers.in_network.out_of_pocket_max.individual" in e
        and "above the 2026 ACA limit of $10,600.00" in e
        for e in found
    ), found
    grandfathered = load_design_text(text.replace("type: HMO", "type: HMO\ngrandfathered: true"))
    assert grandfathered.plan_years[0].tiers["in_network"].out_of_pocket_max.individual == 1070000


def test_the_2027_limit_applies_to_the_2027_plan_year():
    text = HMO_TEXT.replace('individual: "$6,500"', 'individual: "$12,000"').replace(
        'family: "$13,000"', 'family: "$24,000"'
    )
    assert (
        load_design_text(text).plan_years[1].tiers["in_network"].out_of_pocket_max.family == 2400000
    )
    found = errors_of(text.replace('family: "$24,000"', 'family: "$24,000.01"'))
    assert any("plan_years[1].tiers.in_network.out_of_pocket_max.family" in e for e in found)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "required_for: [specialist_visit,",
            "required_for: [ob_gyn_visit, specialist_visit,",
            "referrals.required_for[0]",
            "45 CFR 147.138",
        ),
        (
            "preventive: No charge",
            "preventive: $10 copay",
            "plan_years[0].benefits.preventive",
            "ACA §2713",
        ),
        (
            "  maternity: 20% coinsurance after deductible",
            "  maternity: Not covered",
            "plan_years[0].benefits",
            "maternity is an essential health benefit",
        ),
        (
            'family: "$1,000", kind',
            'family: "$400", kind',
            "plan_years[0].tiers.in_network.deductible.family",
            "less than the individual",
        ),
        (
            "starts: 2027-01-01",
            "starts: 2026-12-01",
            "plan_years[1].starts",
            "starts before plan year 2026",
        ),
    ],
)
def test_law_and_consistency_checks_name_the_field(old, new, field, message):
    assert old in HMO_TEXT
    found = errors_of(HMO_TEXT.replace(old, new, 1))
    assert any(f": {field}:" in e and message in e for e in found), found


def test_hmo_without_service_area_is_refused():
    data = minimal("HMO")
    del data["service_area"]
    with pytest.raises(PlanDesignError) as caught:
        load_dict(data)
    assert any(
        e.field == "service_area" and "needs counties or zip_codes" in e.message
        for e in caught.value.errors
    )


def test_emergency_care_out_of_network_must_cost_what_it_costs_in_network():
    text = (
        EXAMPLES["pos-gold"]
        .read_text()
        .replace(
            "emergency_room: {in_network: $250 copay, out_of_network: $250 copay}",
            "emergency_room: {in_network: $250 copay, out_of_network: $500 copay}",
        )
    )
    found = errors_of(text)
    assert any("emergency_room.out_of_network" in e and "No Surprises Act" in e for e in found)


def test_a_cost_share_for_a_tier_the_plan_lacks_is_an_error():
    text = HMO_TEXT.replace(
        "specialist_visit: $50 copay",
        "specialist_visit: {in_network: $50 copay, out_of_network: $90 copay}",
    )
    found = errors_of(text)
    assert any(
        "benefits.specialist_visit.out_of_network" in e and "no out_of_network tier" in e
        for e in found
    )


def test_unreadable_yaml_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nname: [unclosed\n")
    with pytest.raises(PlanDesignError) as caught:
        load_design(path)
    assert str(caught.value).startswith(f"{path}:")
    assert "not valid YAML" in str(caught.value)


def test_missing_file_is_reported(tmp_path: Path):
    with pytest.raises(PlanDesignError, match="cannot read"):
        load_design(tmp_path / "nope.yaml")


def test_a_stored_design_validates_back_to_itself():
    from openhmo.plans.design import PlanDesign

    for path in EXAMPLES.values():
        design = load_design(path)
        assert PlanDesign.model_validate(design.model_dump(mode="json")) == design
