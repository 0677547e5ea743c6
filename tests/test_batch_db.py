"""Batch runs over what the database holds: export, adjudicate-batch, what-if, by the CLI.

A small demo HMO is built and its year of claims adjudicated the real-time way (claim
by claim, family by family, into the database). Exported to files and decided again
by the batch path, every line must get the decision the database holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.adjudication.outputs import present
from openhmo.claims.models import Claim, ClaimLine, LineDecision
from openhmo.cli.main import app
from openhmo.db import transaction
from openhmo.demo.generator import DemoConfig, build_demo
from openhmo.history.models import PhiAccess

COMPARED = [
    "status",
    "pend_reason",
    "category",
    "network_tier",
    "cost_share_tier",
    "emergency",
    "charge_cents",
    "allowed_cents",
    "plan_paid_cents",
    "deductible_cents",
    "copay_cents",
    "coinsurance_cents",
    "member_share_cents",
    "explanation_id",
    "referral_number",
    "prior_auth_number",
]


@pytest.fixture
def demo(engine, database_url, tmp_path, monkeypatch):
    build_demo(engine, DemoConfig(seed=11, families=40, workdir=tmp_path / "files"))
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "staff:batch")
    monkeypatch.setenv("COLUMNS", "200")
    return engine


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def current_decisions(engine) -> dict[tuple[str, int], dict]:
    with transaction(engine) as session:
        rows = session.execute(
            select(Claim.claim_id, LineDecision)
            .join(Claim, Claim.id == LineDecision.claim_id)
            .join(ClaimLine, ClaimLine.id == LineDecision.line_id)
            .where(LineDecision.superseded_at.is_(None))
        ).all()
        return {
            (claim_id, d.line_number): {
                **{c: getattr(d, c) for c in COMPARED},
                "explanation_params": d.explanation_params,
                "adjustments": [
                    (a["group"], a["carc"], a["rarc"], a["amount_cents"]) for a in d.adjustments
                ],
            }
            for claim_id, d in rows
        }


def test_the_batch_path_decides_the_databases_claims_as_the_database_did(demo, tmp_path: Path):
    out = cli(
        "claims",
        "export",
        "--claims-out",
        str(tmp_path / "claims.parquet"),
        "--context-out",
        str(tmp_path / "context"),
    )
    assert "claim lines" in out
    with transaction(demo) as session:
        lines = session.scalar(select(func.count()).select_from(ClaimLine))
        audited = session.scalar(
            select(func.count(func.distinct(PhiAccess.member_id))).where(
                PhiAccess.actor == "staff:batch", PhiAccess.purpose == "claims export"
            )
        )
    assert pl.read_parquet(tmp_path / "claims.parquet").height == lines
    assert (
        audited
        == pl.read_parquet(tmp_path / "context" / "eligibility.parquet")["member_id"].n_unique()
    )

    out = cli(
        "claims",
        "adjudicate-batch",
        "--claims",
        str(tmp_path / "claims.parquet"),
        "--context",
        str(tmp_path / "context"),
        "--out",
        str(tmp_path / "decisions.parquet"),
        "--partition-lines",
        "1000",
    )
    assert "lines per second" in out
    batch = present(pl.read_parquet(tmp_path / "decisions.parquet"))
    database = current_decisions(demo)
    assert batch.height == len(database) == lines
    problems = []
    for row in batch.iter_rows(named=True):
        want = database[(row["claim_id"], row["line_number"])]
        got = {
            **{c: row[c] for c in COMPARED},
            "explanation_params": json.loads(row["explanation_params"]),
            "adjustments": [
                (a["group"], a["carc"], a["rarc"], a["amount_cents"]) for a in row["adjustments"]
            ],
        }
        for column, value in want.items():
            if got[column] != value:
                problems.append(
                    f"{row['claim_id']}/{row['line_number']} {column}: {got[column]!r} != {value!r}"
                )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])


def test_what_if_from_the_database_and_from_files_agree(demo, tmp_path: Path):
    design = Path(__file__).parents[1] / "src/openhmo/plans/examples/hmo-silver.yaml"
    text = design.read_text("utf-8")
    assert "specialist_visit: $50 copay" in text
    changed = tmp_path / "hmo-silver-75.yaml"
    changed.write_text(text.replace("specialist_visit: $50 copay", "specialist_visit: $75 copay"))

    from_db = cli(
        "what-if", "--plan", str(changed), "--year", "2026", "--csv", str(tmp_path / "db.csv")
    )
    assert "openhmo-silver-hmo 2026" in from_db
    table = pl.read_csv(tmp_path / "db.csv")
    specialist = table.filter(pl.col("category") == "specialist_visit").row(0, named=True)
    # Each paid specialist visit costs its member $25 more and the plan $25 less.
    assert specialist["member_change"] > 0
    assert specialist["member_change"] % 2500 == 0
    assert specialist["plan_change"] == -specialist["member_change"]
    others = table.filter(~pl.col("category").is_in(["specialist_visit", "total"]))
    assert others["plan_change"].to_list() == [0] * others.height
    total = table.filter(pl.col("category") == "total").row(0, named=True)
    assert total["plan_change"] == specialist["plan_change"]

    cli(
        "claims",
        "export",
        "--claims-out",
        str(tmp_path / "claims.parquet"),
        "--context-out",
        str(tmp_path / "context"),
    )
    cli(
        "what-if",
        "--plan",
        str(changed),
        "--year",
        "2026",
        "--claims",
        str(tmp_path / "claims.parquet"),
        "--context",
        str(tmp_path / "context"),
        "--csv",
        str(tmp_path / "files.csv"),
    )
    assert pl.read_csv(tmp_path / "files.csv").equals(table)

    out = cli("what-if", "--plan", str(changed), "--year", "2031", code=1)
    assert "has no plan year 2031" in out
