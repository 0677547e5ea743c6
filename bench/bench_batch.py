"""Benchmark: batch adjudication end to end, at 1M and 10M claim lines.

For each size the script generates a world with `openhmo generate claims`' generator
(openhmo.batch.generate.write_world: claims Parquet and a context snapshot), then, in a
fresh process of its own, runs `openhmo claims adjudicate-batch`'s function
(openhmo.batch.runner.run_batch): Parquet in, family partitions, every step of the
engine, decisions and new state Parquet out; in one process deciding one partition at
a time, in one process deciding two at once on threads (the default), and with a worker
process per core (openhmo.batch.workers). It reports lines per second, peak
resident memory of the whole process tree (sampled), and the cost per line at each size
in one process (linear cost: the same cost per line at 1M and 10M), and the time of
Parquet in and out alone (the claims read, decisions of that size written, no engine):
the floor under any engine, against the issue's second per million lines.

In the same run, on whole families sampled from the first world, the engine's batch
path and the row-by-row reference model (tests/reference_model.py) decide the same lines;
the script checks they agree on every decision column and reports the ratio. It also
times each step of the engine on one partition: where the time goes.

    .venv/bin/python bench/bench_batch.py [--lines 1000000 10000000] [--reference-lines 20000]
                                          [--ways one threads workers] [--work DIR] [--keep]
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
sys.path.insert(0, str(HERE.parents[1] / "tests"))
sys.path.insert(0, str(HERE.parent))

from _common import LINES_PER_MEMBER, TreeMemory, run_child  # noqa: E402


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children -------------------------------------------------------------------------


def generate(out: str, members: int, seed: int) -> dict:
    from openhmo.batch.generate import write_world

    summary = write_world(members, 2026, out, seed=seed)
    return {"seconds": summary.seconds, "lines": summary.lines, "claims": summary.claims}


def batch(
    world: str, decisions: str, workers: int, threads: int, partition_lines: int | None = None
) -> dict:
    from openhmo.batch.runner import run_batch
    from openhmo.batch.snapshot import read_snapshot

    marks: dict[tuple[str, bool], float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        marks.setdefault((phase, done == total), time.perf_counter())

    with TreeMemory() as memory:
        started = time.perf_counter()
        context = read_snapshot(Path(world) / "context")
        read_s = time.perf_counter() - started
        summary = run_batch(
            Path(world) / "claims.parquet",
            decisions,
            context,
            progress=progress,
            workers=workers,
            threads=threads,
            **({"partition_lines": partition_lines} if partition_lines else {}),
        )
        total_s = time.perf_counter() - started
    return {
        "lines": summary.lines,
        "partitions": summary.partitions,
        "seconds": total_s,
        "context_seconds": read_s,
        "run_seconds": summary.seconds,
        "split_seconds": marks[("split", True)] - marks[("split", False)],
        "peak_mib": max(_peak_mib(), memory.peak / 2**20),
        "workers": workers,
        "threads": threads,
    }


def floor(world: str, decisions: str) -> dict:
    """Parquet in and out alone, as a run does them (no engine): read the claims, write
    decisions of the same size with the run's writer. What the issue's target leaves the
    engine is its second per million lines less this."""
    import polars as pl
    import pyarrow.parquet as pq

    table = pl.read_parquet(decisions).to_arrow()
    started = time.perf_counter()
    lines = pl.read_parquet(Path(world) / "claims.parquet").height
    read_s = time.perf_counter() - started
    out = Path(decisions).with_name("floor.parquet")
    started = time.perf_counter()
    with pq.ParquetWriter(out, table.schema) as writer:
        writer.write_table(table)
    write_s = time.perf_counter() - started
    out.unlink()
    return {"lines": lines, "read_seconds": read_s, "write_seconds": write_s}


def _sample(world: str, lines: int):
    """Whole families from the start of the world's claims, about `lines` lines."""
    import polars as pl

    from openhmo.batch.snapshot import only_families, read_snapshot

    context = read_snapshot(Path(world) / "context")
    head = pl.scan_parquet(Path(world) / "claims.parquet").head(lines).collect()
    families = context.eligibility.filter(
        pl.col("member_number").is_in(head["member_number"].unique().implode())
    )["family_id"].unique()
    part = only_families(context, families)
    claims = (
        pl.scan_parquet(Path(world) / "claims.parquet")
        .filter(pl.col("member_number").is_in(part.eligibility["member_number"].implode()))
        .collect()
    )
    return claims, part


def reference(world: str, lines: int) -> dict:
    import polars as pl

    from openhmo.adjudication.decisions import LINE_DECISIONS
    from openhmo.adjudication.engine import decide
    from reference_model import adjudicate_reference

    claims, context = _sample(world, lines)
    decide(claims.head(100), context)  # code lists and rule tables loaded once, as in batch
    started = time.perf_counter()
    fast = decide(claims, context)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = adjudicate_reference(claims, context)
    reference_s = time.perf_counter() - started
    keys = ["claim_id", "line_number"]
    columns = [c for c in LINE_DECISIONS if c in slow.decisions.columns]
    # The explanation's parameters are JSON text: compared as values, not as spellings.
    params = pl.col("explanation_params").map_elements(
        lambda text: json.dumps(json.loads(text), sort_keys=True), return_dtype=pl.String
    )
    ours = fast.decisions.select(columns).sort(keys).with_columns(params)
    theirs = slow.decisions.select(columns).sort(keys).with_columns(params)
    return {
        "lines": claims.height,
        "engine_seconds": engine_s,
        "reference_seconds": reference_s,
        "columns_compared": len(columns),
        "identical": ours.equals(theirs),
        "accumulators_identical": fast.accumulators.sort(fast.accumulators.columns).equals(
            slow.accumulators.select(fast.accumulators.columns).sort(fast.accumulators.columns)
        ),
    }


def profile(world: str, lines: int) -> dict:
    """Each step of the engine on one partition's worth of whole families, in seconds."""
    from openhmo.adjudication import engine, outputs, plan_tables
    from openhmo.adjudication.frame import decided, tracing

    claims, context = _sample(world, lines)
    tables = plan_tables.build(context.designs)
    engine.decide(claims.head(100), context, tables)
    times: dict[str, float] = {}

    def timed(name, function, *args):
        started = time.perf_counter()
        value = function(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - started
        return value

    with tracing(False):
        w = timed("prepare", engine._prepare, claims, context, tables)
        for step in engine.STEPS:
            w = timed(step.__name__.lstrip("_"), step, w, context, tables)
        w = timed("payment", lambda frame: outputs.payment(decided(frame)), w)
        w = timed("explanations", outputs.explain, w, context)
        timed("line decisions", outputs.line_decisions, w)
        for name in ("accumulators", "visit_usage", "referral_usage"):
            timed(f"new {name}", getattr(outputs, name), w, context)
    return {"lines": claims.height, "steps": times}


CHILDREN = {
    "generate": generate,
    "batch": batch,
    "floor": floor,
    "reference": reference,
    "profile": profile,
}


# --- the report --------------------------------------------------------------------------


# How a size is run: (worker processes, partitions at once on threads in one process).
WAYS = {"one": (1, 1), "threads": (1, 2), "workers": (os.cpu_count() or 1, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--reference-lines", type=int, default=20_000)
    parser.add_argument("--profile-lines", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=list(WAYS),
        default=list(WAYS),
        help="how to run each size: one partition at a time, two at once on threads (the "
        "default of a run), a worker process per core",
    )
    parser.add_argument("--work", help="directory for the worlds (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the worlds and decisions")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arguments = args.child
        print(json.dumps(CHILDREN[kind](**json.loads(arguments))))
        return

    # The run's own default (two partitions at once on threads) gives the headline figures.
    headline = "threads" if "threads" in args.ways else args.ways[0]
    work = Path(args.work or tempfile.mkdtemp(prefix="openhmo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cores, python = os.cpu_count(), platform.python_version()
    print(f"machine: {platform.machine()}, {cores} cores, Python {python}")
    try:
        runs = []
        for target in args.lines:
            world = work / f"world-{target}"
            if not (world / "claims.parquet").exists():
                members = math.ceil(target / LINES_PER_MEMBER)
                made = run_child(HERE, "generate", out=str(world), members=members, seed=args.seed)
                print(
                    f"generated {made['lines']:,} lines ({members:,} members) "
                    f"in {made['seconds']:.0f} s"
                )
            for way in args.ways:
                workers, threads = WAYS[way]
                run = run_child(
                    HERE,
                    "batch",
                    world=str(world),
                    decisions=str(world / f"decisions-{way}.parquet"),
                    workers=workers,
                    threads=threads,
                )
                print(
                    f"{run['lines']:>11,} lines, {way:<7}: {run['seconds']:6.1f} s "
                    f"end to end = {run['lines'] / run['seconds']:>9,.0f} lines/s "
                    f"({run['seconds'] / run['lines'] * 1e6:.2f} µs/line; "
                    f"context {run['context_seconds']:.1f} s, split {run['split_seconds']:.1f} s, "
                    f"{run['partitions']} partitions), peak RSS {run['peak_mib']:,.0f} MiB"
                )
                if way == headline:
                    first = run
            io = run_child(
                HERE,
                "floor",
                world=str(world),
                decisions=str(world / f"decisions-{headline}.parquet"),
            )
            io_s = io["read_seconds"] + io["write_seconds"]
            print(
                f"{io['lines']:>11,} lines, Parquet alone (claims read "
                f"{io['read_seconds']:.2f} s, decisions written {io['write_seconds']:.2f} s): "
                f"{io_s:.2f} s = {io_s / io['lines'] * 1e6:.2f} µs/line, "
                f"{io_s / first['seconds']:.0%} of the run, "
                f"{io_s / (io['lines'] / 1e6):.0%} of the target's time"
            )
            run = first
            runs.append(run)
        if len(runs) > 1:
            small, large = runs[0], runs[-1]
            per_line = (large["seconds"] / large["lines"]) / (small["seconds"] / small["lines"])
            print(f"cost per line at {large['lines']:,} / at {small['lines']:,}: {per_line:.2f}")

        first = work / f"world-{args.lines[0]}"
        ref = run_child(HERE, "reference", world=str(first), lines=args.reference_lines)
        engine_rate = ref["lines"] / ref["engine_seconds"]
        reference_rate = ref["lines"] / ref["reference_seconds"]
        print(
            f"sample of {ref['lines']:,} lines (whole families): "
            f"engine {engine_rate:,.0f} lines/s, reference model {reference_rate:,.0f} lines/s, "
            f"ratio {engine_rate / reference_rate:.1f}x; "
            f"identical decisions ({ref['columns_compared']} columns): {ref['identical']}, "
            f"identical accumulators: {ref['accumulators_identical']}"
        )
        for run in runs:
            rate = run["lines"] / run["seconds"]
            print(
                f"end to end at {run['lines']:,} lines / reference model: "
                f"{rate / reference_rate:.0f}x"
            )

        prof = run_child(HERE, "profile", world=str(first), lines=args.profile_lines)
        total = sum(prof["steps"].values())
        print(f"where the engine's time goes, {prof['lines']:,} lines ({total:.2f} s):")
        for name, seconds in sorted(prof["steps"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:<46} {seconds:6.2f} s  {seconds / total:5.1%}")
        if not ref["identical"] or not ref["accumulators_identical"]:
            sys.exit("the engine and the reference model disagree")
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
