"""Family partitions of a claims file: which lines a batch run decides together.

Adjudication is independent between families (their accumulators, referrals and visit
counts are their own), so a batch run splits the claim lines into partitions of whole
families and decides them one at a time (or, on Spark, side by side). A line belongs to
its member's family; a line whose member is unknown goes by its member number (it is
denied at eligibility, alone). One thing ties two families together: a replacement or
void (frequency 7 or 8) of a claim that was filed under another family's member, which
the original's partition must see. Such families are put in one partition.

A line's partition is a pure function of the eligibility, the claims and the number of
partitions, so a rerun splits the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

PARTITION = "_partition"
# Hashes are seeded so that a rerun puts a line where it was before (ids are hashed, not
# taken modulo, because ids are often handed out in strides).
_SEED = 0x0E4D


def family_groups(eligibility: pl.DataFrame, claims: pl.LazyFrame) -> Groups:
    """Each line's group: its member's family, or (member unknown) its member number;
    groups tied by a replacement across them are merged (a union-find over those few)."""
    members = eligibility.select("member_number", "family_id").unique("member_number", keep="first")
    replacing = (
        claims.filter(pl.col("replaces_claim_id").is_not_null())
        .select("claim_id", "member_number", "replaces_claim_id")
        .unique()
        .collect()
    )
    originals = (
        claims.filter(pl.col("claim_id").is_in(replacing["replaces_claim_id"].unique().implode()))
        .select(original="claim_id", original_member="member_number")
        .unique()
        .collect()
    )
    pairs = replacing.join(originals, left_on="replaces_claim_id", right_on="original")
    edges = (
        pairs.lazy()
        .pipe(_with_group, members.lazy(), "member_number", "a")
        .pipe(_with_group, members.lazy(), "original_member", "b")
        .filter(pl.col("a") != pl.col("b"))
        .select("a", "b")
        .unique()
        .collect()
    )
    root: dict[str, str] = {}

    def find(x: str) -> str:
        while root.get(x, x) != x:
            x = root[x]
        return x

    for a, b in edges.sort("a", "b").iter_rows():
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    return Groups(members=members, merged={g: find(g) for g in root})


@dataclass
class Groups:
    members: pl.DataFrame  # member_number, family_id
    merged: dict[str, str]  # a group tied to another → the group it joins


def _with_group(lines: pl.LazyFrame, members: pl.LazyFrame, number: str, out: str) -> pl.LazyFrame:
    return (
        lines.join(
            members.rename({"member_number": number, "family_id": "_family"}),
            on=number,
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.coalesce(
                pl.lit("f:") + pl.col("_family").cast(pl.String),
                pl.lit("m:") + pl.col(number).fill_null(""),
            ).alias(out)
        )
        .drop("_family")
    )


def with_partition(claims: pl.LazyFrame, groups: Groups, partitions: int) -> pl.LazyFrame:
    """`claims` with the column `_partition` (0 .. partitions-1)."""
    lines = _with_group(claims, groups.members.lazy(), "member_number", "_group")
    if groups.merged:
        lines = lines.with_columns(pl.col("_group").replace(groups.merged))
    return lines.with_columns(
        (pl.col("_group").hash(seed=_SEED) % partitions).cast(pl.UInt32).alias(PARTITION)
    ).drop("_group")


def split(
    claims_path: str | Path,
    eligibility: pl.DataFrame,
    directory: str | Path,
    *,
    partitions: int,
    batch_lines: int = 1_000_000,
) -> list[Path]:
    """Write the lines of `claims_path` to one Parquet file per partition in `directory`,
    reading it once, a batch of lines at a time; the files, in partition order (each is
    written, empty if no line falls in it)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    groups = family_groups(eligibility, pl.scan_parquet(claims_path))
    source = pq.ParquetFile(claims_path)
    paths = [directory / f"part-{p:05d}.parquet" for p in range(partitions)]
    writers = [pq.ParquetWriter(path, source.schema_arrow) for path in paths]
    try:
        for batch in source.iter_batches(batch_size=batch_lines):
            lines = with_partition(pl.from_arrow(batch).lazy(), groups, partitions).collect()
            for (number,), part in lines.partition_by(PARTITION, as_dict=True).items():
                writers[number].write_table(
                    part.drop(PARTITION).to_arrow().cast(source.schema_arrow)
                )
    finally:
        for writer in writers:
            writer.close()
    return paths
