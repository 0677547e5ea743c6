"""The service-category rule table and its two classifiers (vectorised and line by line)."""

from __future__ import annotations

import csv
import io
import re
from importlib import resources
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhmo.categories import DRUG_TIERS, ServiceCategory
from openhmo.categories.classifier import (
    RuleTableError,
    classify,
    classify_line,
    load_rules,
)

C = ServiceCategory
SCHEMA = {
    "procedure_code": pl.String,
    "modifiers": pl.List(pl.String),
    "revenue_code": pl.String,
    "place_of_service": pl.String,
    "rendering_taxonomy": pl.String,
    "diagnosis_codes": pl.List(pl.String),
    "drug_tier": pl.String,
    "claim_type": pl.String,
    "sex": pl.String,
}
PRO, INST, RX = "professional", "institutional", "pharmacy"


def line(**fields: object) -> dict[str, object]:
    return {name: fields.get(name) for name in SCHEMA}


def em(code: str, taxonomy: str | None, sex: str = "F", **more: object) -> dict[str, object]:
    """An office E/M line (POS 11 unless `more` says otherwise)."""
    fields = {"place_of_service": "11", "claim_type": PRO, **more}
    return line(procedure_code=code, rendering_taxonomy=taxonomy, sex=sex, **fields)


# (expected category, expected rule_id, line)
CASES: list[tuple[ServiceCategory, str, dict[str, object]]] = [
    # preventive
    (C.PREVENTIVE, "preventive_modifier_33", em("99213", "207RC0000X", modifiers=["33"])),
    (C.PREVENTIVE, "preventive_modifier_33", line(procedure_code="45378", modifiers=["PT", "33"])),
    (C.PREVENTIVE, "preventive_modifier_33", line(procedure_code="77067", modifiers=["33"])),
    (C.PREVENTIVE, "preventive_visit_99381_99397", em("99395", "207Q00000X")),
    (C.PREVENTIVE, "preventive_visit_99381_99397", em("99381", "208000000X")),
    (C.PREVENTIVE, "preventive_wellness_g0402_g0438_g0439", em("G0439", "207R00000X")),
    (C.PREVENTIVE, "preventive_counselling", em("99401", "363L00000X")),
    (C.PREVENTIVE, "preventive_counselling", em("99406", "207Q00000X")),
    (
        C.PREVENTIVE,
        "preventive_immunization_z23",
        line(procedure_code="90686", diagnosis_codes=["Z23"], place_of_service="20"),
    ),
    (
        C.PREVENTIVE,
        "preventive_immunization_z23",
        line(procedure_code="90471", diagnosis_codes=["Z0000", "Z23"]),
    ),
    (
        C.PREVENTIVE,
        "preventive_well_visit_dx",
        em("99213", "207RC0000X", diagnosis_codes=["Z0000"]),
    ),
    (
        C.PREVENTIVE,
        "preventive_well_visit_dx",
        em("99214", "207Q00000X", diagnosis_codes=["Z01.419"]),
    ),
    # screening mammography beats imaging; diagnostic mammography is imaging
    (C.SCREENING_MAMMOGRAPHY, "screening_mammography_codes", line(procedure_code="77067")),
    (C.SCREENING_MAMMOGRAPHY, "screening_mammography_codes", line(procedure_code="77063")),
    (C.SCREENING_MAMMOGRAPHY, "screening_mammography_codes", line(procedure_code="g0202")),
    (
        C.SCREENING_MAMMOGRAPHY,
        "screening_mammography_codes",
        line(revenue_code="0403", procedure_code="77067", claim_type=INST),
    ),
    (
        C.SCREENING_MAMMOGRAPHY,
        "screening_mammography_revenue_0403",
        line(revenue_code="0403", claim_type=INST),
    ),
    (C.IMAGING, "imaging_radiology", line(procedure_code="77066")),
    (C.IMAGING, "imaging_radiology", line(procedure_code="77065", place_of_service="22")),
    (C.IMAGING, "imaging_radiology", line(procedure_code="71046")),
    (C.IMAGING, "imaging_radiology", em("72100", "111N00000X")),
    (C.IMAGING, "imaging_revenue", line(revenue_code="0320", claim_type=INST)),
    (C.IMAGING, "imaging_revenue", line(revenue_code="401", claim_type=INST)),
    # advanced imaging beats imaging
    (C.ADVANCED_IMAGING, "advanced_imaging_procedures", line(procedure_code="70551")),
    (C.ADVANCED_IMAGING, "advanced_imaging_procedures", line(procedure_code="74177")),
    (C.ADVANCED_IMAGING, "advanced_imaging_procedures", line(procedure_code="78815")),
    (C.ADVANCED_IMAGING, "advanced_imaging_revenue", line(revenue_code="0610", claim_type=INST)),
    (C.ADVANCED_IMAGING, "advanced_imaging_revenue", line(revenue_code="0404", claim_type=INST)),
    # emergency room and urgent care
    (C.EMERGENCY_ROOM, "er_revenue_045x", line(revenue_code="0450", claim_type=INST)),
    (C.EMERGENCY_ROOM, "er_revenue_045x", line(revenue_code=" 0459 ", claim_type=INST)),
    (C.EMERGENCY_ROOM, "er_pos_23", line(procedure_code="99222", place_of_service="23")),
    (C.EMERGENCY_ROOM, "er_pos_23", line(procedure_code="70450", place_of_service="23")),
    (C.EMERGENCY_ROOM, "er_em_99281_99285", line(procedure_code="99285")),
    (C.EMERGENCY_ROOM, "er_em_99281_99285", line(procedure_code="G0383")),
    (C.URGENT_CARE, "urgent_care_revenue_0456", line(revenue_code="0456", claim_type=INST)),
    (C.URGENT_CARE, "urgent_care_pos_20", em("99213", "207Q00000X", place_of_service="20")),
    (C.URGENT_CARE, "urgent_care_pos_20", line(procedure_code="99283", place_of_service="20")),
    (C.URGENT_CARE, "urgent_care_s9083_s9088", line(procedure_code="S9083")),
    (C.URGENT_CARE, "urgent_care_s9083_s9088", line(procedure_code="S9088")),
    # ambulance
    (C.AMBULANCE, "ambulance_hcpcs_a0425_a0436", line(procedure_code="A0427")),
    (C.AMBULANCE, "ambulance_hcpcs_a0425_a0436", line(procedure_code=" a0425\t")),
    (C.AMBULANCE, "ambulance_hcpcs_a0425_a0436", line(procedure_code="A0436")),
    (C.AMBULANCE, "ambulance_pos_41_42", line(procedure_code="A0998", place_of_service="41")),
    (C.AMBULANCE, "ambulance_revenue_054x", line(revenue_code="0540", claim_type=INST)),
    # inpatient
    (C.INPATIENT, "inpatient_pos_21", line(procedure_code="99223", place_of_service="21")),
    (C.INPATIENT, "inpatient_pos_21", line(procedure_code="71046", place_of_service="21")),
    (C.INPATIENT, "inpatient_revenue_room_board", line(revenue_code="0120", claim_type=INST)),
    (C.INPATIENT, "inpatient_revenue_room_board", line(revenue_code="0200", claim_type=INST)),
    (C.INPATIENT, "inpatient_hospital_care_em", line(procedure_code="99232")),
    # outpatient surgery
    (
        C.OUTPATIENT_SURGERY,
        "outpatient_surgery_facility",
        line(procedure_code="29881", place_of_service="24"),
    ),
    (
        C.OUTPATIENT_SURGERY,
        "outpatient_surgery_facility",
        line(procedure_code="47562", place_of_service="22"),
    ),
    (
        C.OUTPATIENT_SURGERY,
        "outpatient_surgery_revenue",
        line(revenue_code="0360", claim_type=INST),
    ),
    (
        C.OUTPATIENT_SURGERY,
        "outpatient_surgery_revenue",
        line(revenue_code="0490", claim_type=INST),
    ),
    (
        C.OUTPATIENT_SURGERY,
        "outpatient_surgery_office",
        line(procedure_code="11102", place_of_service="11"),
    ),
    # lab
    (C.LAB, "lab_procedures", line(procedure_code="80053")),
    (C.LAB, "lab_procedures", line(procedure_code="36415", place_of_service="22")),
    (C.LAB, "lab_procedures", line(procedure_code="0012U")),
    (C.LAB, "lab_revenue", line(revenue_code="0300", claim_type=INST)),
    # mental health
    (C.MENTAL_HEALTH_OUTPATIENT, "mh_outpatient_procedures", line(procedure_code="90837")),
    (C.MENTAL_HEALTH_OUTPATIENT, "mh_outpatient_procedures", line(procedure_code="H0004")),
    (C.MENTAL_HEALTH_OUTPATIENT, "mh_outpatient_procedures", line(procedure_code="97153")),
    (
        C.MENTAL_HEALTH_OUTPATIENT,
        "mh_outpatient_revenue",
        line(revenue_code="0900", claim_type=INST),
    ),
    (C.MENTAL_HEALTH_OUTPATIENT, "mh_outpatient_behavioral_em", em("99213", "103TC0700X")),
    (C.MENTAL_HEALTH_OUTPATIENT, "mh_outpatient_behavioral_em", em("99214", "2084P0800X")),
    (
        C.MENTAL_HEALTH_INPATIENT,
        "mh_inpatient_pos_51_55_56",
        line(procedure_code="99223", place_of_service="51"),
    ),
    (C.MENTAL_HEALTH_INPATIENT, "mh_inpatient_revenue", line(revenue_code="0114", claim_type=INST)),
    (C.MENTAL_HEALTH_INPATIENT, "mh_inpatient_revenue", line(revenue_code="0204", claim_type=INST)),
    (C.MENTAL_HEALTH_INPATIENT, "mh_inpatient_revenue", line(revenue_code="0116", claim_type=INST)),
    # maternity
    (C.MATERNITY, "maternity_procedures", line(procedure_code="59400", place_of_service="21")),
    (C.MATERNITY, "maternity_procedures", line(procedure_code="76805")),
    (C.MATERNITY, "maternity_revenue", line(revenue_code="0720", claim_type=INST)),
    (C.MATERNITY, "maternity_revenue", line(revenue_code="0112", claim_type=INST)),
    (C.MATERNITY, "maternity_pregnancy_em", em("99213", "207Q00000X", diagnosis_codes=["O26.891"])),
    (C.MATERNITY, "maternity_pregnancy_em", em("99213", "207V00000X", diagnosis_codes=["Z3480"])),
    # rehabilitation and chiropractic
    (C.REHABILITATION, "rehabilitation_procedures", line(procedure_code="97110")),
    (C.REHABILITATION, "rehabilitation_procedures", line(procedure_code="92507")),
    (C.REHABILITATION, "rehabilitation_procedures", line(procedure_code="97161")),
    (C.REHABILITATION, "rehabilitation_revenue", line(revenue_code="0420", claim_type=INST)),
    (C.CHIROPRACTIC, "chiropractic_manipulation", line(procedure_code="98941")),
    (C.CHIROPRACTIC, "chiropractic_provider", em("99213", "111N00000X")),
    (C.CHIROPRACTIC, "chiropractic_provider", em("97140", "111N00000X")),
    # DME
    (C.DME, "dme_hcpcs", line(procedure_code="E0601")),
    (C.DME, "dme_hcpcs", line(procedure_code="K0001")),
    (C.DME, "dme_hcpcs", line(procedure_code="L3000")),
    (C.DME, "dme_revenue", line(revenue_code="0291", claim_type=INST)),
    # skilled nursing, home health, hospice
    (C.SKILLED_NURSING, "snf_pos_31_32", line(procedure_code="99309", place_of_service="31")),
    (C.SKILLED_NURSING, "snf_pos_31_32", line(procedure_code="99309", place_of_service="32")),
    (C.SKILLED_NURSING, "snf_revenue", line(revenue_code="0191", claim_type=INST)),
    (C.SKILLED_NURSING, "snf_revenue", line(revenue_code="0022", claim_type=INST)),
    (
        C.HOME_HEALTH,
        "home_health_agency_pos_12",
        line(procedure_code="G0299", place_of_service="12", rendering_taxonomy="251E00000X"),
    ),
    (C.HOME_HEALTH, "home_health_revenue", line(revenue_code="0551", claim_type=INST)),
    (C.HOME_HEALTH, "home_health_revenue", line(revenue_code="0023", claim_type=INST)),
    (C.HOSPICE, "hospice_pos_34", line(procedure_code="99349", place_of_service="34")),
    (C.HOSPICE, "hospice_revenue", line(revenue_code="0651", claim_type=INST)),
    (C.HOSPICE, "hospice_revenue", line(revenue_code="0115", claim_type=INST)),
    (
        C.HOSPICE,
        "hospice_provider_taxonomy",
        line(procedure_code="99213", rendering_taxonomy="251G00000X"),
    ),
    # drugs by tier
    (C.DRUGS_GENERIC, "pharmacy_tier_generic", line(claim_type=RX, drug_tier="generic")),
    (C.DRUGS_GENERIC, "pharmacy_tier_generic", line(claim_type="Pharmacy", drug_tier=" GENERIC ")),
    (C.DRUGS_GENERIC, "pharmacy_tier_generic", line(claim_type=RX, drug_tier="generic", sex="M")),
    (
        C.DRUGS_PREFERRED_BRAND,
        "pharmacy_tier_preferred_brand",
        line(claim_type=RX, drug_tier="preferred_brand"),
    ),
    (
        C.DRUGS_PREFERRED_BRAND,
        "pharmacy_tier_preferred_brand",
        line(claim_type=RX, drug_tier="Preferred_Brand"),
    ),
    (
        C.DRUGS_PREFERRED_BRAND,
        "pharmacy_tier_preferred_brand",
        line(claim_type=" pharmacy", drug_tier="preferred_brand"),
    ),
    (
        C.DRUGS_NON_PREFERRED_BRAND,
        "pharmacy_tier_non_preferred_brand",
        line(claim_type=RX, drug_tier="non_preferred_brand"),
    ),
    (
        C.DRUGS_NON_PREFERRED_BRAND,
        "pharmacy_tier_non_preferred_brand",
        line(claim_type=RX, drug_tier="NON_PREFERRED_BRAND"),
    ),
    (
        C.DRUGS_NON_PREFERRED_BRAND,
        "pharmacy_tier_non_preferred_brand",
        line(claim_type=RX, drug_tier="non_preferred_brand", sex="F"),
    ),
    (C.DRUGS_SPECIALTY, "pharmacy_tier_specialty", line(claim_type=RX, drug_tier="specialty")),
    (C.DRUGS_SPECIALTY, "pharmacy_tier_specialty", line(claim_type=RX, drug_tier="Specialty ")),
    (
        C.DRUGS_SPECIALTY,
        "pharmacy_tier_specialty",
        line(claim_type="PHARMACY", drug_tier="specialty"),
    ),
    # office visits by the rendering taxonomy
    (C.PCP_VISIT, "pcp_visit", em("99213", "207Q00000X")),
    (C.PCP_VISIT, "pcp_visit", em("99214", "207R00000X")),
    (C.PCP_VISIT, "pcp_visit", em("99203", "208000000X")),
    (C.PCP_VISIT, "pcp_visit", em("99212", "363LF0000X")),
    (C.PCP_VISIT, "pcp_visit", em("99213", "261QP2300X", diagnosis_codes=["Z01818"])),
    (C.SPECIALIST_VISIT, "specialist_visit", em("99213", "207RC0000X")),
    (C.SPECIALIST_VISIT, "specialist_visit", em("99204", "2086S0122X")),
    (C.SPECIALIST_VISIT, "specialist_visit", em("99213", "2080P0202X")),
    (C.SPECIALIST_VISIT, "specialist_visit", em("99213", None)),
    (C.SPECIALIST_VISIT, "specialist_visit", em("99213", "207V00000X", sex="M")),
    (
        C.SPECIALIST_VISIT,
        "specialist_visit",
        em("99213", "207RC0000X", diagnosis_codes=["I10", "Z0000"]),
    ),
    (C.OB_GYN_VISIT, "ob_gyn_visit", em("99213", "207V00000X")),
    (C.OB_GYN_VISIT, "ob_gyn_visit", em("99214", "207VG0400X", sex=" f")),
    (C.OB_GYN_VISIT, "ob_gyn_visit", em("99213", "363LX0001X")),
    # other
    (C.OTHER, "catch_all", line(procedure_code="ZZZZZ")),
    (C.OTHER, "catch_all", line(procedure_code="A04250")),
    (C.OTHER, "catch_all", line(procedure_code="0500T")),
    (C.OTHER, "catch_all", line(procedure_code="90686")),
    (C.OTHER, "catch_all", line(procedure_code="J1745", place_of_service="11")),
    (C.OTHER, "catch_all", line()),
    (C.OTHER, "pharmacy_unknown_tier", line(claim_type=RX, drug_tier="tier5")),
    (C.OTHER, "pharmacy_unknown_tier", line(claim_type=RX, procedure_code="99213")),
]


def _case_id(case: tuple[ServiceCategory, str, dict[str, object]]) -> str:
    category, _, fields = case
    shown = ",".join(f"{v}" for v in fields.values() if v is not None)
    return f"{category}:{shown}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_classify_line(case: tuple[ServiceCategory, str, dict[str, object]]) -> None:
    category, rule_id, fields = case
    assert classify_line(**fields) == (category, rule_id)


def test_classify_frame_matches_the_cases() -> None:
    frame = pl.DataFrame([c[2] for c in CASES], schema=SCHEMA)
    out = classify(frame)
    assert out.columns == [*SCHEMA, "service_category", "category_rule"]
    assert out["service_category"].to_list() == [str(c[0]) for c in CASES]
    assert out["category_rule"].to_list() == [c[1] for c in CASES]


def test_every_category_has_three_cases_and_every_rule_one() -> None:
    per_category = {category: 0 for category in ServiceCategory}
    for category, _, _ in CASES:
        per_category[category] += 1
    assert min(per_category.values()) >= 3, per_category
    assert {r.rule_id for r in load_rules().rules} == {c[1] for c in CASES}


def test_table_categories_and_tiers_follow_the_vocabulary() -> None:
    rules = load_rules().rules
    assert {r.category for r in rules} == set(ServiceCategory)
    tiers = {tier for r in rules for tier in r.drug_tier}
    assert tiers == set(DRUG_TIERS)
    for rule in rules:
        if rule.drug_tier:
            assert rule.category == DRUG_TIERS[next(iter(rule.drug_tier))]
    assert rules[-1].rule_id == "catch_all"
    assert rules[-1].category is ServiceCategory.OTHER


def test_missing_columns_are_null_and_extra_columns_pass_through() -> None:
    frame = pl.DataFrame({"claim_id": [7, 8], "revenue_code": [450, 456]})
    out = classify(frame)
    assert out["claim_id"].to_list() == [7, 8]
    assert out["service_category"].to_list() == ["emergency_room", "urgent_care"]
    assert classify(pl.DataFrame(schema=SCHEMA)).height == 0


def test_list_columns_must_be_lists() -> None:
    with pytest.raises(TypeError, match="modifiers"):
        classify(pl.DataFrame({"modifiers": ["33"]}))


# --- the vectorised and row-by-row classifiers agree ------------------------------------------


def _neighbours(code: str) -> list[str]:
    """A range bound and the codes just outside it, in the same shape."""
    match = re.fullmatch(r"([A-Z]?)([0-9]+)([A-Z]?)", code)
    assert match
    head, digits, tail = match.groups()
    out = [code]
    for step in (-1, 1):
        n = int(digits) + step
        if 0 <= n < 10 ** len(digits):
            out.append(f"{head}{n:0{len(digits)}d}{tail}")
    return out


def _pools() -> dict[str, list[str]]:
    rules = load_rules().rules
    codes = {
        c
        for r in rules
        for rng in r.procedure_codes
        for b in (rng.low, rng.high)
        for c in _neighbours(b)
    }
    revenue = {
        c
        for r in rules
        for rng in r.revenue_codes
        for b in (rng.low, rng.high)
        for c in _neighbours(b)
    }
    return {
        "procedure_code": sorted(codes | {"99213", "J1745", "0500T", "A04250", "9921", "E01A0"}),
        "revenue_code": sorted(revenue | {"450", "0250", "0636", "045"}),
        "place_of_service": sorted(
            {p for r in rules for p in r.place_of_service} | {"11", "1", "02", "99"}
        ),
        "rendering_taxonomy": sorted(
            {p.ljust(10, "0")[:9] + "X" for r in rules for p in r.taxonomy_prefixes}
            | {p for r in rules for p in r.taxonomy_prefixes}
            | {"207RC0000X", "2080P0202X", "282N00000X", "332B00000X"}
        ),
        "diagnosis_codes": [
            "Z0000",
            "Z00.129",
            "Z01419",
            "Z01818",
            "Z23",
            "O2441",
            "Z3A28",
            "Z3480",
            "I10",
            "J069",
            "M545",
        ],
        "modifiers": ["33", "25", "26", "TC", "RT", "LT", "PT", "59"],
        "drug_tier": [*DRUG_TIERS, "tier5"],
        "claim_type": [PRO, INST, RX, "dental"],
        "sex": ["F", "M", "U"],
    }


POOLS = _pools()
JUNK = st.text(max_size=7) | st.text(alphabet="0123456789ABZaz .-", max_size=7)


def _value(pool: list[str]) -> st.SearchStrategy[str | None]:
    real = st.sampled_from(pool)
    messy = (
        real.map(str.lower)
        | real.map(lambda v: f" {v}\t")
        | real.map(lambda v: f"{v}\n")
        | real.map(lambda v: f"x{v}")
        | real.map(lambda v: f"{v}0")
    )
    return st.none() | real | real | messy | JUNK


def _list_of(pool: list[str]) -> st.SearchStrategy[list[str | None] | None]:
    return st.none() | st.lists(
        st.none() | _value(pool).filter(lambda v: v is not None), max_size=4
    )


RANDOM_LINE = st.fixed_dictionaries(
    {
        name: (_list_of(POOLS[name]) if isinstance(dtype, pl.List) else _value(POOLS[name]))
        for name, dtype in SCHEMA.items()
    }
)
# Rules that need two or three fields at once rarely fire on independent random fields, so
# half the lines are the table-driven cases with some fields swapped for random ones.
MUTATED_CASE = st.tuples(
    st.sampled_from([case[2] for case in CASES]),
    RANDOM_LINE,
    st.sets(st.sampled_from(list(SCHEMA)), max_size=3),
).map(lambda t: {k: t[1][k] if k in t[2] else t[0][k] for k in SCHEMA})
LINE = RANDOM_LINE | MUTATED_CASE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, min_size=1, max_size=40))
def test_vectorised_and_row_by_row_agree(lines: list[dict[str, object]]) -> None:
    out = classify(pl.DataFrame(lines, schema=SCHEMA))
    expected = [classify_line(**fields) for fields in lines]
    got = list(zip(out["service_category"], out["category_rule"], strict=True))
    assert got == [(str(category), rule_id) for category, rule_id in expected]


# --- rule-table validation -------------------------------------------------------------------


def _packaged_csv() -> str:
    return (
        resources.files("openhmo.categories")
        .joinpath("service_category_rules.csv")
        .read_text(encoding="utf-8")
    )


def _row_of(text: str, rule_id: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if f",{rule_id}," in row)


def _edit(text: str, target: str, /, **cells: str) -> str:
    """Set cells of the row of rule `target`, by column name."""
    rows = list(csv.reader(io.StringIO(text)))
    row = rows[_row_of(text, target) - 1]
    for column, value in cells.items():
        row[rows[0].index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_copy_of_the_table_loads_the_same(tmp_path: Path) -> None:
    copy = load_rules(_write(tmp_path, _packaged_csv()))
    assert copy.rules == load_rules().rules


@pytest.mark.parametrize(
    ("rule_id", "cells", "column", "problem"),
    [
        ("pcp_visit", {"category": "primary_care"}, "category", "unknown service category"),
        ("lab_procedures", {"procedure_codes": "89398-80047"}, "procedure_codes", "backwards"),
        ("ambulance_pos_41_42", {"procedure_codes": "A0425-99999"}, "procedure_codes", "mixes"),
        ("ambulance_pos_41_42", {"procedure_codes": "A0425-B0100"}, "procedure_codes", "mixes"),
        ("lab_procedures", {"procedure_codes": "0001U-0999T"}, "procedure_codes", "mixes"),
        ("lab_procedures", {"procedure_codes": "8004"}, "procedure_codes", "malformed"),
        ("er_revenue_045x", {"revenue_codes": "0459-0450"}, "revenue_codes", "backwards"),
        ("er_revenue_045x", {"revenue_codes": "450"}, "revenue_codes", "malformed"),
        ("pharmacy_tier_generic", {"drug_tier": "generics"}, "drug_tier", "not one of"),
        ("pharmacy_tier_generic", {"claim_type": "rx"}, "claim_type", "not one of"),
        ("ob_gyn_visit", {"sex": "female"}, "sex", "not one of"),
        ("er_pos_23", {"place_of_service": "23||24"}, "place_of_service", "empty item"),
        ("er_pos_23", {"place_of_service": "023"}, "place_of_service", "malformed"),
        ("pcp_visit", {"priority": "high"}, "priority", "not an integer"),
        ("pcp_visit", {"priority": "10"}, "priority", "priority 10 also on row"),
        ("specialist_visit", {"rule_id": "pcp_visit"}, "rule_id", "duplicate rule_id"),
        ("pcp_visit", {"explanation": ""}, "explanation", "empty"),
        ("catch_all", {"sex": "F"}, "sex", "no catch-all"),
        (
            "pcp_visit",
            {"procedure_codes": "", "taxonomy_prefixes": ""},
            "priority",
            "can never apply",
        ),
    ],
)
def test_validation_names_file_row_and_column(
    tmp_path: Path, rule_id: str, cells: dict[str, str], column: str, problem: str
) -> None:
    text = _packaged_csv()
    path = _write(tmp_path, _edit(text, rule_id, **cells))
    with pytest.raises(RuleTableError) as caught:
        load_rules(path)
    row = _row_of(text, rule_id)
    assert str(caught.value).startswith(f"{path}, row {row}, column {column}: ")
    assert problem in str(caught.value)
    assert (caught.value.row, caught.value.column) == (row, column)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, _packaged_csv().replace(",drug_tier,", ",tier,", 1))
    with pytest.raises(
        RuleTableError, match=re.escape(f"{path}, row 1, column drug_tier: missing")
    ):
        load_rules(path)


def test_a_table_without_catch_all_names_its_last_rule(tmp_path: Path) -> None:
    text = "".join(r for r in _packaged_csv().splitlines(True) if ",catch_all," not in r)
    path = _write(tmp_path, text)
    row = _row_of(text, "outpatient_surgery_office")
    expected = f"{path}, row {row}, column procedure_codes: no catch-all"
    with pytest.raises(RuleTableError, match=re.escape(expected)):
        load_rules(path)
