"""Batch adjudication (openhmo.batch.runner): the same decisions, whatever the partitions,
as the real-time path and the reference model; outputs that survive a crash.

The batch path decides family partitions from a Parquet file and writes flat line
decisions; `outputs.present` turns them back into the decisions people read, which
must equal, line for line and cent for cent, what `engine.adjudicate` (real time) and
the reference model (tests/reference_model.py) decide on the same world.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pyarrow.parquet as pq
import pytest

from openhmo.adjudication.decisions import LINE_DECISIONS, Result
from openhmo.adjudication.engine import adjudicate, decide
from openhmo.adjudication.outputs import present
from openhmo.batch.generate import generate_world
from openhmo.batch.partition import (
    family_groups,
    partitions_of,
    with_partition,
    write_in_family_order,
)
from openhmo.batch.runner import STATISTICS, BatchError, recover, run_batch
from openhmo.batch.snapshot import write_snapshot
from reference_model import adjudicate_reference
from scenarios.loader import differences, load_scenario, scenario_files
from test_adjudication_properties import Shape, random_world
from test_scenarios import check

KEY = ["claim_id", "line_number"]


def batch_result(tmp: Path, claims: pl.DataFrame, context, **options) -> Result:
    """Run the batch path on files in `tmp`; its outputs as a Result (decisions presented)."""
    claims.write_parquet(tmp / "claims.parquet")
    run_batch(tmp / "claims.parquet", tmp / "decisions.parquet", context, **options)
    state = read_snapshot_state(tmp / "decisions.state")
    return Result(
        decisions=present(pl.read_parquet(tmp / "decisions.parquet")),
        accumulators=state["accumulators"],
        visit_usage=state["visit_usage"],
        referral_usage=state["referral_usage"],
    )


def read_snapshot_state(directory: Path) -> dict[str, pl.DataFrame]:
    return {
        name: pl.read_parquet(directory / f"{name}.parquet")
        for name in ("accumulators", "visit_usage", "referral_usage")
    }


WORLDS = [
    Shape("HMO", "separate", "embedded", 30000, (4, 1, 3, 6, 2), 400, 11),
    Shape("PPO", "cross", "aggregate", 50000, (2, 5, 1, 3), 400, 12),
    Shape("POS", "separate", "aggregate", 10000, (6, 6, 2, 1), 400, 13),
    Shape("indemnity", "cross", "embedded", 0, (3, 3, 3), 300, 14),
    Shape("EPO", "separate", "embedded", 30000, (1, 1, 1, 1, 1, 1), 300, 15),
]


@pytest.mark.parametrize("shape", WORLDS, ids=[s.plan_type for s in WORLDS])
def test_batch_equals_real_time_and_reference(tmp_path: Path, shape: Shape):
    world = random_world(shape)
    # A partition of a few dozen lines: families are split over many partitions.
    batch = batch_result(tmp_path, world.claims, world.context, partition_lines=40)
    real_time = adjudicate(world.claims, world.context)
    reference = adjudicate_reference(world.claims, world.context)
    found = differences(batch, real_time, ("batch", "real time"))
    assert not found, "\n".join(found[:30])
    found = [
        d
        for d in differences(batch, reference, ("batch", "reference"))
        # the reference model words its explanations' parameters only in the scenarios
        if " explanation_params: " not in d
    ]
    assert not found, "\n".join(found[:30])
    assert batch.decisions.height == world.claims.height


@pytest.mark.parametrize("path", scenario_files(), ids=[p.stem for p in scenario_files()])
def test_scenarios_through_the_batch_path(tmp_path: Path, path: Path):
    """Every hand-checked scenario, decided one family per partition, to the cent."""
    scenario = load_scenario(path)
    check(
        scenario,
        batch_result(tmp_path, scenario.claims, scenario.context, partition_lines=1),
        "batch",
    )


def test_partitioning_changes_nothing(tmp_path: Path):
    # (The property tests' worlds have claims naming members of two families, which ties
    # every family into one group, one partition: the generator's world has many.)
    claims, context = generate_world(60, 2026, seed=21)
    world = SimpleNamespace(claims=claims, context=context)
    runs = []
    # The last two: the same partitions, one at a time and in two worker processes.
    for n, (lines, workers) in enumerate(((1, 1), (57, 1), (10_000, 1), (57, 2))):
        (tmp_path / str(n)).mkdir()
        world.claims.write_parquet(tmp_path / str(n) / "claims.parquet")
        summary = run_batch(
            tmp_path / str(n) / "claims.parquet",
            tmp_path / str(n) / "d.parquet",
            world.context,
            partition_lines=lines,
            workers=workers,
        )
        runs.append(
            (summary.partitions, pl.read_parquet(tmp_path / str(n) / "d.parquet").sort(KEY))
        )
    assert runs[0][0] > runs[1][0] > runs[2][0] == 1
    assert runs[3][0] == runs[1][0]
    # At one line a partition, each of the world's family groups is decided alone.
    groups = context.eligibility.filter(
        pl.col("member_number").is_in(claims["member_number"].unique().implode())
    )["family_id"].n_unique()
    assert groups >= 20 and runs[0][0] >= groups
    whole = decide(world.claims, world.context).decisions.sort(KEY)
    for _, decisions in runs:
        assert dict(decisions.schema) == LINE_DECISIONS
        assert decisions.equals(whole)


def test_partitions_side_by_side_give_the_same_file(tmp_path: Path):
    """Partitions decided one at a time, two at once on threads (the default) and in two
    worker processes: the same decisions file, row for row, and the same new state."""
    claims, context = generate_world(120, 2026, seed=23)
    claims.write_parquet(tmp_path / "claims.parquet")
    outputs = []
    for n, (workers, threads) in enumerate(((1, 1), (1, 2), (2, 1))):
        summary = run_batch(
            tmp_path / "claims.parquet",
            tmp_path / f"d{n}.parquet",
            context,
            partition_lines=300,
            workers=workers,
            threads=threads,
        )
        assert summary.partitions >= 4
        state = tmp_path / f"d{n}.state"
        outputs.append(
            [pl.read_parquet(tmp_path / f"d{n}.parquet")]
            + [pl.read_parquet(f) for f in sorted(state.rglob("*.parquet"))]
        )
    assert len(outputs[0]) == 4  # decisions, and the three tables of the new state
    lines = outputs[0][0]["claim_id"]
    assert lines.n_unique() > 100 and not lines.is_sorted()  # in family order, not by claim
    for other in outputs[1:]:
        assert len(other) == len(outputs[0])
        assert all(a.equals(b) for a, b in zip(outputs[0], other, strict=True))


def test_decisions_record_statistics_of_the_columns_readers_look_for(tmp_path: Path):
    claims, context = generate_world(20, 2026, seed=24)
    claims.write_parquet(tmp_path / "claims.parquet")
    run_batch(tmp_path / "claims.parquet", tmp_path / "d.parquet", context)
    meta = pq.ParquetFile(tmp_path / "d.parquet").metadata.row_group(0)
    with_statistics = {
        meta.column(i).path_in_schema
        for i in range(meta.num_columns)
        if meta.column(i).statistics is not None and meta.column(i).statistics.has_min_max
    }
    assert with_statistics == set(STATISTICS)


def test_a_file_in_family_order_is_read_in_place(tmp_path: Path):
    """Row groups of whole families are partitions as they lie (no split, no copy); a file
    whose row groups cut through families is split by hash: the same decisions either way."""
    claims, context = generate_world(120, 2026, seed=22)  # the five example plans
    whole = decide(claims, context).decisions.sort(KEY)
    row_groups = write_in_family_order(
        claims.sample(fraction=1.0, shuffle=True, seed=5),  # received in any order
        context.eligibility,
        tmp_path / "ordered.parquet",
        row_group_lines=150,
    )
    assert row_groups >= 6
    parts = partitions_of(
        tmp_path / "ordered.parquet", context.eligibility, tmp_path / "p", partition_lines=400
    )
    assert len(parts) > 2 and all(p.source is not None and not p.files for p in parts)
    assert sum(p.length for p in parts) == claims.height
    assert not (tmp_path / "p").exists()  # nothing was copied
    summary = run_batch(
        tmp_path / "ordered.parquet", tmp_path / "d.parquet", context, partition_lines=400
    )
    assert summary.partitions == len(parts)
    assert pl.read_parquet(tmp_path / "d.parquet").sort(KEY).equals(whole)

    # The same lines in their received order, in row groups of 150: families cross them.
    pq.write_table(claims.to_arrow(), tmp_path / "mixed.parquet", row_group_size=150)
    parts = partitions_of(
        tmp_path / "mixed.parquet", context.eligibility, tmp_path / "q", partition_lines=400
    )
    assert all(p.source is None for p in parts)
    assert sum(p.read().height for p in parts) == claims.height
    run_batch(tmp_path / "mixed.parquet", tmp_path / "e.parquet", context, partition_lines=400)
    assert pl.read_parquet(tmp_path / "e.parquet").sort(KEY).equals(whole)


def cross_family_world():
    """A world where a claim of one family is replaced by a claim filed under a member of
    another family (a member number corrected on resubmission)."""
    world = random_world(Shape("HMO", "separate", "embedded", 30000, (2, 2, 2, 2), 200, 31))
    elig = world.context.eligibility
    families = elig["family_id"].unique().sort().to_list()
    # Only original claims, each of one member, so that nothing else ties families.
    world.claims = world.claims.filter(
        (pl.col("frequency_code") == "1")
        & (pl.col("member_number") == pl.col("member_number").first().over("claim_id"))
    )
    other = elig.filter(pl.col("family_id") == families[-1])["member_number"][0]
    first_claims = world.claims.filter(pl.col("frequency_code") == "1")
    original = first_claims.filter(
        pl.col("member_number").is_in(
            elig.filter(pl.col("family_id") == families[0])["member_number"].implode()
        )
    )["claim_id"][0]
    lines = world.claims.filter(pl.col("claim_id") == original)
    replacement = lines.with_columns(
        claim_id=pl.lit("XFAM-1"),
        member_number=pl.lit(other),
        frequency_code=pl.lit("7"),
        replaces_claim_id=pl.lit(original),
        received_at=pl.col("received_at") + pl.duration(days=3),
    )
    return world, pl.concat([world.claims, replacement]), original, families


def test_families_tied_by_a_replacement_share_a_partition(tmp_path: Path):
    world, claims, original, families = cross_family_world()
    groups = family_groups(world.context.eligibility, claims.lazy())
    assert groups.merged == {f"f:{families[-1]}": f"f:{families[0]}"}
    assert family_groups(world.context.eligibility, world.claims.lazy()).merged == {}
    parts = with_partition(claims.lazy(), groups, 7).collect()
    tied = parts.filter(pl.col("claim_id").is_in([original, "XFAM-1"]))["_partition"].unique()
    assert tied.len() == 1
    batch = batch_result(tmp_path, claims, world.context, partition_lines=1)
    decisions = batch.decisions.filter(pl.col("claim_id") == original)
    assert set(decisions["status"]) == {"replaced"}
    assert not differences(batch, adjudicate(claims, world.context), ("batch", "real time"))


def test_a_claim_naming_two_families_members_keeps_them_together(tmp_path: Path):
    """A claim whose lines name members of two families (no 837 should, a file may) is
    decided as in real time, whatever the partitions: the engine takes a claim's lines
    together (an emergency claim's lines are all emergency care), so both families share
    a partition."""
    world, _, _, families = cross_family_world()
    elig, claims = world.context.eligibility, world.claims
    of = {f: elig.filter(pl.col("family_id") == f)["member_number"].implode() for f in families}
    decided = decide(claims, world.context).decisions
    # A specialist visit of family B denied for want of a referral ...
    denied = decided.filter(
        (pl.col("decided_step") == "referral")
        & pl.col("member_id").is_in(
            elig.filter(pl.col("family_id") == families[-1])["member_id"].implode()
        )
    ).row(0, named=True)
    stray = claims.filter(
        (pl.col("claim_id") == denied["claim_id"])
        & (pl.col("line_number") == denied["line_number"])
    )
    # ... filed again as a line of an emergency claim of family A.
    emergency = claims.filter(pl.col("emergency") & pl.col("member_number").is_in(of[families[0]]))[
        "claim_id"
    ][0]
    template = claims.filter(pl.col("claim_id") == emergency).row(0, named=True)
    stray = stray.with_columns(
        claim_id=pl.lit(emergency),
        line_number=pl.lit(99, pl.Int64),
        received_at=pl.lit(template["received_at"]),
    )
    claims = pl.concat([claims, stray])
    assert family_groups(elig, claims.lazy()).merged == {f"f:{families[-1]}": f"f:{families[0]}"}
    real_time = adjudicate(claims, world.context)
    line = (
        decide(claims, world.context)
        .decisions.filter((pl.col("claim_id") == emergency) & (pl.col("line_number") == 99))
        .row(0, named=True)
    )
    assert line["emergency"] and line["decided_step"] != "referral"
    batch = batch_result(tmp_path, claims, world.context, partition_lines=1)
    assert not differences(batch, real_time, ("batch", "real time"))


def test_a_bad_claims_file_is_refused_with_its_reason(tmp_path: Path):
    world = random_world(Shape("HMO", "separate", "embedded", 0, (2,), 20, 41))
    (tmp_path / "not.parquet").write_text("claim_id,line\n1,1\n")
    with pytest.raises(BatchError, match="not a Parquet file"):
        run_batch(tmp_path / "not.parquet", tmp_path / "d.parquet", world.context)
    world.claims.drop("units").write_parquet(tmp_path / "short.parquet")
    with pytest.raises(BatchError, match=r"lack the column.*units"):
        run_batch(tmp_path / "short.parquet", tmp_path / "d.parquet", world.context)
    world.claims.with_columns(pl.col("charge_cents").cast(pl.Float64)).write_parquet(
        tmp_path / "float.parquet"
    )
    with pytest.raises(BatchError, match="charge_cents is Float64, expected Int64"):
        run_batch(tmp_path / "float.parquet", tmp_path / "d.parquet", world.context)
    assert not (tmp_path / "d.parquet").exists()


# --- crash safety --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crash_world(tmp_path_factory) -> Path:
    """A snapshot and two claims files (A, then B: another run over the same context)."""
    root = tmp_path_factory.mktemp("crash")
    world = random_world(
        Shape("HMO", "separate", "embedded", 30000, tuple([4, 2, 3, 1, 5, 2] * 6), 2500, 51)
    )
    write_snapshot(world.context, root / "context")
    world.claims.write_parquet(root / "a.parquet")
    # B: A without its first 300 claims' lines, with charges up by a tenth.
    dropped = world.claims["claim_id"].unique(maintain_order=True).head(300).implode()
    world.claims.filter(~pl.col("claim_id").is_in(dropped)).with_columns(
        charge_cents=pl.col("charge_cents") * 11 // 10
    ).write_parquet(root / "b.parquet")
    return root


def batch_cli(
    root: Path, claims: str, out: Path, crash: str | None = None, workers: int = 1, **popen
):
    env = dict(os.environ)
    env.pop("OPENHMO_BATCH_CRASH_AT", None)
    if crash:
        env["OPENHMO_BATCH_CRASH_AT"] = crash
    command = [
        sys.executable,
        "-m",
        "openhmo.cli.main",
        "claims",
        "adjudicate-batch",
        "--claims",
        str(root / claims),
        "--context",
        str(root / "context"),
        "--out",
        str(out),
        "--partition-lines",
        "1000",
        "--workers",
        str(workers),
    ]
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def outputs(out: Path) -> dict[str, bytes]:
    """Every visible output file, by relative path, with its bytes."""
    return {
        str(p.relative_to(out.parent)): p.read_bytes()
        for p in sorted(out.parent.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out.parent).parts)
    }


def frames(out: Path) -> dict[str, pl.DataFrame]:
    state = read_snapshot_state(out.with_name(f"{out.stem}.state"))
    return {"decisions": pl.read_parquet(out), **state}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equals(b[name]), f"{name} differs"


@pytest.fixture(scope="module")
def clean_runs(crash_world: Path, tmp_path_factory) -> dict[str, dict[str, pl.DataFrame]]:
    """Uninterrupted runs of A and of B, each in a directory of its own."""
    runs = {}
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(f"clean-{name}") / "d.parquet"
        done = batch_cli(crash_world, f"{name}.parquet", out)
        assert done.returncode == 0, done.stderr
        runs[name] = frames(out)
    assert not runs["a"]["decisions"].equals(runs["b"]["decisions"])
    return runs


@pytest.mark.parametrize(
    ("crash", "workers"),
    [("partition:1", 1), ("partition:3", 1), ("commit", 1), ("partition:2", 2)],
)
def test_a_crash_leaves_the_previous_outputs_and_a_rerun_finishes(
    tmp_path: Path, crash_world: Path, clean_runs, crash: str, workers: int
):
    """Killed at a partition, or at the commit; with worker processes too (which must end
    with the run, or they would hold its output pipes open: the run would never end)."""
    out = tmp_path / "d.parquet"
    assert batch_cli(crash_world, "a.parquet", out).returncode == 0
    before = outputs(out)
    killed = batch_cli(crash_world, "b.parquet", out, crash=crash, workers=workers)
    assert killed.returncode == -signal.SIGKILL
    # Killed before or at the commit (the journal written, nothing renamed): A's outputs.
    assert outputs(out) == before
    rerun = batch_cli(crash_world, "b.parquet", out)
    assert rerun.returncode == 0, rerun.stderr
    assert_same(frames(out), clean_runs["b"])
    assert not [p for p in tmp_path.iterdir() if ".run-" in p.name or p.name.endswith(".commit")]


def test_a_crash_between_the_renames_is_rolled_forward(
    tmp_path: Path, crash_world: Path, clean_runs
):
    out = tmp_path / "d.parquet"
    assert batch_cli(crash_world, "a.parquet", out).returncode == 0
    killed = batch_cli(crash_world, "b.parquet", out, crash="move")
    assert killed.returncode == -signal.SIGKILL
    # The decisions are B's, the state still A's: the journal says what is left to do.
    assert (tmp_path / ".d.parquet.commit").exists()
    assert recover(out)
    assert_same(frames(out), clean_runs["b"])
    assert not recover(out)


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_from_outside_midway_then_rerun(
    tmp_path: Path, crash_world: Path, clean_runs, workers: int
):
    """SIGKILL from outside once some partitions are decided and others are not."""
    out = tmp_path / "d.parquet"
    assert batch_cli(crash_world, "a.parquet", out).returncode == 0
    before = outputs(out)
    run = batch_cli(
        crash_world,
        "b.parquet",
        out,
        workers=workers,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    midway = False
    while time.monotonic() < deadline and run.poll() is None:
        # The runner deletes each partition's file as it takes it: midway is when some
        # are gone and some are left.
        parts = list(tmp_path.glob(".d.parquet.run-*/parts/part-*.parquet"))
        if 0 < len(parts) < 5:
            run.send_signal(signal.SIGKILL)
            midway = True
            break
        time.sleep(0.005)
    run.wait(timeout=60)
    assert midway, "the run ended before it could be killed midway"
    assert outputs(out) == before
    rerun = batch_cli(crash_world, "b.parquet", out)
    assert rerun.returncode == 0, rerun.stderr
    assert_same(frames(out), clean_runs["b"])


def test_an_error_of_the_background_writer_reaches_the_run(tmp_path: Path):
    """Decisions are written on a thread of their own; what fails there fails the run."""
    import pyarrow as pa

    from openhmo.batch.runner import _Writer

    schema = pa.schema([("claim_id", pa.string())])
    with (
        pytest.raises((pa.ArrowInvalid, ValueError)),
        _Writer(tmp_path / "d.parquet", schema) as writer,
    ):
        writer.write_table(pa.table({"claim_id": ["C1"]}))
        writer.write_table(pa.table({"other": [1]}))  # another schema: refused
        for _ in range(50):  # the error surfaces at a later write, or at the end
            time.sleep(0.01)
            writer.write_table(pa.table({"claim_id": ["C2"]}))
