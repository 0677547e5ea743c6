"""Family accumulators in columns: what of each line an individual and a family limit let through.

DOMAIN.md §4's identity, for lines in adjudication order within one accumulator group
(family, plan, plan year, pool, kind): a member's capped running total is
min(L_ind, start_m + Σa); the family's running total S sums the increments of the
members' capped totals from the family's start; a line takes
min(L_fam, S_i) - min(L_fam, S_(i-1)). A null limit is no limit. This equals applying
the lines one by one (what the reference model does) because the family total only
stops following the members' totals once it has reached its limit, after which every
line takes nothing either way.

The identity needs one limit per group. A cross-accumulating pool mixes tiers with
different limits, so its groups are applied one line at a time instead (`sequential`);
such plans are rare and their groups small.
"""

from __future__ import annotations

import polars as pl


def take(
    frame: pl.DataFrame,
    *,
    amount: str,
    member_group: list[str],
    family_group: list[str],
    ind_limit: str,
    fam_limit: str,
    member_start: str,
    family_start: str,
    out: str,
) -> pl.DataFrame:
    """Add column `out`: what of `amount` each line takes under the limits (frame in order)."""
    a = pl.col(amount)
    running = pl.col(member_start) + a.cum_sum().over(member_group)
    ind = pl.col(ind_limit)
    capped = pl.when(ind.is_null()).then(running).otherwise(pl.min_horizontal(ind, running))
    before = (
        pl.when(ind.is_null())
        .then(pl.col(member_start))
        .otherwise(pl.min_horizontal(ind, pl.col(member_start)))
    )
    frame = frame.with_columns(_capped=capped, _first=before)
    increment = pl.col("_capped") - pl.col("_capped").shift(1).over(member_group).fill_null(
        pl.col("_first")
    )
    frame = frame.with_columns(_inc=increment)
    total = pl.col(family_start) + pl.col("_inc").cum_sum().over(family_group)
    fam = pl.col(fam_limit)
    frame = frame.with_columns(_s=total)
    taken = (
        pl.when(fam.is_null())
        .then(pl.col("_inc"))
        .otherwise(
            pl.min_horizontal(fam, pl.col("_s"))
            - pl.min_horizontal(fam, pl.col("_s") - pl.col("_inc"))
        )
    )
    return frame.with_columns(taken.alias(out)).drop("_capped", "_first", "_inc", "_s")


def sequential(
    frame: pl.DataFrame,
    *,
    amount: str,
    member_group: list[str],
    family_group: list[str],
    ind_limit: str,
    fam_limit: str,
    member_start: str,
    family_start: str,
    out: str,
) -> pl.DataFrame:
    """The same as `take`, one line at a time: for groups whose limits vary line by line."""
    members: dict[tuple, int] = {}
    families: dict[tuple, int] = {}
    taken = []
    columns = dict.fromkeys(
        [amount, *member_group, *family_group, ind_limit, fam_limit, member_start, family_start]
    )
    for row in frame.select(list(columns)).iter_rows(named=True):
        mk = tuple(row[c] for c in member_group)
        fk = tuple(row[c] for c in family_group)
        t_m = members.setdefault(mk, row[member_start])
        t_f = families.setdefault(fk, row[family_start])
        got = row[amount]
        if row[ind_limit] is not None:
            got = min(got, max(0, row[ind_limit] - t_m))
        if row[fam_limit] is not None:
            got = min(got, max(0, row[fam_limit] - t_f))
        members[mk], families[fk] = t_m + got, t_f + got
        taken.append(got)
    return frame.with_columns(pl.Series(out, taken, dtype=pl.Int64))
