"""Benchmark: batch adjudication on Spark (local mode), 1 worker against 2.

Generates a world (openhmo.batch.generate.write_world), then, each in a fresh process:
the local batch run (openhmo.batch.runner.run_batch, the peer), and
openhmo.batch.spark.adjudicate_on_spark on `local[1]` and on `local[2]`. It reports lines
per second, the speed-up from one worker to two, Spark against the local run, and checks
that every Spark run decided every line as the local run did.

Each Spark worker is one Python process running the engine; Polars inside it is held to
one thread (POLARS_MAX_THREADS=1), as a cluster gives one core per task, so that the
scaling measured is Spark's, not Polars' own threads. The local run uses every core.

    .venv/bin/python bench/bench_spark.py [--lines 1000000] [--partitions 8] [--work DIR]

Needs the `spark` extra and Java 17+.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from _common import LINES_PER_MEMBER, TreeMemory, run_child  # noqa: E402


def generate(out: str, members: int) -> dict:
    from openhmo.batch.generate import write_world

    summary = write_world(members, 2026, out, seed=2026)
    return {"lines": summary.lines, "seconds": summary.seconds}


def local(world: str, out: str) -> dict:
    from openhmo.batch.runner import run_batch
    from openhmo.batch.snapshot import read_snapshot

    started = time.perf_counter()
    summary = run_batch(Path(world) / "claims.parquet", out, read_snapshot(Path(world) / "context"))
    return {
        "lines": summary.lines,
        "seconds": time.perf_counter() - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def spark(world: str, out: str, master: str, partitions: int) -> dict:
    from pyspark.sql import SparkSession

    from openhmo.batch.spark import adjudicate_on_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master(master)
        .appName("openhmo-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        # From a started session: the time counts the Python workers' start and their
        # reading of the snapshot, not the JVM's start.
        with TreeMemory() as memory:
            started = time.perf_counter()
            summary = adjudicate_on_spark(
                session,
                str(Path(world) / "claims.parquet"),
                Path(world) / "context",
                out,
                partitions=partitions,
            )
            seconds = time.perf_counter() - started
    finally:
        session.stop()
    return {
        "lines": summary.lines,
        "seconds": seconds,
        "tree_mib": memory.peak / 2**20,
    }


def same(local_decisions: str, spark_out: str) -> bool:
    import polars as pl

    keys = ["claim_id", "line_number"]
    ours = pl.read_parquet(local_decisions).sort(keys)
    theirs = pl.read_parquet(sorted(Path(spark_out, "decisions").glob("part-*.parquet")))
    return ours.equals(theirs.sort(keys))


CHILDREN = {"generate": generate, "local": local, "spark": spark}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--work", help="directory for the world (default: a temporary one)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arguments = args.child
        print(json.dumps(CHILDREN[kind](**json.loads(arguments))))
        return

    work = Path(args.work or tempfile.mkdtemp(prefix="openhmo-bench-spark-"))
    world = work / f"world-{args.lines}"
    cores, python = os.cpu_count(), platform.python_version()
    print(f"machine: {platform.machine()}, {cores} cores, Python {python}")
    try:
        if not (world / "claims.parquet").exists():
            members = math.ceil(args.lines / LINES_PER_MEMBER)
            run_child(HERE, "generate", out=str(world), members=members)
        base = run_child(HERE, "local", world=str(world), out=str(work / "local.parquet"))
        rate = base["lines"] / base["seconds"]
        print(
            f"local run_batch (Polars, {cores} threads): {base['lines']:,} lines in "
            f"{base['seconds']:.1f} s = {rate:,.0f} lines/s, peak RSS {base['peak_mib']:,.0f} MiB"
        )
        runs = {}
        for workers in (1, 2):
            out = work / f"spark-{workers}"
            run = run_child(
                HERE,
                "spark",
                env={"POLARS_MAX_THREADS": "1"},
                world=str(world),
                out=str(out),
                master=f"local[{workers}]",
                partitions=args.partitions,
            )
            runs[workers] = run
            identical = same(str(work / "local.parquet"), str(out))
            print(
                f"Spark local[{workers}], {args.partitions} partitions: {run['seconds']:.1f} s = "
                f"{run['lines'] / run['seconds']:,.0f} lines/s; identical to the local run: "
                f"{identical}; peak RSS of driver, JVM and workers {run['tree_mib']:,.0f} MiB"
            )
            if not identical:
                sys.exit("Spark decided differently from the local run")
        print(f"speed-up from 1 worker to 2: {runs[1]['seconds'] / runs[2]['seconds']:.2f}x")
        print(f"Spark local[2] / local run_batch: {base['seconds'] / runs[2]['seconds']:.2f}x")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
