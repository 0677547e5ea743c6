"""The compiled pass of cost sharing (openhmo.adjudication.share_pass) on its own.

The engine's tests (test_adjudication_properties, the scenarios) check the pass inside
the engine against the reference model. These check its arithmetic directly, on random
streams of lines, against two other statements of the same rules:

- DOMAIN.md §4's accumulator identity in closed form (running totals capped per member,
  the family's total as the sum of the members' capped increments), which the engine
  used before the pass and which shares no code with it;
- the copay units as the plan states them: a visit's copay once per claim, date and
  category, a stay's once per claim and category, a day's for each day up to the maximum.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openhmo.adjudication import share_pass
from openhmo.adjudication.share_pass import NONE, PER_DAY, PER_LINE, PER_STAY, PER_VISIT


def columns(n: int, **given_values) -> dict[str, np.ndarray]:
    """n lines of one family, member 1, claim 1, day 0, nothing charged, no limits."""
    defaults = dict(
        family=1,
        member=1,
        claim=1,
        copay=NONE,
        copay_max_units=NONE,
        coins_milli=NONE,
        ded_ind=NONE,
        ded_fam=NONE,
        oop_ind=NONE,
        oop_fam=NONE,
        days=1,
    )
    out = {}
    for name in share_pass.INPUTS:
        if name in share_pass.STARTS:
            continue
        if name in share_pass.FLAGS:
            value, dtype = given_values.pop(name, False), np.bool_
        else:
            value, dtype = given_values.pop(name, defaults.get(name, 0)), np.int64
        out[name] = np.broadcast_to(np.asarray(value, dtype), (n,)).copy()
    starts = given_values.pop("starts", {})
    for level in ("member", "family"):
        rows = sorted(starts.get(level, {}).items())
        out[f"{level}_start_id"] = np.array([r[0][0] for r in rows], np.int64)
        out[f"{level}_start_group"] = np.array([r[0][1] for r in rows], np.int64)
        out[f"{level}_start_amount"] = np.array([r[1] for r in rows], np.int64)
    assert not given_values, given_values
    return out


def identity(amounts, members, ind, fam, member_start, family_start) -> list[int]:
    """DOMAIN.md §4 in closed form, for one accumulator group of one family: a member's
    capped running total is min(L_ind, start_m + Σa); the family's running total S sums
    the increments of those; a line takes min(L_fam, S_i) - min(L_fam, S_(i-1))."""
    running = dict(member_start)
    capped = {m: min(ind, running[m]) for m in running}
    total, taken = family_start, []
    for amount, m in zip(amounts, members, strict=True):
        running[m] += amount
        increment = min(ind, running[m]) - capped[m]
        capped[m] += increment
        taken.append(min(fam, total + increment) - min(fam, total))
        total += increment
    return taken


family_streams = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 60_000), min_size=n, max_size=n),
        st.lists(st.integers(1, 4), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(
    stream=family_streams,
    ind=st.integers(0, 200_000),
    fam=st.integers(0, 400_000),
    member_starts=st.lists(st.integers(0, 250_000), min_size=4, max_size=4),
    family_start=st.integers(0, 450_000),
)
def test_deductible_follows_the_accumulator_identity(stream, ind, fam, member_starts, family_start):
    amounts, members = stream
    n = len(amounts)
    group = 7
    key = group * 4 + share_pass.DEDUCTIBLE
    got = share_pass.share(
        columns(
            n,
            member=members,
            allowed=amounts,
            deductible_applies=True,
            group=group,
            ded_ind=ind,
            ded_fam=fam,
            starts={
                "member": {(m, key): s for m, s in enumerate(member_starts, 1)},
                "family": {(1, key): family_start},
            },
        )
    )
    want = identity(amounts, members, ind, fam, dict(enumerate(member_starts, 1)), family_start)
    assert got["_ded"].tolist() == want
    # Nothing pushes a total past its limit that was not past it at the start.
    for m, start in enumerate(member_starts, 1):
        mine = sum(t for t, who in zip(want, members, strict=True) if who == m)
        assert mine == 0 or start + mine <= ind
    assert sum(want) == 0 or family_start + sum(want) <= fam
    # The deductible is all the member pays here: no copay, no coinsurance.
    assert (got["member_share_cents"] == got["deductible_cents"]).all()


@settings(max_examples=200, deadline=None)
@given(
    allowed=st.lists(st.integers(0, 90_000), min_size=1, max_size=30),
    copay=st.integers(0, 10_000),
    coins=st.sampled_from([NONE, 0, 10_000, 20_000, 33_333, 100_000]),
    rule=st.sampled_from(["no_deductible", "with_deductible", "after_deductible"]),
    ded=st.integers(0, 100_000),
    oop=st.integers(0, 300_000),
)
def test_every_line_splits_its_share_exactly(allowed, copay, coins, rule, ded, oop):
    n = len(allowed)
    got = share_pass.share(
        columns(
            n,
            allowed=allowed,
            copay=copay,
            copay_unit=PER_LINE,
            coins_milli=coins,
            copay_first=rule in ("no_deductible", "with_deductible"),
            deductible_applies=rule in ("after_deductible", "with_deductible"),
            copay_after=rule == "after_deductible",
            ded_ind=ded,
            oop_ind=oop,
        )
    )
    parts = got["deductible_cents"] + got["copay_cents"] + got["coinsurance_cents"]
    assert (got["member_share_cents"] == parts).all()
    assert (got["deductible_cents"] >= 0).all() and (got["copay_cents"] >= 0).all()
    assert (got["coinsurance_cents"] >= 0).all()
    assert (got["member_share_cents"] <= np.array(allowed)).all()
    assert got["member_share_cents"].sum() <= oop
    assert got["_ded"].sum() <= ded
    # What the cap cuts is what the out-of-pocket accumulator did not take.
    assert (got["member_share_cents"] == got["_oop_take"]).all()
    assert (got["_share"] >= got["_oop_take"]).all()


def test_copay_units_by_visit_stay_and_day():
    # Two claims; claim 1 has two lines of one visit (day 0), one of another category,
    # one the next day; claim 2 a visit on day 0 too. Lines are in adjudication order.
    visit = share_pass.share(
        columns(
            5,
            claim=[1, 1, 1, 2, 1],
            service_date=[0, 0, 0, 0, 1],
            category=[5, 5, 6, 5, 5],
            allowed=10_000,
            copay=2_000,
            copay_unit=PER_VISIT,
            copay_first=True,
        )
    )
    assert visit["copay_cents"].tolist() == [2_000, 0, 2_000, 2_000, 2_000]
    # A stay: once per claim and category, whatever the dates of its lines.
    stay = share_pass.share(
        columns(
            4,
            claim=[1, 1, 2, 1],
            service_date=[0, 1, 1, 2],
            category=[3, 3, 3, 3],
            allowed=100_000,
            copay=50_000,
            copay_unit=PER_STAY,
            copay_first=True,
        )
    )
    assert stay["copay_cents"].tolist() == [50_000, 0, 50_000, 0]
    # By the day, at most 5 days per claim and category: 2 + 2 + (1 of 3); claim 2 anew.
    day = share_pass.share(
        columns(
            4,
            claim=[1, 1, 1, 2],
            service_date=[0, 2, 4, 4],
            category=3,
            days=[2, 2, 3, 3],
            allowed=500_000,
            copay=10_000,
            copay_unit=PER_DAY,
            copay_max_units=5,
            copay_first=True,
        )
    )
    assert day["copay_cents"].tolist() == [20_000, 20_000, 10_000, 30_000]
    # A copay never exceeds what is allowed.
    small = share_pass.share(
        columns(1, allowed=1_500, copay=2_000, copay_unit=PER_LINE, copay_first=True)
    )
    assert small["copay_cents"].tolist() == [1_500]


def test_a_claim_across_families_owes_its_stay_once():
    # A claim whose lines name members of two families (the reference model and the
    # engine before the pass keep copay units per claim, whatever the family): the
    # stay's copay once, the visit's once per date, the days up to the claim's maximum.
    got = share_pass.share(
        columns(
            6,
            family=[1, 1, 1, 2, 2, 2],
            claim=[9, 8, 7, 9, 8, 7],
            service_date=[0, 0, 0, 0, 3, 5],
            category=4,
            copay_unit=[PER_STAY, PER_VISIT, PER_DAY, PER_STAY, PER_VISIT, PER_DAY],
            days=3,
            copay_max_units=4,
            allowed=90_000,
            copay=1_000,
            copay_first=True,
        )
    )
    assert got["copay_cents"].tolist() == [1_000, 1_000, 3_000, 0, 1_000, 1_000]


def test_families_keep_their_own_totals():
    # Two families, the same member number and group: the second starts afresh.
    got = share_pass.share(
        columns(2, family=[1, 2], allowed=30_000, deductible_applies=True, group=1, ded_ind=20_000)
    )
    assert got["_ded"].tolist() == [20_000, 20_000]


def test_lines_out_of_adjudication_order_are_refused():
    with pytest.raises(ValueError, match="adjudication order"):
        share_pass.share(columns(2, family=[2, 1], allowed=100))
