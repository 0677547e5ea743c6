"""What-if (openhmo.batch.whatif): the change in plan and member cost of a changed design.

The engine's answer is checked against the reference model run under both designs and
summed by hand, category by category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from openhmo.batch.whatif import WhatIfError, what_if
from openhmo.plans.design import PlanDesign
from reference_model import adjudicate_reference
from test_adjudication_properties import Shape, random_world


def changed(design: PlanDesign, **tier_changes) -> PlanDesign:
    data = design.model_dump(mode="json")
    for year in data["plan_years"]:
        year["tiers"]["in_network"].update(tier_changes)
    return PlanDesign.model_validate(data)


def reference_costs(world, design: PlanDesign, year: int) -> dict[str, tuple[int, int]]:
    """(plan, member) cost by category, from the reference model's decisions."""
    context = replace(world.context, designs={**world.context.designs, design.id: design})
    decisions = adjudicate_reference(world.claims, context).decisions
    costs: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in decisions.iter_rows(named=True):
        if row["plan_key"] != design.id or row["plan_year"] != year:
            continue
        member = row["member_share_cents"] or 0
        member += sum(
            a["amount_cents"]
            for a in row["adjustments"]
            if a["group"] == "PR" and a["carc"] not in ("1", "2", "3")
        )
        category = row["category"] or "unclassified"
        costs[category][0] += row["plan_paid_cents"] or 0
        costs[category][1] += member
        costs["total"][0] += row["plan_paid_cents"] or 0
        costs["total"][1] += member
    return {k: (v[0], v[1]) for k, v in costs.items()}


@pytest.mark.parametrize(
    "shape",
    [
        Shape("HMO", "separate", "embedded", 30000, (4, 2, 3), 300, 61),
        Shape("PPO", "cross", "aggregate", 50000, (2, 5, 1), 300, 62),
    ],
    ids=["HMO", "PPO"],
)
def test_what_if_equals_the_reference_model_under_both_designs(shape: Shape):
    world = random_world(shape)
    year = world.design.plan_years[0].year
    new = changed(
        world.design,
        deductible={"individual": "$2,000.00", "family": "$4,000.00", "kind": "embedded"},
        coinsurance="30%",
    )
    result = what_if(world.claims, world.context, new, year)
    before = reference_costs(world, world.design, year)
    after = reference_costs(world, new, year)
    rows = {r["category"]: r for r in result.by_category.iter_rows(named=True)}
    assert set(rows) == set(before) | set(after)
    for category, row in rows.items():
        plan_before, member_before = before.get(category, (0, 0))
        plan_after, member_after = after.get(category, (0, 0))
        assert (row["plan_before"], row["member_before"]) == (plan_before, member_before)
        assert (row["plan_after"], row["member_after"]) == (plan_after, member_after)
        assert row["plan_change"] == plan_after - plan_before
        assert row["member_change"] == member_after - member_before
    # A higher deductible and coinsurance move cost from the plan to its members.
    assert result.total["plan_change"] < 0 < result.total["member_change"]


def test_the_same_design_changes_nothing():
    world = random_world(Shape("POS", "separate", "embedded", 10000, (3, 3), 200, 63))
    year = world.design.plan_years[0].year
    result = what_if(world.claims, world.context, world.design, year)
    assert result.lines > 0
    assert set(result.by_category["plan_change"]) == {0}
    assert set(result.by_category["member_change"]) == {0}
    assert result.status_changes.height == 0


def test_what_if_refuses_what_it_cannot_answer():
    world = random_world(Shape("HMO", "separate", "embedded", 0, (2,), 50, 64))
    year = world.design.plan_years[0].year
    other = world.design.model_copy(update={"id": "not-in-the-context"})
    with pytest.raises(WhatIfError, match="plan 'not-in-the-context' is not in the context"):
        what_if(world.claims, world.context, other, year)
    with pytest.raises(WhatIfError, match=f"has no plan year {year + 5}"):
        what_if(world.claims, world.context, world.design, year + 5)
