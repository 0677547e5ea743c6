"""The scenarios of tests/scenarios/*.yaml, through the reference model and the engine.

Each scenario states, by hand and to the cent, what adjudication must decide. The
reference model (tests/reference_model.py) and the columnar engine
(`openhmo.adjudication.engine`) are both held to it, field by field, and to each other,
row for row. Until the engine can be imported, its half is skipped with a message.
"""

from __future__ import annotations

import pytest

from openhmo.adjudication.decisions import Result
from reference_model import adjudicate_reference
from scenarios.loader import (
    Scenario,
    decision_rows,
    differences,
    load_scenario,
    nonzero_rows,
    scenario_files,
)

SCENARIOS = scenario_files()
PATIENT_SHARE = {("PR", "1"), ("PR", "2"), ("PR", "3")}


def engine_adjudicate():
    try:
        from openhmo.adjudication.engine import adjudicate
    except ImportError as exc:
        pytest.skip(f"openhmo.adjudication.engine cannot be imported yet ({exc})")
    return adjudicate


@pytest.fixture(params=SCENARIOS, ids=[p.stem for p in SCENARIOS])
def scenario(request) -> Scenario:
    return load_scenario(request.param)


def test_there_are_scenarios_for_every_plan_type():
    types = {load_scenario(p).design.type.value for p in SCENARIOS}
    assert types == {"HMO", "EPO", "POS", "PPO", "indemnity"}


def check(scenario: Scenario, result: Result, who: str) -> None:
    """The result of one implementation against the scenario's expectations."""
    rows = decision_rows(result.decisions)
    inputs = {(r["claim_id"], r["line_number"]) for r in scenario.claims.iter_rows(named=True)}
    assert set(rows) == inputs, f"{who}: one decision per input line"
    assert result.decisions.height == len(inputs), f"{who}: one decision per input line"

    problems = []
    for key, expected in sorted(scenario.expected.items()):
        got = rows[key]
        for column, value in expected.items():
            if column == "explanation_params":
                actual = {k: got[column].get(k) for k in value}
            else:
                actual = got[column]
            if actual != value:
                problems.append(f"{key} {column}: expected {value!r}, {who} gave {actual!r}")
    assert not problems, f"{scenario.name} ({scenario.title}):\n" + "\n".join(problems)

    for key, row in rows.items():
        if row["status"] not in ("paid", "denied"):
            continue
        share = sum(a[3] for a in row["adjustments"] if (a[0], a[1]) in PATIENT_SHARE)
        others = sum(a[3] for a in row["adjustments"] if (a[0], a[1]) not in PATIENT_SHARE)
        assert row["member_share_cents"] == share, f"{who} {key}: member share = PR-1+2+3"
        assert row["charge_cents"] == row["plan_paid_cents"] + share + others, (
            f"{who} {key}: the charge balances"
        )

    if scenario.expected_accumulators is not None:
        expected = {tuple(r.values()) for r in scenario.expected_accumulators if r["amount_cents"]}
        got = nonzero_rows(result.accumulators, "amount_cents")
        assert got == expected, (
            f"{scenario.name}: accumulators\n  missing: {sorted(expected - got, key=repr)}"
            f"\n  unexpected: {sorted(got - expected, key=repr)}"
        )
    if scenario.expected_visit_usage is not None:
        expected = {tuple(r.values()) for r in scenario.expected_visit_usage if r["used"]}
        assert nonzero_rows(result.visit_usage, "used") == expected, f"{scenario.name}: usage"
    if scenario.expected_referral_usage is not None:
        expected = {(k, v) for k, v in scenario.expected_referral_usage.items() if v}
        got = nonzero_rows(result.referral_usage, "used")
        assert got == expected, f"{scenario.name}: referral usage"


def test_reference_model(scenario: Scenario):
    check(scenario, adjudicate_reference(scenario.claims, scenario.context), "reference")


def test_engine(scenario: Scenario):
    adjudicate = engine_adjudicate()
    check(scenario, adjudicate(scenario.claims, scenario.context), "engine")


def test_engine_agrees_with_reference(scenario: Scenario):
    adjudicate = engine_adjudicate()
    engine = adjudicate(scenario.claims, scenario.context)
    reference = adjudicate_reference(scenario.claims, scenario.context)
    found = differences(engine, reference)
    assert not found, f"{scenario.name}: engine and reference disagree:\n" + "\n".join(found)


def test_reference_traces_name_the_deciding_step(scenario: Scenario):
    """Every line's trace ends with the step that decided it, and a denial names its code."""
    result = adjudicate_reference(scenario.claims, scenario.context)
    for row in result.decisions.iter_rows(named=True):
        assert row["trace"], f"{row['claim_id']}/{row['line_number']}: an empty trace"
        last = row["trace"][-1]
        if row["status"] == "denied":
            adjustment = row["adjustments"][0]
            assert f"{adjustment['group']}-{adjustment['carc']}" in last["note"]
        elif row["status"] == "pended":
            assert row["pend_reason"] in last["note"]
        elif row["status"] == "paid":
            assert last["step"] == "payment"
            assert any(step["step"] == "benefit" for step in row["trace"])
