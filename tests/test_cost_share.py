"""The SBC cost-sharing language: examples, errors, the CMS corpus, and describe() round trips."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from openhmo.money import format_money
from openhmo.plans.cost_share import (
    EMPTY,
    NOT_APPLICABLE,
    CopayUnit,
    CostShare,
    CostShareError,
    DeductibleRule,
    NotACostShare,
    combine,
    parse_cms_coinsurance,
    parse_cms_copay,
    parse_cost_share,
)

AFTER = DeductibleRule.AFTER_DEDUCTIBLE
NO = DeductibleRule.NO_DEDUCTIBLE
WITH = DeductibleRule.WITH_DEDUCTIBLE


def terms(cs: CostShare) -> dict:
    """What a cost share says, without the text it was read from."""
    return cs.model_dump(exclude={"text"})


def expected(**fields) -> dict:
    return terms(CostShare(text="", **fields))


# --- the SBC language, form by form ----------------------------------------------------

EXAMPLES = [
    ("$30 copay", expected(copay=3000)),
    ("$30", expected(copay=3000)),
    ("$0 copay", expected(copay=0)),
    ("  $30   COPAY  ", expected(copay=3000)),
    ("$1,000 copayment", expected(copay=100000)),
    ("$1000.00", expected(copay=100000)),
    ("$12.5 co-pay", expected(copay=1250)),
    ("$30 copay before deductible", expected(copay=3000)),
    ("$30 copay before the deductible", expected(copay=3000)),
    ("$30 copay, deductible does not apply", expected(copay=3000)),
    ("$30 copay after deductible", expected(copay=3000, deductible=AFTER)),
    ("$30 copay after the deductible", expected(copay=3000, deductible=AFTER)),
    ("$30 copay deductible applies", expected(copay=3000, deductible=AFTER)),
    ("$30 copay with deductible", expected(copay=3000, deductible=WITH)),
    ("$75 per visit", expected(copay=7500)),
    ("$250 copay per day", expected(copay=25000, copay_unit=CopayUnit.DAY)),
    ("$500 copay per stay", expected(copay=50000, copay_unit=CopayUnit.STAY)),
    ("$500 copay per admission", expected(copay=50000, copay_unit=CopayUnit.STAY)),
    ("$10 per prescription", expected(copay=1000, copay_unit=CopayUnit.PRESCRIPTION)),
    ("$10 per script", expected(copay=1000, copay_unit=CopayUnit.PRESCRIPTION)),
    ("$100 per trip", expected(copay=10000, copay_unit=CopayUnit.TRIP)),
    ("$20 per item", expected(copay=2000, copay_unit=CopayUnit.ITEM)),
    ("$15 copay per service", expected(copay=1500, copay_unit=CopayUnit.SERVICE)),
    (
        "$250 copay per day up to 5 days",
        expected(copay=25000, copay_unit=CopayUnit.DAY, copay_max_units=5),
    ),
    (
        "$250.00 copay per day, up to 5 days",
        expected(copay=25000, copay_unit=CopayUnit.DAY, copay_max_units=5),
    ),
    (
        "$100 copay for the first 3 days after deductible",
        expected(copay=10000, copay_unit=CopayUnit.DAY, copay_max_units=3, deductible=AFTER),
    ),
    ("$40 copay up to 1 visit", expected(copay=4000, copay_max_units=1)),
    ("20% coinsurance", expected(coinsurance=Decimal(20))),
    ("20%", expected(coinsurance=Decimal(20))),
    ("20.00%", expected(coinsurance=Decimal(20))),
    ("12.5 % coinsurance", expected(coinsurance=Decimal("12.5"))),
    ("0%", expected(coinsurance=Decimal(0))),
    ("100%", expected(coinsurance=Decimal(100))),
    ("20% coinsurance after deductible", expected(coinsurance=Decimal(20), deductible=AFTER)),
    ("20% coinsurance before deductible", expected(coinsurance=Decimal(20))),
    ("No charge", expected()),
    ("NO CHARGE", expected()),
    ("No charge after deductible", expected(deductible=AFTER)),
    ("No charge deductible does not apply", expected()),
    ("Not covered", expected(covered=False)),
    ("not  COVERED", expected(covered=False)),
    ("Excluded", expected(covered=False)),
    (
        "$500 copay per stay then 20% coinsurance after deductible",
        expected(copay=50000, copay_unit=CopayUnit.STAY, coinsurance=Decimal(20), deductible=WITH),
    ),
    ("$30 copay and 20% coinsurance", expected(copay=3000, coinsurance=Decimal(20))),
    ("$30 copay plus 20% coinsurance", expected(copay=3000, coinsurance=Decimal(20))),
    ("$30; 20%", expected(copay=3000, coinsurance=Decimal(20))),
    ("$30, 20%", expected(copay=3000, coinsurance=Decimal(20))),
    ("$30 + 20%", expected(copay=3000, coinsurance=Decimal(20))),
    (
        "$30 copay after deductible then 20% coinsurance after deductible",
        expected(copay=3000, coinsurance=Decimal(20), deductible=AFTER),
    ),
    (
        "$30 copay with deductible and 20% coinsurance",
        expected(copay=3000, coinsurance=Decimal(20), deductible=WITH),
    ),
    (
        "$30 copay before deductible then 10% coinsurance after deductible",
        expected(copay=3000, coinsurance=Decimal(10), deductible=WITH),
    ),
    (
        "No charge then 20% coinsurance after deductible",
        expected(coinsurance=Decimal(20), deductible=AFTER),
    ),
    (
        "$150 copay after deductible and 0%",
        expected(copay=15000, coinsurance=Decimal(0), deductible=AFTER),
    ),
]


@pytest.mark.parametrize(("text", "want"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_parse_cost_share(text, want):
    cs = parse_cost_share(text)
    assert terms(cs) == want
    assert cs.text == text


def test_every_deductible_rule_and_unit_is_in_the_examples():
    parsed = [parse_cost_share(text) for text, _ in EXAMPLES]
    assert {cs.deductible for cs in parsed} == set(DeductibleRule)
    assert {cs.copay_unit for cs in parsed if cs.copay is not None} == set(CopayUnit)


ERRORS = [
    ("$3o copay", "'3o'", "expected an amount such as $30"),
    ("$30 copay per week", "'week'", "visit, day, stay"),
    ("$30 copay per", "the end", "a unit after 'per'"),
    ("free", "'free'", "'No charge' or 'Not covered'"),
    ("", "the end", "an amount such as $30"),
    ("120% coinsurance", "'120%'", "a percent between 0% and 100%"),
    ("$1.005 copay", "'1.005'", "dollars and cents"),
    ("$1,00", "'1,00'", "an amount such as $30"),
    ("$30 copay and $40 copay", "'$40'", "one copay at most"),
    ("20%, 30% coinsurance", "'30%'", "one coinsurance at most"),
    ("20% with deductible", "'with'", "'with deductible' goes with a copay"),
    ("No charge with deductible", "'with'", "'after deductible'"),
    ("Not covered after deductible", "'after'", "nothing after 'Not covered'"),
    ("$30 copay per day up to 3 visits", "'visits'", "a limit in days"),
    ("$30 copay up to 0 days", "'0'", "at least 1"),
    ("$30 then", "the end", "an amount such as $30"),
    ("20% maybe", "'maybe'", "'after deductible'"),
    ("$30 copay whenever", "'whenever'", "'per visit', 'up to 5 days'"),
]


@pytest.mark.parametrize(("text", "word", "hint"), ERRORS, ids=[t or "empty" for t, _, _ in ERRORS])
def test_errors_quote_the_text_and_the_failing_word(text, word, hint):
    with pytest.raises(CostShareError) as info:
        parse_cost_share(text)
    message = str(info.value)
    assert message.startswith(f"could not read {text!r} at {word}: expected ")
    assert hint in message
    assert isinstance(info.value, ValueError)


def test_error_message_of_the_brief():
    with pytest.raises(
        CostShareError,
        match=r"^could not read '\$3o copay' at '3o': expected an amount such as \$30$",
    ):
        parse_cost_share("$3o copay")


# --- the model -------------------------------------------------------------------------


def test_is_no_charge():
    assert parse_cost_share("No charge").is_no_charge
    assert parse_cost_share("No charge after deductible").is_no_charge
    assert parse_cost_share("$0 copay").is_no_charge
    assert parse_cost_share("0% coinsurance").is_no_charge
    assert not parse_cost_share("$0.01 copay").is_no_charge
    assert not parse_cost_share("0.5%").is_no_charge
    assert not parse_cost_share("Not covered").is_no_charge


def test_the_model_refuses_states_no_text_can_state():
    with pytest.raises(ValidationError, match="with_deductible needs a copay"):
        CostShare(text="", coinsurance=Decimal(20), deductible=WITH)
    with pytest.raises(ValidationError, match="not covered"):
        CostShare(text="", covered=False, copay=3000)
    with pytest.raises(ValidationError, match="needs a copay"):
        CostShare(text="", copay_unit=CopayUnit.DAY)
    with pytest.raises(ValidationError, match="a Decimal, an int or text"):
        CostShare(text="", coinsurance=20.0)
    with pytest.raises(ValidationError, match="between 0% and 100%"):
        CostShare(text="", coinsurance=Decimal(101))
    with pytest.raises(ValidationError):
        CostShare(text="", copay=-1)
    frozen = parse_cost_share("$30")
    with pytest.raises(ValidationError):
        frozen.copay = 1
    assert CostShare(text="", coinsurance="20.00%").coinsurance == Decimal(20)


DESCRIPTIONS = [
    ("$30 copay", "$30.00 copay per visit"),
    ("20% coinsurance after deductible", "20% coinsurance after deductible"),
    ("No charge", "No charge"),
    ("No Charge after deductible", "No charge after deductible"),
    ("Not covered", "Not covered"),
    ("$250 copay per day up to 5 days", "$250.00 copay per day, up to 5 days"),
    ("$40 copay up to 1 visit", "$40.00 copay per visit, up to 1 visit"),
    ("$30 copay with deductible", "$30.00 copay per visit with deductible"),
    ("12.50%", "12.5% coinsurance"),
    ("$1000 per admission", "$1,000.00 copay per stay"),
    (
        "$500 copay per stay then 20% coinsurance after deductible",
        "$500.00 copay per stay then 20% coinsurance after deductible",
    ),
    (
        "$30 after deductible, 20% after deductible",
        "$30.00 copay per visit after deductible then 20% coinsurance after deductible",
    ),
]


@pytest.mark.parametrize(("text", "description"), DESCRIPTIONS)
def test_describe(text, description):
    cs = parse_cost_share(text)
    assert cs.describe() == description
    assert terms(parse_cost_share(cs.describe())) == terms(cs)


def test_describe_in_japanese_and_swedish():
    cs = parse_cost_share("$250 copay per day up to 5 days after deductible")
    assert cs.describe("ja") == "免責額の達成後、1日につき定額自己負担 $250.00（5日まで）"
    assert cs.describe("sv") == "$250.00 i egenavgift per dag, högst 5 dagar efter självrisken"
    assert parse_cost_share("Not covered").describe("sv") == "Täcks inte"
    assert parse_cost_share("No charge").describe("ja") == "自己負担なし"


# --- the CMS columns -------------------------------------------------------------------

CMS_COPAY = [
    ("$30", expected(copay=3000)),
    ("$30.00", expected(copay=3000)),
    ("$0 Copay per Day", expected(copay=0, copay_unit=CopayUnit.DAY)),
    (
        "$250 Copay per Stay after deductible",
        expected(copay=25000, copay_unit=CopayUnit.STAY, deductible=AFTER),
    ),
    ("$1,000 Copay before deductible", expected(copay=100000)),
    ("$30 Copay with deductible", expected(copay=3000, deductible=WITH)),
    ("No Charge", expected()),
    ("No Charge after deductible", expected(deductible=AFTER)),
    ("$500.00 Copay per Stay", expected(copay=50000, copay_unit=CopayUnit.STAY)),
]
CMS_COINSURANCE = [
    ("20%", expected(coinsurance=Decimal(20))),
    ("20.00%", expected(coinsurance=Decimal(20))),
    ("0%", expected(coinsurance=Decimal(0))),
    ("100%", expected(coinsurance=Decimal(100))),
    ("20% Coinsurance after deductible", expected(coinsurance=Decimal(20), deductible=AFTER)),
    ("No Charge", expected()),
    ("No Charge after deductible", expected(deductible=AFTER)),
]


@pytest.mark.parametrize(("cell", "want"), CMS_COPAY)
def test_parse_cms_copay(cell, want):
    assert terms(parse_cms_copay(cell)) == want


@pytest.mark.parametrize(("cell", "want"), CMS_COINSURANCE)
def test_parse_cms_coinsurance(cell, want):
    assert terms(parse_cms_coinsurance(cell)) == want


@pytest.mark.parametrize("parse", [parse_cms_copay, parse_cms_coinsurance])
@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("", EMPTY),
        ("   ", EMPTY),
        ("Not Applicable", NOT_APPLICABLE),
        (" not applicable ", NOT_APPLICABLE),
    ],
)
def test_cells_that_are_not_a_cost_share(parse, cell, reason):
    with pytest.raises(NotACostShare) as info:
        parse(cell)
    assert info.value.reason == reason
    assert reason.startswith(("empty:", "Not Applicable:"))


@pytest.mark.parametrize("parse", [parse_cms_copay, parse_cms_coinsurance])
def test_unreadable_cms_cells_raise_cost_share_error(parse):
    with pytest.raises(CostShareError, match="'Varies'"):
        parse("Varies")


def _cms(copay: str, coinsurance: str) -> CostShare:
    def cell(parse, text):
        try:
            return parse(text)
        except NotACostShare:
            return None

    return combine(cell(parse_cms_copay, copay), cell(parse_cms_coinsurance, coinsurance))


COMBINED = [
    (
        "No Charge after deductible",
        "20% Coinsurance after deductible",
        expected(coinsurance=Decimal(20), deductible=AFTER),
    ),
    ("$500.00", "Not Applicable", expected(copay=50000)),
    ("No Charge", "20%", expected(coinsurance=Decimal(20))),
    (
        "$500 Copay per Stay",
        "20% Coinsurance after deductible",
        expected(copay=50000, copay_unit=CopayUnit.STAY, coinsurance=Decimal(20), deductible=WITH),
    ),
    (
        "No Charge",
        "20% Coinsurance after deductible",
        expected(coinsurance=Decimal(20), deductible=AFTER),
    ),
    ("Not Applicable", "50%", expected(coinsurance=Decimal(50))),
    ("$35", "0%", expected(copay=3500, coinsurance=Decimal(0))),
    (
        "$150 Copay after deductible",
        "0%",
        expected(copay=15000, coinsurance=Decimal(0), deductible=AFTER),
    ),
    (
        "$30 Copay before deductible",
        "20% Coinsurance after deductible",
        expected(copay=3000, coinsurance=Decimal(20), deductible=WITH),
    ),
    ("$250 Copay with deductible", "No Charge", expected(copay=25000, deductible=WITH)),
    ("No Charge after deductible", "0%", expected(coinsurance=Decimal(0), deductible=AFTER)),
    ("No Charge", "No Charge", expected()),
    ("0%", "0%", expected(coinsurance=Decimal(0))),
    ("0%", "$0", expected(copay=0, coinsurance=Decimal(0))),
]


@pytest.mark.parametrize(("copay", "coinsurance", "want"), COMBINED)
def test_combine(copay, coinsurance, want):
    assert terms(_cms(copay, coinsurance)) == want


def test_combine_text_and_refusals():
    copay, coins = parse_cms_copay("$30"), parse_cms_coinsurance("20%")
    assert combine(copay, coins).text == "$30; 20%"
    assert combine(copay, coins, text="office visit").text == "office visit"
    assert combine(copay, None).text == "$30"
    with pytest.raises(NotACostShare) as info:
        combine(None, None)
    assert info.value.reason == EMPTY
    with pytest.raises(CostShareError, match="both columns state a copay"):
        combine(copay, parse_cms_coinsurance("$40"))
    with pytest.raises(CostShareError, match="both columns state a coinsurance"):
        combine(parse_cms_copay("10%"), coins)
    with pytest.raises(CostShareError, match="not covered"):
        combine(parse_cost_share("Not covered"), coins)
    assert not combine(parse_cost_share("Not covered"), parse_cost_share("Excluded")).covered


# --- the real corpus -------------------------------------------------------------------

COPAY_COLUMNS = ("CopayInnTier1", "CopayInnTier2", "CopayOutofNet")
COINSURANCE_COLUMNS = ("CoinsInnTier1", "CoinsInnTier2", "CoinsOutofNet")
PARSED = "parsed"

# Counted once over cost_sample.csv (10,000 rows) and written down: a change here means the
# parser now reads the marketplace data differently.
PUF_OUTCOMES = {
    "CopayInnTier1": {PARSED: 6215, EMPTY: 2282, NOT_APPLICABLE: 1503},
    "CopayInnTier2": {PARSED: 563, EMPTY: 9061, NOT_APPLICABLE: 376},
    "CopayOutofNet": {PARSED: 5489, EMPTY: 2282, NOT_APPLICABLE: 2229},
    "CoinsInnTier1": {PARSED: 7260, EMPTY: 2282, NOT_APPLICABLE: 458},
    "CoinsInnTier2": {PARSED: 588, EMPTY: 9061, NOT_APPLICABLE: 351},
    "CoinsOutofNet": {PARSED: 7685, EMPTY: 2282, NOT_APPLICABLE: 33},
}
PUF_TOTALS = {PARSED: 27800, EMPTY: 27250, NOT_APPLICABLE: 4950}
PUF_PARSED_BY_RULE = {AFTER: 8665, NO: 19135}
PUF_COMBINED = {EMPTY: 13937, NO: 8701, AFTER: 6831, WITH: 531}

# (row id in the unnamed first column, column) -> what the cell says
PUF_SPOT_CHECKS = {
    ("1839437", "CopayInnTier1"): expected(copay=100000),  # "$1,000"
    ("1686502", "CopayInnTier2"): expected(copay=225000),  # "$2,250"
    ("2683119", "CopayInnTier1"): expected(copay=3500),  # "$35"
    ("4310372", "CopayOutofNet"): expected(copay=100000),  # "$1,000 Copay before deductible"
    ("1167179", "CopayInnTier1"): expected(
        copay=50000, copay_unit=CopayUnit.STAY, deductible=AFTER
    ),  # "$500 Copay per Stay after deductible"
    ("1081350", "CopayInnTier1"): expected(
        copay=75000, copay_unit=CopayUnit.STAY
    ),  # "$750 Copay per Stay before deductible"
    ("3170565", "CopayInnTier1"): expected(copay=25000, copay_unit=CopayUnit.DAY),
    ("4920731", "CopayInnTier1"): expected(copay=0, copay_unit=CopayUnit.DAY),
    ("2200591", "CopayOutofNet"): expected(deductible=AFTER),  # "No Charge after deductible"
    ("4861920", "CopayInnTier1"): expected(coinsurance=Decimal(0)),  # "0%" in a copay column
    ("3302748", "CoinsInnTier1"): expected(coinsurance=Decimal(20), deductible=AFTER),
    ("4808687", "CoinsOutofNet"): expected(coinsurance=Decimal(85), deductible=AFTER),
    ("1703231", "CoinsOutofNet"): expected(coinsurance=Decimal(100)),  # "100%"
    ("4346634", "CoinsInnTier1"): expected(coinsurance=Decimal(33)),  # "33%"
    ("4287564", "CoinsInnTier2"): expected(),  # "No Charge"
    ("2097184", "CoinsInnTier1"): expected(copay=0),  # "$0" in a coinsurance column
}


@pytest.fixture(scope="module")
def puf_rows(corpus: Path) -> list[dict[str, str]]:
    path = corpus / "marketplace" / "puf_samples_2014_2016" / "cost_sample.csv"
    if not path.exists():
        pytest.skip(f"the marketplace PUF sample is not at {path} (set OPENHMO_CORPUS)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read_cell(column: str, cell: str) -> CostShare | str:
    parse = parse_cms_copay if column in COPAY_COLUMNS else parse_cms_coinsurance
    try:
        return parse(cell)
    except NotACostShare as exc:
        return exc.reason


def test_every_puf_cell_parses_or_is_not_a_cost_share(puf_rows):
    assert len(puf_rows) == 10000
    outcomes = {column: Counter() for column in PUF_OUTCOMES}
    rules: Counter = Counter()
    for row in puf_rows:
        for column, counter in outcomes.items():
            got = _read_cell(column, row[column])  # a CostShareError fails the test here
            if isinstance(got, CostShare):
                counter[PARSED] += 1
                rules[got.deductible] += 1
            else:
                counter[got] += 1
    assert {column: dict(counter) for column, counter in outcomes.items()} == PUF_OUTCOMES
    assert dict(sum(outcomes.values(), Counter())) == PUF_TOTALS
    assert dict(rules) == PUF_PARSED_BY_RULE


def test_puf_spot_checks(puf_rows):
    by_id = {row[""]: row for row in puf_rows}
    for (row_id, column), want in PUF_SPOT_CHECKS.items():
        got = _read_cell(column, by_id[row_id][column])
        assert isinstance(got, CostShare), (row_id, column, got)
        assert terms(got) == want, (row_id, column, by_id[row_id][column])
        assert got.text == by_id[row_id][column]


def test_puf_columns_combine(puf_rows):
    outcomes: Counter = Counter()
    for row in puf_rows:
        for copay_column, coinsurance_column in zip(
            COPAY_COLUMNS, COINSURANCE_COLUMNS, strict=True
        ):
            copay = _read_cell(copay_column, row[copay_column])
            coins = _read_cell(coinsurance_column, row[coinsurance_column])
            try:
                combined = combine(
                    copay if isinstance(copay, CostShare) else None,
                    coins if isinstance(coins, CostShare) else None,
                )
            except NotACostShare as exc:
                outcomes[exc.reason] += 1
            else:
                outcomes[combined.deductible] += 1
    assert dict(outcomes) == PUF_COMBINED


def test_every_distinct_puf_cell_describes_back_to_itself(puf_rows):
    cells = {(c, row[c]) for row in puf_rows for c in (*COPAY_COLUMNS, *COINSURANCE_COLUMNS)}
    checked = 0
    for column, cell in cells:
        got = _read_cell(column, cell)
        if isinstance(got, CostShare):
            assert terms(parse_cost_share(got.describe())) == terms(got), cell
            checked += 1
    assert checked > 200


SERFF_NS = {"t": "http://vo.ffe.cms.hhs.gov"}
SERFF_ELEMENTS = {
    "copayInNetworkTier1": parse_cms_copay,
    "copayOutOfNetwork": parse_cms_copay,
    "coInsuranceInNetworkTier1": parse_cms_coinsurance,
    "coInsuranceOutOfNetwork": parse_cms_coinsurance,
}
SERFF_OUTCOMES = {
    "copayInNetworkTier1": {PARSED: 252, NOT_APPLICABLE: 24},
    "copayOutOfNetwork": {PARSED: 8, NOT_APPLICABLE: 268},
    "coInsuranceInNetworkTier1": {PARSED: 24, NOT_APPLICABLE: 252},
    "coInsuranceOutOfNetwork": {PARSED: 268, NOT_APPLICABLE: 8},
}


def test_serff_plans_and_benefits_template(corpus: Path):
    path = corpus / "sbc" / "serff_plans_benefits_template" / "SHOP_PB_BCBS.xml"
    if not path.exists():
        pytest.skip(f"the SERFF Plans & Benefits template is not at {path} (set OPENHMO_CORPUS)")
    visits = ET.parse(path).getroot().findall(".//t:serviceVisit", SERFF_NS)
    assert len(visits) == 276
    outcomes = {name: Counter() for name in SERFF_ELEMENTS}
    seen: dict[str, CostShare] = {}
    for visit in visits:
        for name, parse in SERFF_ELEMENTS.items():
            cell = visit.findtext(f"t:{name}/t:cellValue", default="", namespaces=SERFF_NS)
            try:
                seen[cell] = parse(cell)
                outcomes[name][PARSED] += 1
            except NotACostShare as exc:
                outcomes[name][exc.reason] += 1
    assert {name: dict(counter) for name, counter in outcomes.items()} == SERFF_OUTCOMES
    assert terms(seen["$500.00 Copay per Stay after deductible"]) == expected(
        copay=50000, copay_unit=CopayUnit.STAY, deductible=AFTER
    )
    assert terms(seen["25.00% Coinsurance after deductible"]) == expected(
        coinsurance=Decimal(25), deductible=AFTER
    )
    assert terms(seen["100.00%"]) == expected(coinsurance=Decimal(100))


# --- describe() round trips ------------------------------------------------------------


@st.composite
def cost_shares(draw) -> CostShare:
    if draw(st.integers(0, 9)) == 0:
        return CostShare(text="", covered=False)
    copay = draw(st.none() | st.integers(0, 500_000))
    coinsurance = draw(
        st.none()
        | st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
    )
    rules = [NO, AFTER, WITH] if copay is not None else [NO, AFTER]
    fields: dict = {
        "copay": copay,
        "coinsurance": coinsurance,
        "deductible": draw(st.sampled_from(rules)),
    }
    if copay is not None:
        fields["copay_unit"] = draw(st.sampled_from(CopayUnit))
        fields["copay_max_units"] = draw(st.none() | st.integers(1, 365))
    return CostShare(text="", **fields)


@given(cost_shares())
def test_describe_parses_back_to_the_same_cost_share(cs):
    text = cs.describe()
    again = parse_cost_share(text)
    assert terms(again) == terms(cs), text
    assert again.text == text


@given(cost_shares(), st.sampled_from(["ja", "sv"]))
def test_describe_in_other_languages_states_the_amounts(cs, language):
    text = cs.describe(language)
    assert text != cs.describe("en")
    if cs.copay is not None:
        assert format_money(cs.copay) in text
    if cs.coinsurance is not None:
        assert f"{cs.coinsurance:f}%" in text
    if cs.copay_max_units is not None:
        assert str(cs.copay_max_units) in text
