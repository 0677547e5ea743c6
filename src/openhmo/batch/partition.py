"""Family partitions of a claims file: which lines a batch run decides together.

Adjudication is independent between families (their accumulators, referrals and visit
counts are their own), so a batch run takes the claim lines in partitions of whole
families and decides them one at a time (or, on Spark, side by side). A line belongs to
its member's family; a line whose member is unknown goes by its member number (it is
denied at eligibility, alone). Two things tie two families together: a replacement or
void (frequency 7 or 8) of a claim that was filed under another family's member, which
the original's partition must see, and a claim whose lines name members of both. Such
families are put in one partition.

A line's partition is a pure function of the eligibility, the claims and the number of
partitions, so a rerun splits the same way.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    # The engine takes a claim's lines together (a claim's emergency, its visits), so a
    # claim whose lines name members of two groups ties them too. An 837 claim has one
    # patient, but a file may say otherwise; it must still be decided as in real time.
    numbers = claims.select("claim_id", "member_number").unique()
    shared = (
        numbers.filter(pl.len().over("claim_id") > 1)
        .with_columns(original_member=pl.col("member_number").min().over("claim_id"))
        .collect()
    )
    edges = (
        pl.concat(
            [
                pairs.select("member_number", "original_member"),
                shared.select("member_number", "original_member"),
            ]
        )
        .lazy()
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


def with_group(claims: pl.LazyFrame, groups: Groups, out: str = "_group") -> pl.LazyFrame:
    """`claims` with the column `out`: the group each line is decided with."""
    lines = _with_group(claims, groups.members.lazy(), "member_number", out)
    if groups.merged:
        lines = lines.with_columns(pl.col(out).replace(groups.merged))
    return lines


def with_partition(claims: pl.LazyFrame, groups: Groups, partitions: int) -> pl.LazyFrame:
    """`claims` with the column `_partition` (0 .. partitions-1)."""
    return (
        with_group(claims, groups)
        .with_columns(
            (pl.col("_group").hash(seed=_SEED) % partitions).cast(pl.UInt32).alias(PARTITION)
        )
        .drop("_group")
    )


@dataclass(frozen=True)
class Part:
    """One partition's lines: rows [offset, offset + length) of the claims file (whole
    row groups), or the files the split wrote for it."""

    source: Path | None = None
    offset: int = 0
    length: int = 0
    files: tuple[Path, ...] = ()

    def read(self) -> pl.DataFrame:
        if self.source is not None:
            return pl.scan_parquet(self.source).slice(self.offset, self.length).collect()
        if not self.files:
            return pl.DataFrame()
        return pl.concat([pl.read_parquet(f) for f in self.files], how="vertical")

    def discard(self) -> None:
        """Free the disk a split partition took (a slice of the source takes none)."""
        for f in self.files:
            f.unlink(missing_ok=True)


def partitions_of(
    claims_path: str | Path,
    eligibility: pl.DataFrame,
    directory: str | Path,
    *,
    partition_lines: int,
) -> list[Part]:
    """The partitions of a claims file, about `partition_lines` lines each, in order.

    A file whose row groups hold whole family groups (as the generator and the export
    write them: ordered by family) is read in place, a run of row groups per partition;
    any other file is split by a hash of the group into files under `directory`."""
    claims_path = Path(claims_path)
    groups = family_groups(eligibility, pl.scan_parquet(claims_path))
    slices = aligned_slices(claims_path, groups, partition_lines)
    if slices is not None:
        return [Part(source=claims_path, offset=o, length=n) for o, n in slices]
    total = pq.ParquetFile(claims_path).metadata.num_rows
    count = max(1, math.ceil(total / max(1, partition_lines)))
    return split(claims_path, groups, directory, partitions=count)


def aligned_slices(
    claims_path: Path, groups: Groups, partition_lines: int
) -> list[tuple[int, int]] | None:
    """(offset, length) of runs of whole row groups of about `partition_lines` lines, if
    no group has lines in two row groups (a file of one row group qualifies only if it
    fits one partition); None otherwise."""
    meta = pq.ParquetFile(claims_path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    total = sum(sizes)
    if total <= partition_lines:
        return [(0, total)]
    if len(sizes) < 2:
        return None
    # Per member number first (few rows), then per group: is any group in two row groups?
    by_number = (
        pl.scan_parquet(claims_path)
        .select("member_number")
        .with_columns(_rg=pl.Series(np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)))
        .group_by("member_number")
        .agg(first=pl.col("_rg").min(), last=pl.col("_rg").max())
    )
    spanning = (
        with_group(by_number, groups)
        .group_by("_group")
        .agg(pl.col("first").min(), pl.col("last").max())
        .filter(pl.col("first") != pl.col("last"))
        .select(pl.len())
        .collect()
        .item()
    )
    if spanning:
        return None
    slices: list[tuple[int, int]] = []
    offset = length = 0
    for size in sizes:
        if length and length + size > partition_lines:
            slices.append((offset, length))
            offset, length = offset + length, 0
        length += size
    slices.append((offset, length))
    return slices


def write_in_family_order(
    claims: pl.DataFrame,
    eligibility: pl.DataFrame,
    path: str | Path,
    *,
    row_group_lines: int = 100_000,
) -> int:
    """Write `claims` to the Parquet file `path` ordered by family group (each group's
    lines in the order they came), in row groups of about `row_group_lines` lines that
    hold whole groups: a file a batch run reads in place. The number of row groups."""
    groups = family_groups(eligibility, claims.lazy())
    ordered = with_group(claims.lazy(), groups, "_g").collect().sort("_g", maintain_order=True)
    starts = (
        ordered.select((pl.col("_g") != pl.col("_g").shift()).fill_null(True).arg_true())
        .to_series()
        .to_numpy()
    )
    cuts = [0]
    for target in range(row_group_lines, ordered.height, row_group_lines):
        i = int(np.searchsorted(starts, max(target, cuts[-1] + 1)))
        if i < len(starts):
            cuts.append(int(starts[i]))
    cuts.append(ordered.height)
    cuts = sorted(set(cuts))
    table = ordered.drop("_g").to_arrow()
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for lo, hi in itertools.pairwise(cuts):
            writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
    return max(1, len(cuts) - 1)


def split(
    claims_path: str | Path,
    groups: Groups,
    directory: str | Path,
    *,
    partitions: int,
    batch_lines: int = 1_000_000,
) -> list[Part]:
    """Split the lines of `claims_path` by a hash of their group into `partitions` parts,
    reading it once, a batch of lines at a time: each batch's share of a partition is a
    file in `directory` (LZ4, read back once)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    total = pq.ParquetFile(claims_path).metadata.num_rows
    files: list[list[Path]] = [[] for _ in range(partitions)]
    for b, offset in enumerate(range(0, total, batch_lines)):
        lines = pl.scan_parquet(claims_path).slice(offset, batch_lines).collect()
        assigned = with_partition(lines.select("member_number").lazy(), groups, partitions)
        lines = lines.with_columns(assigned.select(PARTITION).collect().to_series())
        for (number,), part in lines.partition_by(PARTITION, as_dict=True).items():
            path = directory / f"part-{number:05d}-{b:05d}.parquet"
            part.drop(PARTITION).write_parquet(path, compression="lz4")
            files[number].append(path)
    return [Part(files=tuple(f)) for f in files]
