"""Batch adjudication on Apache Spark: the engine of a batch run, families side by side.

`adjudicate_on_spark` decides a claims Parquet file (or directory) against a context
snapshot (openhmo.batch.snapshot) with the same engine call as openhmo.batch.runner
(openhmo.adjudication.engine.decide), spread over a Spark cluster, and gives the same
decisions and the same new state, row for row (tests/test_spark.py checks it against
`run_batch`). It needs the `spark` extra (`pip install 'openhmo[spark]'`) and Java 17+.

How it runs:

1. The driver reads the snapshot and works out the family groups with
   openhmo.batch.partition (`family_groups`) from the eligibility and the replacements
   and voids (Spark finds those; the driver never collects the claims).
2. Every line gets its partition in Spark itself: its group through a broadcast join of
   the member numbers, hashed (`xxhash64`) modulo the partitions. A partition holds
   whole groups, so every line of a group is decided in the same engine call. (Which
   groups share a partition changes no decision, so the local run's hash need not be
   matched.)
3. `groupBy(partition).applyInArrow`: each partition's lines, as Arrow, go to Polars;
   the snapshot (read once per Python worker and kept) is narrowed to the partition's
   families (`only_families`) and `decide` runs. The function gives back one flat table
   of several kinds of rows (column `kind`): the line decisions, the new accumulators,
   visit and referral usage, and the families and members it decided, so that the
   engine runs once per line.
4. That output is kept (memory, then disk), split by kind and written: the decisions,
   and each state table merged with the starting state of the families no line
   touched, as run_batch's `_write_state` merges them.

Out directory (every table a Spark Parquet directory, `part-*.parquet` files):

    OUT/decisions/                   LINE_DECISIONS, one row per claim line
    OUT/state/accumulators/          SCHEMAS["accumulators"], sorted as run_batch sorts
    OUT/state/visit_usage/
    OUT/state/referral_usage/

From a shell, or as the script of spark-submit (docs/spark.md):

    python -m openhmo.batch.spark --claims CLAIMS --context SNAPSHOT_DIR --out OUT_DIR
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from openhmo.adjudication import plan_tables
from openhmo.adjudication.context import CLAIM_LINES, SCHEMAS, Context, empty
from openhmo.adjudication.decisions import LINE_DECISIONS
from openhmo.batch.partition import PARTITION, Groups, family_groups
from openhmo.batch.runner import PARTITION_LINES, STATE_ORDER, STATE_TABLES, RunTotals
from openhmo.batch.snapshot import SnapshotError, read_snapshot
from openhmo.batch.workers import decide_lines

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

# What keys each state table to the decided families: a decided family's rows of the
# starting state are replaced by the engine's (runner._write_state).
STATE_KEYS = {
    "accumulators": ("family", "family_id"),
    "visit_usage": ("member", "member_id"),
    "referral_usage": ("referral_usage", "referral_number"),
}
# Partitions per core at least, so that a partition heavier than the others (families
# are hashed, not balanced) does not leave the other cores idle at the end of the stage.
PARTITIONS_PER_CORE = 2


class SparkRunError(ValueError):
    pass


@dataclass(kw_only=True)
class SparkSummary(RunTotals):
    out: str


def adjudicate_on_spark(
    spark: SparkSession,
    claims_path: str | Path,
    snapshot_dir: str | Path,
    out_dir: str | Path,
    *,
    partitions: int | None = None,
) -> SparkSummary:
    """Decide every line of the claims Parquet at `claims_path` under the context snapshot
    `snapshot_dir`, on `spark`; write the decisions and the new state under `out_dir`.

    `claims_path` and `out_dir` are Spark paths (a path without a scheme is on Spark's
    default file system: the local one in local mode, often HDFS on a cluster);
    `snapshot_dir` is a local path that the driver and every executor can read (shared
    storage, or shipped to each at the same relative path). `partitions`: how many engine
    calls the lines are split into (default: one per 250,000 lines, and at least two per
    core). The outputs are replaced, not atomically: a run that fails leaves them
    incomplete (no `_SUCCESS` file in a table's directory), and is simply run again.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    snapshot_dir = Path(snapshot_dir).resolve()
    context = read_snapshot(snapshot_dir)  # fails here, once, if the snapshot is bad
    out = str(out_dir).rstrip("/")
    claims = _read_claims(spark, str(claims_path))
    total = claims.count()  # from the Parquet footers
    if partitions is None:
        cores = spark.sparkContext.defaultParallelism
        partitions = max(math.ceil(total / PARTITION_LINES), PARTITIONS_PER_CORE * cores)
    partitions = max(1, int(partitions))

    lines = _with_partition(spark, claims, context, partitions)
    output = output_schema()
    decided = (
        # Shuffled once into exactly `partitions` (the grouping reuses it): not into
        # spark.sql.shuffle.partitions, mostly empty tasks.
        lines.repartition(partitions, PARTITION)
        .groupBy(PARTITION)
        .applyInArrow(
            functools.partial(_decide_partition, str(snapshot_dir), _arrow_schema(spark, output)),
            output,
        )
        # Kept (in memory, spilling to disk) for the four tables read from it, so that
        # the engine runs once per line; the columns are flat so that each read scans
        # only its own.
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        # Writing the decisions runs the engine; the rest reads what it kept.
        (
            decided.where(F.col("kind") == "decisions")
            .select(*LINE_DECISIONS)
            .write.mode("overwrite")
            .parquet(f"{out}/decisions")
        )
        _write_state(spark, decided, snapshot_dir, out)
        summary = _summarize(decided, out, partitions)
    finally:
        decided.unpersist()
    summary.seconds = time.perf_counter() - started
    return summary


# --- types --------------------------------------------------------------------------------


def spark_type(dtype: pl.DataType) -> DataType:
    """The Spark type of a Polars column type of OpenHMO's schemas."""
    from pyspark.sql import types as T

    simple = {
        pl.String: T.StringType(),
        pl.Int64: T.LongType(),
        pl.Int32: T.IntegerType(),
        pl.Int16: T.ShortType(),
        pl.Int8: T.ByteType(),
        pl.Boolean: T.BooleanType(),
        pl.Date: T.DateType(),
        pl.Float64: T.DoubleType(),
        pl.Float32: T.FloatType(),
    }
    for polars_type, converted in simple.items():
        if dtype == polars_type:
            return converted
    if isinstance(dtype, pl.Decimal):
        return T.DecimalType(dtype.precision, dtype.scale)
    if isinstance(dtype, pl.Datetime):
        # Spark's TIMESTAMP is an instant (shown in the session's time zone); a Polars
        # datetime without a time zone is a wall-clock time, Spark's TIMESTAMP_NTZ.
        return T.TimestampType() if dtype.time_zone else T.TimestampNTZType()
    if isinstance(dtype, pl.List):
        return T.ArrayType(spark_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return _struct([_field(f.name, spark_type(f.dtype)) for f in dtype.fields])
    raise TypeError(f"no Spark type for the Polars type {dtype}")


def spark_schema(schema: dict[str, pl.DataType]) -> StructType:
    return _struct([_field(name, spark_type(dtype)) for name, dtype in schema.items()])


def state_column(table: str, column: str) -> str:
    """The output column of a state table's column (state tables share column names with
    each other and with the decisions)."""
    return f"{table}__{column}"


def output_schema() -> StructType:
    """What a partition's engine call gives back: rows of one `kind` each, flat. Kind
    `decisions`: the LINE_DECISIONS columns; a STATE_TABLES kind: that table's columns,
    named by `state_column`; `family` and `member`: the decided ids, in `key`. The other
    columns of a row are null."""
    return _struct(
        [
            _field("kind", spark_type(pl.String)),
            *[_field(name, spark_type(dtype)) for name, dtype in LINE_DECISIONS.items()],
            *[
                _field(state_column(table, name), spark_type(dtype))
                for table in STATE_TABLES
                for name, dtype in SCHEMAS[table].items()
            ],
            _field("key", spark_type(pl.Int64)),
        ]
    )


def _struct(fields: list) -> StructType:
    from pyspark.sql.types import StructType

    return StructType(fields)


def _field(name: str, dtype: DataType) -> Any:
    from pyspark.sql.types import StructField

    return StructField(name, dtype, nullable=True)


def _arrow_schema(spark: SparkSession, schema: StructType) -> pa.Schema:
    """The Arrow schema Spark takes `schema` back in from a Python worker: strings are
    `string`, or `large_string` under spark.sql.execution.arrow.useLargeVarTypes."""
    from pyspark.sql.pandas.types import to_arrow_schema

    large = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false") == "true"
    return to_arrow_schema(schema, prefers_large_types=True) if large else to_arrow_schema(schema)


def _read_claims(spark: SparkSession, path: str) -> DataFrame:
    """The claim lines at `path`, in CLAIM_LINES order; their types checked as run_batch
    checks them, so a file with another schema fails here and not in a worker."""
    try:
        claims = spark.read.parquet(path)
    except Exception as exc:  # Spark raises AnalysisException and others for a bad path
        raise SparkRunError(f"{path}: cannot read claims ({exc})") from None
    have = {f.name: f.dataType for f in claims.schema.fields}
    missing = [c for c in CLAIM_LINES if c not in have]
    if missing:
        raise SparkRunError(f"{path}: claim lines lack the column(s) {', '.join(missing)}")
    wrong = [
        f"{c} is {have[c].simpleString()}, expected {spark_type(t).simpleString()}"
        for c, t in CLAIM_LINES.items()
        if have[c] != spark_type(t)
    ]
    if wrong:
        raise SparkRunError(f"{path}: " + "; ".join(wrong))
    return claims.select(*CLAIM_LINES)


# --- groups and partitions ----------------------------------------------------------------


def _groups(spark: SparkSession, claims: DataFrame, context: Context) -> Groups:
    """The family groups of openhmo.batch.partition. Only what can tie groups comes to the
    driver: the replacements and voids (a small share of the lines), the member numbers
    of the claims they replace, and claims whose lines name more than one member. One
    aggregation by claim finds the last two."""
    from pyspark.sql import functions as F

    schema = {"claim_id": pl.String, "member_number": pl.String, "replaces_claim_id": pl.String}
    replacing = pl.DataFrame(
        claims.where(F.col("replaces_claim_id").isNotNull()).select(*schema).distinct().collect(),
        schema=schema,
        orient="row",
    )
    replaced = replacing.select(claim_id=pl.col("replaces_claim_id").unique())
    # A null member number is its own group, as "" is (openhmo.batch.partition).
    number = F.coalesce(F.col("member_number"), F.lit(""))
    claims_of = (
        claims.groupBy("claim_id")
        .agg(F.min(number).alias("lo"), F.max(number).alias("hi"))
        .join(
            F.broadcast(_spark_frame(spark, replaced).withColumn("replaced", F.lit(True))),
            "claim_id",
            "left",
        )
        .where((F.col("lo") != F.col("hi")) | F.col("replaced").isNotNull())
        .select("claim_id", "lo", "hi")
        .collect()
    )
    few = [replacing]
    originals = [(row.claim_id, row.lo) for row in claims_of if row.lo == row.hi]
    mixed = pl.DataFrame(
        {"claim_id": [row.claim_id for row in claims_of if row.lo != row.hi]},
        schema={"claim_id": pl.String},
    )
    if mixed.height:
        # Every member of the claims that name several (few): all their numbers.
        originals += (
            claims.join(F.broadcast(_spark_frame(spark, mixed)), "claim_id", "left_semi")
            .select("claim_id", number.alias("member_number"))
            .distinct()
            .collect()
        )
    few.append(pl.DataFrame([(c, m, None) for c, m in originals], schema=schema, orient="row"))
    # family_groups joins these into edges and merges the groups they tie.
    return family_groups(context.eligibility, pl.concat(few).lazy())


def _with_partition(
    spark: SparkSession, claims: DataFrame, context: Context, partitions: int
) -> DataFrame:
    """`claims` with each line's partition: a hash of its family group
    (openhmo.batch.partition), so that a partition holds whole groups; computed by Spark
    itself, not in Python. Any hash does, the local run's need not be matched: which
    groups share a partition changes no decision."""
    from pyspark.sql import functions as F

    groups = _groups(spark, claims, context)
    members = groups.members.select(
        "member_number",
        (pl.lit("f:") + pl.col("family_id").cast(pl.String)).alias("_family_group"),
    )
    merged = pl.DataFrame(
        {"_group": list(groups.merged), "_root": list(groups.merged.values())},
        schema={"_group": pl.String, "_root": pl.String},
    )
    group = F.coalesce(
        F.col("_family_group"),
        F.concat(F.lit("m:"), F.coalesce(F.col("member_number"), F.lit(""))),
    )
    lines = claims.join(
        F.broadcast(_spark_frame(spark, members)), "member_number", "left"
    ).withColumn("_group", group)
    if groups.merged:
        lines = lines.join(F.broadcast(_spark_frame(spark, merged)), "_group", "left")
        lines = lines.withColumn("_group", F.coalesce(F.col("_root"), F.col("_group")))
    partition = F.pmod(F.xxhash64(F.col("_group")), F.lit(partitions)).cast("int")
    return lines.select(*CLAIM_LINES, partition.alias(PARTITION))


def _spark_frame(spark: SparkSession, frame: pl.DataFrame) -> DataFrame:
    """A small Polars frame as a Spark DataFrame (through Arrow)."""
    return spark.createDataFrame(frame.to_arrow(), schema=spark_schema(dict(frame.schema)))


# --- the engine, in a Python worker ---------------------------------------------------------

# The snapshot a worker read, with its plan tables: every partition decided by this
# Python process (Spark reuses them) reads the snapshot once.
_SNAPSHOTS: dict[tuple, tuple[Context, dict]] = {}


def _snapshot(directory: str) -> tuple[Context, dict]:
    manifest = os.stat(Path(directory) / "MANIFEST.json")
    # A snapshot is replaced whole (snapshot.replace_directory), so a new one at the same
    # path has a new manifest: the key tells them apart in a long-lived worker.
    key = (directory, manifest.st_ino, manifest.st_mtime_ns)
    if key not in _SNAPSHOTS:
        _SNAPSHOTS.clear()  # one at a time: a snapshot can be large
        context = read_snapshot(directory)
        _SNAPSHOTS[key] = (context, plan_tables.build(context.designs))
    return _SNAPSHOTS[key]


def _claims_arrow_schema() -> pa.Schema:
    return pl.DataFrame(schema=CLAIM_LINES).to_arrow().schema


def _decide_partition(snapshot_dir, output, table):
    """Executor side of applyInArrow: one partition's lines in, its `output` rows out."""
    context, tables = _snapshot(snapshot_dir)
    # Spark hands timestamps over in its session time zone; the cast keeps the instants
    # and makes every column the engine's type (lists, strings, decimals).
    lines = pl.from_arrow(table.select(list(CLAIM_LINES)).cast(_claims_arrow_schema()))
    part = decide_lines(lines, context, tables)  # as run_batch decides a partition
    result = part.result
    pieces = {
        "decisions": result.decisions,
        **{name: getattr(result, name) for name in STATE_TABLES},
        "family": part.families.to_frame("key"),
        "member": part.members.to_frame("key"),
    }
    return pa.concat_tables(_rows(kind, frame, output) for kind, frame in pieces.items())


def _rows(kind: str, frame: pl.DataFrame, output: pa.Schema) -> pa.Table:
    """`frame` as rows of `output` of kind `kind`: its columns under their output names
    (output_schema); every other column null."""
    if kind == "decisions":
        names = {c: c for c in frame.columns}
    elif kind in STATE_TABLES:
        names = {c: state_column(kind, c) for c in frame.columns}
    else:
        names = {frame.columns[0]: "key"}
    data = frame.rename(names).to_arrow()
    n = frame.height
    columns = []
    for f in output:
        if f.name == "kind":
            columns.append(pa.array([kind] * n, f.type))
        elif f.name in data.column_names:
            columns.append(data.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=output)


# --- outputs ------------------------------------------------------------------------------------


def _write_state(spark: SparkSession, decided: DataFrame, snapshot_dir: Path, out: str) -> None:
    """Each state table: the decided families' from the engine, the rest as it was at the
    start, sorted; as runner._write_state makes it."""
    from pyspark.sql import functions as F

    ids = {
        kind: decided.where(F.col("kind") == kind).select(F.col("key").alias(column))
        for kind, column in (("family", "family_id"), ("member", "member_id"))
    }
    new = {
        name: decided.where(F.col("kind") == name).select(
            *[F.col(state_column(name, c)).alias(c) for c in SCHEMAS[name]]
        )
        for name in STATE_TABLES
    }
    ids["referral_usage"] = new["referral_usage"].select("referral_number")
    for name in STATE_TABLES:
        kind, column = STATE_KEYS[name]
        done = ids[kind]
        start = _start_state(spark, snapshot_dir, name)
        untouched = start.join(done, column, "left_anti").select(*SCHEMAS[name])
        # runner._write_state keeps `~is_in(decided)`, which in Polars drops a row whose
        # key is null, unless nothing was decided (then it keeps every row).
        if not done.isEmpty():
            untouched = untouched.where(F.col(column).isNotNull())
        table = untouched.unionByName(new[name]).select(
            *[F.col(c).cast(spark_type(t)).alias(c) for c, t in SCHEMAS[name].items()]
        )
        # One file, sorted: a state table has a row per member or family, not per line.
        (
            table.coalesce(1)
            .sortWithinPartitions(*[F.col(c).asc_nulls_first() for c in STATE_ORDER[name]])
            .write.mode("overwrite")
            .parquet(f"{out}/state/{name}")
        )


def _start_state(spark: SparkSession, snapshot_dir: Path, name: str) -> DataFrame:
    """A state table of the snapshot, read by Spark (a table the snapshot lacks is empty,
    as read_snapshot makes it)."""
    path = snapshot_dir / f"{name}.parquet"
    if not path.exists():
        return spark.createDataFrame([], spark_schema(dict(empty(name).schema)))
    # file:// so that a cluster whose default file system is HDFS reads the shared path.
    return spark.read.parquet(path.as_uri())


def _summarize(decided: DataFrame, out: str, partitions: int) -> SparkSummary:
    from pyspark.sql import functions as F

    summary = SparkSummary(out=out, partitions=partitions)
    rows = (
        decided.where(F.col("kind") == "decisions")
        .groupBy("status")
        .agg(
            F.count(F.lit(1)).alias("lines"),
            F.sum("charge_cents").alias("charged"),
            F.sum("plan_paid_cents").alias("plan_paid"),
            F.sum("member_share_cents").alias("member_share"),
        )
        .collect()
    )
    for row in sorted(rows, key=lambda r: r.status or ""):
        summary.add(row.status, row.lines, row.charged, row.plan_paid, row.member_share)
    return summary


# --- entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m openhmo.batch.spark",
        description="Adjudicate a claims Parquet file on Spark (docs/spark.md).",
    )
    parser.add_argument("--claims", required=True, help="claim lines (Parquet file or dir)")
    parser.add_argument("--context", required=True, help="context snapshot directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--partitions", type=int, default=None, help="engine calls")
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master when not run by spark-submit (default: spark-submit's, or local[*])",
    )
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    try:
        read_snapshot(args.context)  # a bad snapshot is told before Spark starts
    except (SnapshotError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Python workers run the interpreter of this process unless told otherwise, so that a
    # plain `python -m` in a virtual environment finds openhmo there.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("openhmo-adjudication")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        summary = adjudicate_on_spark(
            spark, args.claims, args.context, args.out, partitions=args.partitions
        )
    except (SparkRunError, SnapshotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    report = asdict(summary) | {"lines_per_second": round(summary.lines_per_second)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    # Run from the package's module, not from __main__: Spark pickles the functions it
    # sends to the workers by reference to their module, and the workers' snapshot cache
    # lives in that module (functions of __main__ would be pickled by value, cache too).
    from openhmo.batch.spark import main as module_main

    sys.exit(module_main())
