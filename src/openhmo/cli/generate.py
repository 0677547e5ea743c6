"""`openhmo generate`: synthetic data sets for benchmarks and what-if runs, no database.

`openhmo generate claims --members N --year YYYY --out DIR [--seed S]` writes a whole
synthetic HMO of N members (openhmo.batch.generate): `DIR/claims.parquet`, the claim
lines ordered by family, and `DIR/context/`, the context snapshot that decides them
(plan designs, eligibility, providers, contracts, fee schedules, QPAs, referrals,
authorizations). The same seed gives the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openhmo.batch.generate import Summary, write_world
from openhmo.cli.common import console, fail
from openhmo.money import format_money

app = typer.Typer(
    help="Generate synthetic data sets (no database): claims and their context.",
    no_args_is_help=True,
)


@app.command()
def claims(
    members: Annotated[int, typer.Option(min=1, help="members in the synthetic plan")],
    year: Annotated[int, typer.Option(min=1900, max=2999, help="the plan year of the claims")],
    out: Annotated[Path, typer.Option(file_okay=False, help="directory to write into")],
    seed: Annotated[int, typer.Option(help="the same seed gives the same files")] = 0,
) -> None:
    """Write a synthetic plan's year of claims and their context to --out.

    OUT/claims.parquet holds the claim lines (ordered by family), OUT/context/ the
    context snapshot that adjudicates them.
    """
    if out.exists() and not out.is_dir():
        raise fail(f"--out: {out} exists and is not a directory")
    with Progress(
        TextColumn("generating members and claims"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("members", total=members)
        try:
            summary = write_world(
                members, year, out, seed=seed, progress=lambda n: bar.advance(task, n)
            )
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None
    _show(summary, out)


def _percent(summary: Summary, key: str) -> str:
    return f"{summary.counts.get(key, 0):,} ({100 * summary.share(key):.1f}%)"


def _show(summary: Summary, out: Path) -> None:
    table = Table("", "", title=f"Synthetic claims, {summary.year} (seed {summary.seed})")
    table.add_row("members", f"{summary.members:,}")
    table.add_row("families", f"{summary.families:,}")
    table.add_row("providers", f"{summary.providers:,}")
    table.add_row("claims", f"{summary.claims:,}")
    table.add_row("claim lines", f"{summary.lines:,}")
    if summary.member_years:
        table.add_row("claims per member-year", f"{summary.claims / summary.member_years:.1f}")
    if summary.claims:
        table.add_row("lines per claim", f"{summary.lines / summary.claims:.2f}")
    table.add_row("out of network (no contract)", _percent(summary, "out_of_network"))
    table.add_row("emergency", _percent(summary, "emergency"))
    table.add_row("referral needed", _percent(summary, "referral_needing"))
    table.add_row("  referral on file", _percent(summary, "referral_on_file"))
    table.add_row("pharmacy", _percent(summary, "pharmacy"))
    table.add_row("after coverage ended", _percent(summary, "after_end"))
    table.add_row("duplicates", _percent(summary, "duplicates"))
    table.add_row("replacements (7)", _percent(summary, "replacements"))
    table.add_row("voids (8)", _percent(summary, "voids"))
    table.add_row("referrals / authorizations", f"{summary.referrals:,} / {summary.prior_auths:,}")
    table.add_row("total charges", format_money(summary.counts.get("charge_cents", 0)))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    console.print(table)
    plans = Table("plan", "members", title="Members by plan")
    for key, count in sorted(summary.plans.items()):
        plans.add_row(key, f"{count:,}")
    console.print(plans)
    for key in summary.plans_without_year:
        console.print(
            f"[yellow]{key} has no plan year {summary.year}: its claims will be denied "
            "CO-96 (N130)[/]",
            highlight=False,
        )
    console.print(f"Wrote {out / 'claims.parquet'} and {out / 'context'}/", highlight=False)
