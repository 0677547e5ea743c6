"""Step 10's arithmetic as one compiled pass over the paying lines, in adjudication order.

Cost sharing is sequential by nature: a visit's copay is owed once, by its first line; a
stay's copay per day stops at the plan's maximum of days; a line's deductible depends on
what the lines before it in its family took, and its out-of-pocket share on the shares
before it. As whole-column steps this took some thirty Polars operations (windows over
claim, date and category, the accumulator identity over family groups, a one-line-at-a-
time path for cross-accumulating pools, and joins back); as one pass it is a loop that
keeps a family's running totals. Numba compiles it once per machine (cached beside this
file) to machine code.

The pass knows no plan and no category: every copay, unit, limit, deductible rule,
coinsurance and starting total arrives as a column, read from the plan design's tables
by cost_sharing.py. Accumulators follow DOMAIN.md §4 applied one line at a time: a line
takes what its member's individual limit and its family's limit both still let through.
"""

from __future__ import annotations

import inspect

import numba
import numpy as np

# What a copay is charged by, as the pass reads it (cost_sharing.py encodes CopayUnit).
PER_LINE, PER_VISIT, PER_STAY, PER_DAY = 0, 1, 2, 3
# Kinds of accumulator: an accumulator group is (plan, plan year, pool) * 4 + kind.
DEDUCTIBLE, DRUG_DEDUCTIBLE, OUT_OF_POCKET = 0, 1, 2
KINDS = {
    "deductible": DEDUCTIBLE,
    "drug_deductible": DRUG_DEDUCTIBLE,
    "out_of_pocket": OUT_OF_POCKET,
}
# A null limit, maximum or coinsurance: no limit (amounts and limits are never negative).
NONE = -1


@numba.njit(cache=True, nogil=True)
def _start(ids, groups, amounts, who, group):
    """The total at the start of group `group` of member or family `who` (0 if none):
    `ids` and `groups` sorted together."""
    lo, hi = 0, ids.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ids[mid] < who or (ids[mid] == who and groups[mid] < group):
            lo = mid + 1
        else:
            hi = mid
    if lo < ids.shape[0] and ids[lo] == who and groups[lo] == group:
        return amounts[lo]
    return 0


@numba.njit(cache=True, nogil=True)
def _pass(
    family,
    member,
    claim,
    service_date,
    category,
    allowed,
    copay,
    copay_unit,
    copay_max_units,
    days,
    copay_first,
    deductible_applies,
    copay_after,
    coins_milli,
    group,
    drug,
    ded_ind,
    ded_fam,
    oop_ind,
    oop_fam,
    member_start_id,
    member_start_group,
    member_start_amount,
    family_start_id,
    family_start_group,
    family_start_amount,
    out,
):
    n = family.shape[0]
    # Running totals of the family's accumulator groups, per kind (0 deductible, 1
    # out-of-pocket) and level (0 member, 1 family): the group, its member (0 for the
    # family's) and its total. A line opens at most one slot of each: n never run out.
    # (The state lives here, not in helper functions: passing arrays to a call costs
    # atomic reference counts, which took most of the time.)
    slot_group = np.empty((2, 2, n), np.int64)
    slot_member = np.empty((2, 2, n), np.int64)
    slot_total = np.empty((2, 2, n), np.int64)
    slot_count = np.zeros((2, 2), np.int64)
    slot_base = np.zeros((2, 2), np.int64)
    # What each claim's copay units have charged so far, as a short list per claim (a
    # claim has few lines): visits (date, category) and stays (category) charged, days
    # (category) charged and how many. Kept per claim, not per family, since a claim's
    # lines may name members of different families; `claim` numbers claims densely.
    heads = np.full(claim.max() + 1 if n else 0, -1, np.int64)
    node_next = np.empty(n, np.int64)
    node_unit = np.empty(n, np.int64)
    node_date = np.empty(n, np.int64)
    node_category = np.empty(n, np.int64)
    node_days = np.empty(n, np.int64)
    nodes = 0
    for i in range(n):
        if i > 0 and family[i] != family[i - 1]:
            if family[i] < family[i - 1]:
                raise ValueError("cost sharing needs the lines in adjudication order")
            slot_base[:, :] = slot_count
        # Copay units: the visit's (stay's) first line charged by the visit (stay) owes
        # it; a day-charged line owes its days up to the maximum per claim and category.
        units = 0
        if copay[i] != NONE:
            unit = copay_unit[i]
            if unit == PER_LINE:
                units = 1
            else:
                found = -1
                node = heads[claim[i]]
                while node >= 0:
                    if (
                        node_unit[node] == unit
                        and node_category[node] == category[i]
                        and (unit != PER_VISIT or node_date[node] == service_date[i])
                    ):
                        found = node
                        break
                    node = node_next[node]
                if found < 0:
                    found = nodes
                    node_unit[found], node_category[found] = unit, category[i]
                    node_date[found], node_days[found] = service_date[i], 0
                    node_next[found] = heads[claim[i]]
                    heads[claim[i]] = found
                    nodes += 1
                    units = 1
                if unit == PER_DAY:
                    before = node_days[found]
                    units = days[i]
                    if copay_max_units[i] != NONE:
                        units = min(units, max(0, copay_max_units[i] - before))
                    node_days[found] = before + days[i]
        copay_amount = (copay[i] if copay[i] != NONE else 0) * units
        a = allowed[i]
        before_ded = min(copay_amount, a) if copay_first[i] else 0
        ded = after = coins = share = oop = 0
        for kind in range(2):
            if kind == 0:
                amount = a - before_ded if deductible_applies[i] else 0
                key = group[i] * 4 + (DRUG_DEDUCTIBLE if drug[i] else DEDUCTIBLE)
                limit_m, limit_f = ded_ind[i], ded_fam[i]
            else:
                rest = a - before_ded - ded
                after = min(copay_amount, rest) if copay_after[i] else 0
                rest -= after
                if coins_milli[i] != NONE:
                    coins = (rest * coins_milli[i] + 50_000) // 100_000
                share = before_ded + ded + after + coins
                amount = share
                key = group[i] * 4 + OUT_OF_POCKET
                limit_m, limit_f = oop_ind[i], oop_fam[i]
            if amount == 0:
                continue
            # What the member's and the family's limits both still let through.
            got = amount
            member_slot = family_slot = 0
            for level in range(2):
                who = member[i] if level == 0 else 0
                slot = -1
                for s in range(slot_base[kind, level], slot_count[kind, level]):
                    if slot_group[kind, level, s] == key and slot_member[kind, level, s] == who:
                        slot = s
                        break
                if slot < 0:
                    slot = slot_count[kind, level]
                    slot_group[kind, level, slot] = key
                    slot_member[kind, level, slot] = who
                    if level == 0:
                        start = _start(
                            member_start_id, member_start_group, member_start_amount, who, key
                        )
                    else:
                        start = _start(
                            family_start_id, family_start_group, family_start_amount, family[i], key
                        )
                    slot_total[kind, level, slot] = start
                    slot_count[kind, level] += 1
                limit = limit_m if level == 0 else limit_f
                if limit != NONE:
                    got = min(got, max(0, limit - slot_total[kind, level, slot]))
                if level == 0:
                    member_slot = slot
                else:
                    family_slot = slot
            slot_total[kind, 0, member_slot] += got
            slot_total[kind, 1, family_slot] += got
            if kind == 0:
                ded = got
            else:
                oop = got
        # The cap's cut comes off coinsurance, then the copay, then the deductible.
        cut = share - oop
        coins_kept = coins - min(cut, coins)
        cut -= coins - coins_kept
        copay_total = before_ded + after
        copay_kept = copay_total - min(cut, copay_total)
        cut -= copay_total - copay_kept
        ded_kept = ded - cut
        out[0, i] = ded_kept
        out[1, i] = copay_kept
        out[2, i] = coins_kept
        out[3, i] = ded_kept + copay_kept + coins_kept
        out[4, i] = ded
        out[5, i] = share
        out[6, i] = oop


OUTPUTS = (
    "deductible_cents",
    "copay_cents",
    "coinsurance_cents",
    "member_share_cents",
    "_ded",
    "_share",
    "_oop_take",
)


def share(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the pass over `columns` (int64 or bool arrays of equal length, nulls as NONE,
    in adjudication order): the member's share of each line and what each accumulator
    took, as OUTPUTS names them."""
    n = len(columns["family"])
    out = np.empty((len(OUTPUTS), n), np.int64)
    # Numba compiles the pass once per kind of argument, and a read-only array (Polars'
    # zero-copy view) is another kind than a writable one (a copy): all read-only, the
    # pass is compiled once, not once per mix of the two (about 4 s each).
    inputs = {}
    for name, values in columns.items():
        # (A view, so that the caller's own array stays as it was.)
        values = np.ascontiguousarray(values).view()
        values.setflags(write=False)
        inputs[name] = values
    _pass(**inputs, out=out)
    return dict(zip(OUTPUTS, out, strict=True))


# The pass's inputs: a column per line (bool for FLAGS, else int64), and STARTS, the
# accumulators at the start (int64 arrays of their own length).
INPUTS = tuple(p for p in inspect.signature(_pass.py_func).parameters if p != "out")
FLAGS = ("copay_first", "deductible_applies", "copay_after", "drug")
STARTS = tuple(name for name in INPUTS if "_start_" in name)


def ready() -> None:
    """Compile the pass (or load it from Numba's cache) now, with the argument types the
    engine passes, rather than on the first claim's time."""
    columns = {
        name: np.zeros(0 if name in STARTS else 1, np.bool_ if name in FLAGS else np.int64)
        for name in INPUTS
    }
    share(columns)
