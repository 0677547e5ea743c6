"""Batch adjudication on Spark gives what the local batch run gives, row for row.

`openhmo.batch.spark.adjudicate_on_spark` runs on a local-mode Spark (`local[2]`) over
worlds of a few thousand claim lines, and its decisions (every column, sorted by claim
and line) and its new accumulators, visit and referral usage equal `run_batch`'s
outputs for the same claims and snapshot. The worlds:

- random: the property tests' generator (one POS plan with cross accumulation), sixty
  families, unknown members, duplicates, staff overrides, and replacements and voids
  filed under other families' members (so that groups of families are merged);
- generated: openhmo.batch.generate (the five example plans: HMO, EPO, POS, PPO,
  indemnity), when that module is there.

The two runs partition differently on purpose (run_batch by 1,000 lines, Spark into 3
partitions): adjudication must not depend on which families are decided together.

Needs the `spark` extra and Java: without them the tests are skipped with the reason,
unless OPENHMO_REQUIRE_SPARK=1 (as in CI), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from openhmo.adjudication.context import CLAIM_LINES, SCHEMAS
from openhmo.adjudication.decisions import LINE_DECISIONS
from openhmo.batch.partition import family_groups
from openhmo.batch.runner import STATE_TABLES, run_batch
from openhmo.batch.snapshot import write_snapshot
from test_adjudication_properties import Shape, random_world

REQUIRE_SPARK = os.environ.get("OPENHMO_REQUIRE_SPARK") == "1"


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _spark_problem() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if importlib.util.find_spec("pandas") is None:
        return "pandas is not installed (PySpark's Arrow functions need it: the spark extra)"
    if _java() is None:
        return "no Java runtime (java on PATH or JAVA_HOME): Spark needs Java 17 or later"
    return None


@pytest.fixture(scope="module")
def spark():
    problem = _spark_problem()
    if problem:
        if REQUIRE_SPARK:
            pytest.fail(f"OPENHMO_REQUIRE_SPARK=1, but {problem}")
        pytest.skip(problem)
    from pyspark.sql import SparkSession

    # The Python workers run this interpreter, the one with openhmo and polars (PySpark
    # reads PYSPARK_PYTHON when the session starts; spark.pyspark.python is spark-submit's).
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("openhmo-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        # Not UTC, so that a time zone mix-up in the Arrow hand-over shows.
        .config("spark.sql.session.timeZone", "America/New_York")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if before is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = before


def _random_world():
    sizes = tuple((1, 2, 4, 3, 6, 1, 5, 2, 1, 4)[i % 10] for i in range(60))
    world = random_world(
        Shape(
            plan_type="POS",
            accumulation="cross",
            deductible_kind="embedded",
            deductible_cents=30000,
            family_sizes=sizes,
            claims=1600,
            seed=20260415,
        )
    )
    return world.claims, world.context


def _generated_world():
    try:
        from openhmo.batch.generate import generate_world
    except ImportError as exc:
        pytest.skip(f"openhmo.batch.generate.generate_world is not there ({exc})")
    return generate_world(400, 2026, 11)


WORLDS = {"random": _random_world, "generated": _generated_world}


def _read(path: Path) -> pl.DataFrame:
    """A table written by Spark: the part files of a directory, in order."""
    return pl.read_parquet(sorted(path.glob("part-*.parquet")))


@pytest.fixture(scope="module", params=list(WORLDS))
def world(request, tmp_path_factory):
    """A world written as claims Parquet and a context snapshot, and run_batch's outputs."""
    claims, context = WORLDS[request.param]()
    directory = tmp_path_factory.mktemp(request.param)
    claims.write_parquet(directory / "claims.parquet")
    write_snapshot(context, directory / "context")
    run_batch(
        directory / "claims.parquet",
        directory / "local" / "decisions.parquet",
        context,
        partition_lines=1000,
    )
    return request.param, claims, context, directory


def test_spark_decides_as_the_local_batch_run(spark, world):
    from openhmo.batch.spark import adjudicate_on_spark

    name, claims, context, directory = world
    assert claims.height >= 2500
    assert context.eligibility["family_id"].n_unique() >= 30
    if name == "random":
        # The world ties families together by replacements across them, and has lines
        # of unknown members: both must be decided with the lines they belong with.
        groups = family_groups(context.eligibility, claims.lazy())
        assert groups.merged, "no replacement across families: the world tests less"
        assert claims["frequency_code"].is_in(["7", "8"]).sum() > 20
    else:
        assert context.eligibility["plan_key"].n_unique() >= 4

    summary = adjudicate_on_spark(
        spark,
        str(directory / "claims.parquet"),
        directory / "context",
        directory / "spark",
        partitions=3,
    )

    local = pl.read_parquet(directory / "local" / "decisions.parquet")
    remote = _read(directory / "spark" / "decisions")
    assert remote.schema == pl.Schema(LINE_DECISIONS)
    keys = ["claim_id", "line_number"]
    assert remote.height == claims.height == local.height
    mismatch = local.sort(keys).join(remote.sort(keys), on=keys, how="full", nulls_equal=True)
    assert local.sort(keys).equals(remote.sort(keys)), mismatch.head()
    assert summary.lines == claims.height
    assert summary.partitions == 3
    assert summary.by_status == dict(local["status"].value_counts().iter_rows())
    assert summary.plan_paid_cents == local["plan_paid_cents"].sum()

    for table in STATE_TABLES:
        expected = pl.read_parquet(directory / "local" / "decisions.state" / f"{table}.parquet")
        got = _read(directory / "spark" / "state" / table)
        assert got.schema == pl.Schema(SCHEMAS[table]), table
        assert got.equals(expected), (table, got, expected)  # the same rows, in order
    # The runs changed the state: the comparison is not of two copies of the start.
    assert not _read(directory / "spark" / "state" / "accumulators").equals(context.accumulators)


def test_claims_of_another_schema_are_refused(spark, tmp_path):
    from openhmo.batch.spark import SparkRunError, adjudicate_on_spark

    claims, context = _random_world()
    write_snapshot(context, tmp_path / "context")
    claims.with_columns(pl.col("units").cast(pl.Float64)).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SparkRunError, match="units is double, expected decimal"):
        adjudicate_on_spark(spark, str(tmp_path / "bad.parquet"), tmp_path / "context", tmp_path)
    claims.drop("emergency").write_parquet(tmp_path / "short.parquet")
    with pytest.raises(SparkRunError, match="lack the column"):
        adjudicate_on_spark(spark, str(tmp_path / "short.parquet"), tmp_path / "context", tmp_path)
    assert set(CLAIM_LINES) - set(claims.drop("emergency").columns) == {"emergency"}


def test_the_module_runs_as_a_script(spark, world, tmp_path):
    """`python -m openhmo.batch.spark` (what spark-submit runs) writes what the API does."""
    name, claims, _context, directory = world
    if name != "random":
        pytest.skip("one world is enough for the entry point")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openhmo.batch.spark",
            "--master",
            "local[1]",
            "--claims",
            str(directory / "claims.parquet"),
            "--context",
            str(directory / "context"),
            "--out",
            str(tmp_path / "out"),
            "--partitions",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPARK_CONF_DIR": str(tmp_path)},  # no site config in the way
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f'"lines": {claims.height}' in done.stdout
    keys = ["claim_id", "line_number"]
    assert (
        _read(tmp_path / "out" / "decisions")
        .sort(keys)
        .equals(pl.read_parquet(directory / "local" / "decisions.parquet").sort(keys))
    )


def test_the_script_names_a_bad_snapshot_before_starting_spark(spark, tmp_path):
    (tmp_path / "context").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openhmo.batch.spark",
            "--claims",
            str(tmp_path / "claims.parquet"),
            "--context",
            str(tmp_path / "context"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'context'} is not a context snapshot" in done.stderr
    assert not (tmp_path / "out").exists()
