"""Importing the CMS QHP Plans & Benefits template: the real BCBS file, broken files, the CLI.

The figures asserted here are the ones SHOP_PB_BCBS.xml states (read off the XML, cell
by cell), so a mapping mistake shows up as a wrong amount, not as a missing key.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openhmo.categories import ServiceCategory as C
from openhmo.cli.main import app
from openhmo.plans.cms_template import (
    CmsTemplateError,
    benefit_map,
    read_cms_template,
)
from openhmo.plans.cost_share import CopayUnit, CostShare, DeductibleRule
from openhmo.plans.design import PlanDesign, TierName
from openhmo.plans.store import design_of, get_plan

IN = TierName.IN_NETWORK
NO = DeductibleRule.NO_DEDUCTIBLE
AFTER = DeductibleRule.AFTER_DEDUCTIBLE
VISIT, STAY, RX = CopayUnit.VISIT, CopayUnit.STAY, CopayUnit.PRESCRIPTION
SUFFOLK = "Suffolk County, MA"


@pytest.fixture(scope="module")
def bcbs(corpus: Path) -> Path:
    return corpus / "sbc" / "serff_plans_benefits_template" / "SHOP_PB_BCBS.xml"


@pytest.fixture(scope="module")
def imported(bcbs: Path):
    return read_cms_template(bcbs, counties=[SUFFOLK])


@pytest.fixture(scope="module")
def designs(imported) -> dict[str, PlanDesign]:
    assert imported.errors == []
    return {d.id: d for d in imported.designs}


def terms(cs: CostShare) -> tuple:
    """(covered, copay cents, copay unit, coinsurance %, deductible rule)."""
    return (cs.covered, cs.copay, cs.copay_unit, cs.coinsurance, cs.deductible)


def copay(cents: int, rule=NO, unit=VISIT) -> tuple:
    return (True, cents, unit, None, rule)


def coins(percent: int, rule=NO) -> tuple:
    return (True, None, VISIT, Decimal(percent), rule)


def free(rule=NO) -> tuple:
    return (True, None, VISIT, None, rule)


def edited(tmp_path: Path, source: Path, cells: dict[str, str]) -> Path:
    """A copy of the template with new values in the cells named by their cellLocation."""
    text = source.read_text(encoding="utf-8")
    for location, value in cells.items():
        pattern = rf'(cellLocation="{re.escape(location)}">\s*<cellValue>)[^<]*(</cellValue>)'
        text, count = re.subn(pattern, rf"\g<1>{value}\g<2>", text, count=1)
        assert count == 1, location
    path = tmp_path / "edited.xml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, location: str) -> int:
    """The line of the value of the cell at a cellLocation."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if f'cellLocation="{location}"' in line) + 1


# --- the mapping table -----------------------------------------------------------------


def test_the_table_prices_every_category_once_from_rows_the_template_has(bcbs: Path):
    table = benefit_map()
    cost_rows = [
        t.category for targets in table.targets.values() for t in targets if t.part == "cost"
    ]
    assert sorted(cost_rows) == sorted(c for c in C if c is not C.OTHER)
    visit_types = {
        " ".join(line.split()).removeprefix("<cellValue>").removesuffix("</cellValue>").casefold()
        for line in bcbs.read_text().splitlines()
    }
    for name in [*table.targets, *table.priced_as]:
        assert name in visit_types, f"{name!r} is not a row of the CMS template"


# --- Test Blue Premium, 42690MA1234502 ---------------------------------------------------

PREMIUM_BENEFITS = {
    C.PCP_VISIT: copay(2000),
    C.SPECIALIST_VISIT: copay(4000),
    C.OB_GYN_VISIT: copay(4000),
    C.PREVENTIVE: free(),
    C.SCREENING_MAMMOGRAPHY: free(),
    C.URGENT_CARE: copay(4000),
    C.EMERGENCY_ROOM: copay(15000),
    C.AMBULANCE: free(),
    C.INPATIENT: copay(50000, unit=STAY),
    C.OUTPATIENT_SURGERY: copay(25000),
    C.IMAGING: free(),
    C.ADVANCED_IMAGING: copay(15000),
    C.LAB: free(),
    C.MENTAL_HEALTH_OUTPATIENT: copay(2000),
    C.MENTAL_HEALTH_INPATIENT: copay(50000, unit=STAY),
    C.MATERNITY: copay(50000),
    C.REHABILITATION: copay(4000),
    C.CHIROPRACTIC: copay(4000),
    C.DME: coins(20),
    C.SKILLED_NURSING: copay(50000, unit=STAY),
    C.HOME_HEALTH: free(),
    C.HOSPICE: free(),
    C.DRUGS_GENERIC: copay(1000, unit=RX),
    C.DRUGS_PREFERRED_BRAND: copay(2500, unit=RX),
    C.DRUGS_NON_PREFERRED_BRAND: copay(5000, unit=RX),
    C.DRUGS_SPECIALTY: copay(5000, unit=RX),
}

DEDUCTIBLE_1000_BENEFITS = {
    C.PCP_VISIT: copay(3000),
    C.SPECIALIST_VISIT: copay(4500),
    C.OB_GYN_VISIT: copay(4500),
    C.PREVENTIVE: free(),
    C.SCREENING_MAMMOGRAPHY: free(),
    C.URGENT_CARE: copay(4500),
    C.EMERGENCY_ROOM: copay(15000, AFTER),
    C.AMBULANCE: free(AFTER),
    C.INPATIENT: copay(50000, AFTER, STAY),
    C.OUTPATIENT_SURGERY: copay(25000, AFTER),
    C.IMAGING: copay(2000, AFTER),
    C.ADVANCED_IMAGING: copay(20000, AFTER),
    C.LAB: copay(2000, AFTER),
    C.MENTAL_HEALTH_OUTPATIENT: copay(3000),
    C.MENTAL_HEALTH_INPATIENT: copay(50000, AFTER, STAY),
    C.MATERNITY: copay(50000, AFTER),
    C.REHABILITATION: copay(4500),
    C.CHIROPRACTIC: copay(4500),
    C.DME: coins(20, AFTER),
    C.SKILLED_NURSING: copay(50000, AFTER, STAY),
    C.HOME_HEALTH: free(AFTER),
    C.HOSPICE: free(AFTER),
    C.DRUGS_GENERIC: copay(2000, unit=RX),
    C.DRUGS_PREFERRED_BRAND: copay(3000, unit=RX),
    C.DRUGS_NON_PREFERRED_BRAND: copay(5000, unit=RX),
    C.DRUGS_SPECIALTY: copay(5000, unit=RX),
}


def test_both_plans_are_imported_as_hmos_with_their_identity(designs):
    assert sorted(designs) == ["42690ma1234502", "42690ma1302345"]
    premium, gold = designs["42690ma1234502"], designs["42690ma1302345"]
    assert (premium.name, premium.type, premium.metal_level) == (
        "Test Blue Premium",
        "HMO",
        "Platinum",
    )
    assert (gold.name, gold.type, gold.metal_level) == (
        "Test Blue $1,000 Deductible",
        "HMO",
        "Gold",
    )
    assert premium.hios_plan_id == "42690MA1234502-00"
    # The test data's quirk: the variant ids do not continue the standard component id.
    assert gold.hios_plan_id == "42690MA1301233-00"
    for design in (premium, gold):
        assert design.network == "man001"
        assert design.service_area.counties == ["25025"]
        assert design.rules.pcp_required and design.rules.referral_required
        assert design.rules.out_of_network == "emergency_only"
        assert design.rules_overridden == []
        [plan_year] = design.plan_years
        assert (plan_year.year, str(plan_year.starts), str(plan_year.ends)) == (
            2019,
            "2019-01-01",
            "2019-12-31",
        )
        assert list(plan_year.tiers) == [IN]
        assert plan_year.premiums == {}


def test_test_blue_premium_tier(designs):
    tier = designs["42690ma1234502"].plan_years[0].tiers[IN]
    assert (tier.deductible.individual, tier.deductible.family, tier.deductible.kind) == (
        0,
        0,
        "embedded",
    )
    assert (tier.drug_deductible.individual, tier.drug_deductible.family) == (0, 0)
    assert (tier.out_of_pocket_max.individual, tier.out_of_pocket_max.family) == (300000, 600000)
    assert tier.coinsurance == 0


def test_test_blue_1000_deductible_tier(designs):
    tier = designs["42690ma1302345"].plan_years[0].tiers[IN]
    assert (tier.deductible.individual, tier.deductible.family, tier.deductible.kind) == (
        100000,
        200000,
        "embedded",
    )
    # medicalAndDrugDeductiblesIntegrated is No: drugs have their own ($0) deductible.
    assert tier.drug_deductible is not None
    assert (tier.drug_deductible.individual, tier.drug_deductible.family) == (0, 0)
    assert (tier.out_of_pocket_max.individual, tier.out_of_pocket_max.family) == (500000, 1000000)


@pytest.mark.parametrize(
    ("design_id", "expected"),
    [
        ("42690ma1234502", PREMIUM_BENEFITS),
        ("42690ma1302345", DEDUCTIBLE_1000_BENEFITS),
    ],
)
def test_every_category_costs_what_the_xml_says(designs, design_id, expected):
    benefits = designs[design_id].plan_years[0].benefits
    assert set(benefits) == set(expected)
    actual = {category: terms(benefit.cost[IN]) for category, benefit in benefits.items()}
    assert actual == expected
    assert all(set(b.cost) == {IN} for b in benefits.values())


@pytest.mark.parametrize(
    ("design_id", "professional"),
    [
        (
            "42690ma1234502",
            {C.INPATIENT: free(), C.OUTPATIENT_SURGERY: free(), C.MATERNITY: free()},
        ),
        (
            "42690ma1302345",
            {C.INPATIENT: free(AFTER), C.OUTPATIENT_SURGERY: free(AFTER), C.MATERNITY: free()},
        ),
    ],
)
def test_physician_rows_become_the_professional_cost(designs, design_id, professional):
    benefits = designs[design_id].plan_years[0].benefits
    with_professional = {
        c: terms(b.professional[IN]) for c, b in benefits.items() if b.professional
    }
    assert with_professional == professional


def test_facility_fee_after_deductible_keeps_the_template_text(designs):
    facility = designs["42690ma1302345"].plan_years[0].benefits[C.OUTPATIENT_SURGERY].cost[IN]
    assert facility.text == "$250.00 Copay after deductible"
    assert facility.describe() == "$250.00 copay per visit after deductible"


def test_visit_limits_and_explanations(designs):
    for design in designs.values():
        benefits = design.plan_years[0].benefits
        assert benefits[C.SKILLED_NURSING].limit.describe() == "100 days per plan year"
        assert benefits[C.REHABILITATION].limit.describe() == "60 visits per plan year"
        assert benefits[C.INPATIENT].notes.startswith("In a Rehabilitation Hospital (60-day")
        # "1 Exam(s) per Year" is the GYN exam's limit, not one preventive visit a year.
        assert benefits[C.PREVENTIVE].limit is None
        assert "1 Exam(s) per Year" in benefits[C.PREVENTIVE].notes
        assert "no OB/GYN row" in benefits[C.OB_GYN_VISIT].notes


def test_rows_without_a_category_are_kept_under_their_cms_names(designs):
    premium = designs["42690ma1234502"].plan_years[0].other_benefits
    gold = designs["42690ma1302345"].plan_years[0].other_benefits
    assert len(premium) == len(gold) == 69 - 27  # 69 rows, 27 of them priced by categories
    assert terms(premium["Infertility Treatment"].cost[IN]) == copay(25000)
    assert terms(gold["Infertility Treatment"].cost[IN]) == copay(25000, AFTER)
    assert terms(premium["Hypodermic Syringes or Needles"].cost[IN]) == copay(2500)
    assert terms(gold["Basic Dental Care - Child"].cost[IN]) == coins(25, AFTER)
    assert terms(gold["Eye Glasses for Children"].cost[IN]) == coins(35, AFTER)
    assert gold["Habilitation Services"].limit.describe() == "60 visits per plan year"
    assert "1 Item(s) per Year" in gold["Eye Glasses for Children"].notes


def test_referral_required_except_ob_gyn_and_chiropractor(designs):
    for design in designs.values():
        assert design.referrals.required_for == [C.SPECIALIST_VISIT]
        assert design.referrals.direct_access == [
            C.EMERGENCY_ROOM,
            C.OB_GYN_VISIT,
            C.SCREENING_MAMMOGRAPHY,
            C.PREVENTIVE,
            C.CHIROPRACTIC,
        ]


def test_the_notes_say_what_was_not_imported(imported):
    notes = "\n".join(imported.notes)
    assert (
        "42690ma1302345: the standard component id 42690MA1302345 does not match its "
        "cost-share variance ids (42690MA1301233-00, 42690MA1301233-01)"
    ) in notes
    assert (
        "not imported for: Emergency Room Services ($150.00), Emergency "
        "Transportation/Ambulance (No Charge)"
    ) in notes
    assert "Emergency Room Services ($150.00 Copay after deductible)" in notes
    assert "claims for 'Rehabilitative Speech Therapy'" in notes
    assert "having a baby: deductible $0, copayment $516, coinsurance $0, limit $60" in notes
    assert "were not imported: Routine Dental Services (Adult)" in notes
    assert "premiums are filed in the separate CMS Rates template" in notes
    # Nothing is noted for out-of-network columns that say "Not Applicable" or 100%.
    assert "Primary Care Visit to Treat" not in notes


# --- options ---------------------------------------------------------------------------


def test_without_a_service_area_each_hmo_is_an_error_naming_the_way_out(bcbs: Path):
    result = read_cms_template(bcbs)
    assert result.designs == []
    assert [e.field for e in result.errors] == [
        "42690ma1234502: service_area (serviceAreaID (cell Benefits_Package_1-F.9))",
        "42690ma1302345: service_area (serviceAreaID (cell Benefits_Package_2-F.9))",
    ]
    error = result.errors[0]
    assert error.file == str(bcbs)
    assert error.line == 2809  # the <cellValue>MAS001</cellValue> of the first plan
    for words in ("MAS001", "Service Area template", "--county", "--zip"):
        assert words in error.message


def test_zip_codes_are_a_service_area_too(bcbs: Path):
    result = read_cms_template(bcbs, zip_codes=["02108"])
    assert result.errors == []
    assert [d.service_area.zip_codes for d in result.designs] == [["02108"], ["02108"]]


def test_all_variants_gives_one_design_per_cost_share_variance(bcbs: Path):
    result = read_cms_template(bcbs, counties=[SUFFOLK], all_variants=True)
    assert result.errors == []
    assert [(d.id, d.hios_plan_id, d.name) for d in result.designs] == [
        (
            "42690ma1234502-00",
            "42690MA1234502-00",
            "Test Blue Premium (Standard Platinum Off Exchange Plan)",
        ),
        (
            "42690ma1234502-01",
            "42690MA1234502-01",
            "Test Blue Premium (Standard Platinum On Exchange Plan)",
        ),
        (
            "42690ma1301233-00",
            "42690MA1301233-00",
            "Test Blue $1,000 Deductible (Standard Gold Off Exchange Plan)",
        ),
        (
            "42690ma1301233-01",
            "42690MA1301233-01",
            "Test Blue $1,000 Deductible (Standard Gold On Exchange Plan)",
        ),
    ]
    on_exchange = result.designs[3].plan_years[0]
    assert on_exchange.tiers[IN].deductible.individual == 100000
    assert terms(on_exchange.benefits[C.PCP_VISIT].cost[IN]) == copay(3000)


# --- broken files ----------------------------------------------------------------------


def test_a_file_that_is_not_xml(tmp_path: Path):
    path = tmp_path / "plans.xlsx"
    path.write_text("PK\x03\x04 a spreadsheet, not the XML\n")
    with pytest.raises(CmsTemplateError, match=rf"^{path}:1: not XML \(not well-formed"):
        read_cms_template(path, counties=[SUFFOLK])


def test_xml_that_is_not_a_plans_and_benefits_template(corpus: Path):
    rates = corpus / "sbc" / "serff_plans_benefits_template" / "SHOP_RATES_BCBS_TEST.xml"
    with pytest.raises(CmsTemplateError) as exc:
        read_cms_template(rates, counties=[SUFFOLK])
    assert str(exc.value).startswith(f"{rates}:2: not a CMS QHP Plans & Benefits template")
    assert "<qhpApplicationRateGroupListVO>" in str(exc.value)


def test_a_missing_file(tmp_path: Path):
    with pytest.raises(CmsTemplateError, match="cannot read the file"):
        read_cms_template(tmp_path / "nowhere.xml")


def test_a_doctype_is_refused(tmp_path: Path):
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n'
        '<planBenefitTemplateVO xmlns="http://vo.ffe.cms.hhs.gov">&a;'
        "</planBenefitTemplateVO>\n"
    )
    with pytest.raises(CmsTemplateError, match=r":2: a CMS template has no DOCTYPE"):
        read_cms_template(path)


def test_an_unreadable_cost_share_names_file_line_cell_and_plan(tmp_path: Path, bcbs: Path):
    pcp_copay = "Cost_Share_Variances_1-DJ.4"
    path = edited(tmp_path, bcbs, {pcp_copay: "$2o.00"})
    result = read_cms_template(path, counties=[SUFFOLK])
    [error] = result.errors
    assert (error.file, error.line) == (str(path), line_of(path, pcp_copay))
    assert error.field == (
        "42690ma1234502: Primary Care Visit to Treat an Injury or Illness: "
        "copayInNetworkTier1 (cell Cost_Share_Variances_1-DJ.4)"
    )
    assert error.message.startswith("could not read '$2o.00'")
    # The other plan is fine and still imported; the CLI imports nothing while any error stands.
    assert [d.id for d in result.designs] == ["42690ma1302345"]


def test_a_law_check_points_at_the_template_cell(tmp_path: Path, bcbs: Path):
    moop = "Cost_Share_Variances_1-AN.4"
    path = edited(tmp_path, bcbs, {moop: "$9,000"})
    result = read_cms_template(path, counties=[SUFFOLK])
    by_field = {e.field: e for e in result.errors}
    error = by_field["42690ma1234502: plan_years[0].tiers.in_network.out_of_pocket_max.individual"]
    assert error.line == line_of(path, moop)
    assert "above the 2019 ACA limit of $7,900.00" in error.message


def test_preventive_care_with_a_copay_is_refused_at_its_row(tmp_path: Path, bcbs: Path):
    path = edited(tmp_path, bcbs, {"Cost_Share_Variances_1-KT.4": "$17.00"})
    result = read_cms_template(path, counties=[SUFFOLK])
    messages = {e.field: (e.line, e.message) for e in result.errors}
    line, message = messages["42690ma1234502: plan_years[0].benefits.preventive"]
    assert "must be free of cost sharing" in message
    assert line == line_of(path, "Cost_Share_Variances_1-KT.1")  # the row's visitType


def test_not_covered_in_the_benefits_list(tmp_path: Path, bcbs: Path):
    infertility, acupuncture = "Benefits_Package_1-D.68", "Benefits_Package_1-D.99"
    path = edited(tmp_path, bcbs, {infertility: "Not Covered", acupuncture: "Not Covered"})
    result = read_cms_template(path, counties=[SUFFOLK])
    assert result.errors == []
    other = result.designs[0].plan_years[0].other_benefits
    assert not other["Infertility Treatment"].cost[IN].covered  # despite its $250.00 row
    assert other["Acupuncture"].cost[IN].describe() == "Not covered"


def test_no_specialist_referral_overrides_the_hmo_rule(tmp_path: Path, bcbs: Path):
    path = edited(tmp_path, bcbs, {"Benefits_Package_1-O.9": "No"})
    result = read_cms_template(path, counties=[SUFFOLK])
    premium, gold = result.designs
    assert not premium.rules.referral_required
    assert premium.rules_overridden == ["referral_required"]
    assert gold.rules.referral_required


PPO = {"Benefits_Package_1-I.9": "PPO"}  # the first plan's planType
OUT_OF_NETWORK_AMOUNTS = {
    "Cost_Share_Variances_1-BB.4": "$2,000",  # medical deductible, out of network
    "Cost_Share_Variances_1-BC.4": "$2000 per person | $4000 per group",
    "Cost_Share_Variances_1-AR.4": "$6,000",  # out-of-pocket maximum, out of network
    "Cost_Share_Variances_1-AS.4": "$6000 per person | $12000 per group",
}


def test_a_ppo_gets_its_out_of_network_tier(tmp_path: Path, bcbs: Path):
    path = edited(tmp_path, bcbs, {**PPO, **OUT_OF_NETWORK_AMOUNTS})
    result = read_cms_template(path)  # a PPO needs no service area; the HMO does
    assert [e.field.split(":")[0] for e in result.errors] == ["42690ma1302345"]
    [ppo] = result.designs
    assert (ppo.type, ppo.rules.out_of_network, ppo.rules.pcp_required) == (
        "PPO",
        "out_of_network_tier",
        False,
    )
    assert ppo.rules_overridden == ["referral_required"]  # the template says Yes
    plan_year = ppo.plan_years[0]
    out = plan_year.tiers[TierName.OUT_OF_NETWORK]
    assert (out.deductible.individual, out.deductible.family, out.deductible.kind) == (
        200000,
        400000,
        "embedded",
    )
    assert (out.out_of_pocket_max.individual, out.out_of_pocket_max.family) == (600000, 1200000)
    assert plan_year.tiers[IN].out_of_pocket_max.individual == 300000
    assert plan_year.accumulation == "separate"
    pcp = plan_year.benefits[C.PCP_VISIT]
    assert terms(pcp.cost[IN]) == copay(2000)
    assert terms(pcp.cost[TierName.OUT_OF_NETWORK]) == coins(100)
    assert terms(plan_year.benefits[C.EMERGENCY_ROOM].cost[TierName.OUT_OF_NETWORK]) == copay(15000)
    assert not [n for n in result.notes if n.startswith("42690ma1234502: an ")]


def test_combined_in_and_out_of_network_amounts(tmp_path: Path, bcbs: Path):
    combined = {
        "Cost_Share_Variances_1-BD.4": "$2,500",
        "Cost_Share_Variances_1-BE.4": "$2500 per person | $5000 per group",
        "Cost_Share_Variances_1-AT.4": "$7,000",
        "Cost_Share_Variances_1-AU.4": "$7000 per person | $14000 per group",
    }
    path = edited(tmp_path, bcbs, {**PPO, **combined})
    [ppo] = read_cms_template(path).designs
    plan_year = ppo.plan_years[0]
    out = plan_year.tiers[TierName.OUT_OF_NETWORK]
    assert (out.deductible.individual, out.out_of_pocket_max.family) == (250000, 1400000)
    assert plan_year.accumulation == "cross"


def test_a_ppo_without_out_of_network_amounts_is_an_error(tmp_path: Path, bcbs: Path):
    path = edited(tmp_path, bcbs, PPO)
    result = read_cms_template(path, counties=[SUFFOLK])
    [error] = result.errors
    assert error.line == line_of(path, "Cost_Share_Variances_1-BB.4")
    assert error.message == "states no amount for the out_of_network tier"


# --- the command -----------------------------------------------------------------------


def test_import_cms_stores_both_plans(bcbs: Path, database_url: str, session):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["plans", "import-cms", str(bcbs), "--county", SUFFOLK],
        env={"OPENHMO_DATABASE_URL": database_url, "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "imported 42690ma1234502: Test Blue Premium" in result.output
    assert "imported 42690ma1302345: Test Blue $1,000 Deductible" in result.output
    assert "note:" in result.output

    plan = get_plan(session, "42690ma1302345")
    assert (plan.plan_type, plan.network_key, plan.hios_plan_id) == (
        "HMO",
        "man001",
        "42690MA1301233-00",
    )
    assert plan.source == f"CMS template {bcbs}"
    design = design_of(plan)
    plan_year = design.plan_years[0]
    assert plan_year.tiers[IN].deductible.individual == 100000
    assert plan_year.tiers[IN].out_of_pocket_max.family == 1000000
    assert terms(plan_year.benefits[C.OUTPATIENT_SURGERY].cost[IN]) == copay(25000, AFTER)
    assert terms(plan_year.benefits[C.DRUGS_GENERIC].cost[IN]) == copay(2000, unit=RX)
    assert plan_year.benefits[C.SKILLED_NURSING].limit.count == 100
    assert "Infertility Treatment" in plan_year.other_benefits
    assert C.CHIROPRACTIC in design.referrals.direct_access
    premium = design_of(get_plan(session, "42690ma1234502")).plan_years[0]
    assert terms(premium.benefits[C.PCP_VISIT].cost[IN]) == copay(2000)
    assert premium.tiers[IN].out_of_pocket_max.individual == 300000


def test_import_cms_without_a_service_area_stores_nothing(bcbs: Path, database_url: str, session):
    result = CliRunner().invoke(
        app,
        ["plans", "import-cms", str(bcbs)],
        env={"OPENHMO_DATABASE_URL": database_url, "COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "MAS001" in result.output
    assert "nothing was imported" in result.output
    with pytest.raises(LookupError):
        get_plan(session, "42690ma1234502")
