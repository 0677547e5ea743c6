"""A context snapshot on disk: every table of a `Context` as Parquet, the plan designs as JSON.

Batch adjudication and Spark read the world from a snapshot directory instead of the
database, so a run can be repeated exactly, moved to a cluster, or re-run under another
plan design (what-if). Layout of a snapshot directory:

    designs/<plan_key>.json      one validated PlanDesign per plan (model_dump, JSON)
    <table>.parquet              one file per table of openhmo.adjudication.context.SCHEMAS
    MANIFEST.json                what wrote it, and when
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from openhmo.adjudication.context import SCHEMAS, Context, empty
from openhmo.plans.design import PlanDesign


class SnapshotError(ValueError):
    pass


def write_snapshot(context: Context, directory: str | Path, *, note: str = "") -> Path:
    """Write `context` to `directory` atomically (a reader never sees half a snapshot)."""
    directory = Path(directory)
    staging = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    (staging / "designs").mkdir(parents=True)
    for key, design in context.designs.items():
        (staging / "designs" / f"{key}.json").write_text(
            design.model_dump_json(indent=1), encoding="utf-8"
        )
    for name in SCHEMAS:
        getattr(context, name).write_parquet(staging / f"{name}.parquet")
    (staging / "MANIFEST.json").write_text(
        json.dumps(
            {
                "written_at": datetime.now(UTC).isoformat(),
                "note": note,
                "tables": sorted(SCHEMAS),
                "plans": sorted(context.designs),
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    replace_directory(staging, directory)
    return directory


def read_snapshot(directory: str | Path, *, families: pl.Series | None = None) -> Context:
    """The context in `directory`; with `families`, only what concerns those families."""
    directory = Path(directory)
    if not (directory / "MANIFEST.json").exists():
        raise SnapshotError(f"{directory} is not a context snapshot (no MANIFEST.json)")
    designs = {}
    for path in sorted((directory / "designs").glob("*.json")):
        try:
            designs[path.stem] = PlanDesign.model_validate_json(path.read_text("utf-8"))
        except ValueError as exc:
            raise SnapshotError(f"{path}: not a valid plan design: {exc}") from None
    tables = {}
    for name, schema in SCHEMAS.items():
        path = directory / f"{name}.parquet"
        table = pl.read_parquet(path) if path.exists() else empty(name)
        if dict(table.schema) != dict(schema):
            raise SnapshotError(f"{path}: schema {dict(table.schema)} is not {dict(schema)}")
        tables[name] = table
    if families is not None:
        tables = _only(tables, families)
    return Context(designs=designs, **tables)


def only_families(context: Context, families: pl.Series) -> Context:
    """What of `context` concerns `families` (the shared tables whole)."""
    tables = {name: getattr(context, name) for name in SCHEMAS}
    return Context(designs=context.designs, **_only(tables, families))


def _only(tables: dict[str, pl.DataFrame], families: pl.Series) -> dict[str, pl.DataFrame]:
    """The rows of the member-keyed tables that belong to `families`."""
    eligibility = tables["eligibility"].filter(pl.col("family_id").is_in(families.implode()))
    members = eligibility["member_id"].unique()
    coverages = eligibility["coverage_id"].unique()
    keep = dict(tables, eligibility=eligibility)
    keep["grace_periods"] = tables["grace_periods"].filter(
        pl.col("coverage_id").is_in(coverages.implode())
    )
    for name in ("pcp", "referrals", "prior_auths", "visit_usage"):
        keep[name] = tables[name].filter(pl.col("member_id").is_in(members.implode()))
    keep["accumulators"] = tables["accumulators"].filter(
        pl.col("family_id").is_in(families.implode())
    )
    numbers = keep["referrals"]["referral_number"].unique()
    keep["referral_usage"] = tables["referral_usage"].filter(
        pl.col("referral_number").is_in(numbers.implode())
    )
    return keep


def replace_directory(staging: Path, target: Path) -> None:
    """Put `staging` where `target` is, so that `target` is always whole: the old one or
    the new one, never a mix (rename is atomic on one file system)."""
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
