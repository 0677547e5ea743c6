"""`openhmo x12`: X12 5010 files in (837, 834, 270, 278) and out (999, 277CA, 271, 278, 835)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from openhmo.claims.service import adjudicate_waiting
from openhmo.cli.common import actor, console, engine, err_console, fail
from openhmo.cli.x12_remit import remit
from openhmo.db import session_factory
from openhmo.interop.x12.ingest import FileReport, ingest_file

app = typer.Typer(
    help="X12 5010: ingest 837/834/270/278 files, write 999/277CA/271/278/835.",
    no_args_is_help=True,
)
app.command("remit")(remit)


def _say(path: Path, report: FileReport) -> None:
    """Every rejection on stderr: file, line, segment, element and reason."""
    if report.fatal:
        err_console.print(f"[bold red]rejected:[/] {report.fatal}", highlight=False)
    for problem in report.envelope_problems:
        err_console.print(f"[yellow]envelope:[/] {problem}", highlight=False)
    for s in report.sets:
        if s.status == "R":
            reasons = "; ".join(s.problems)
            err_console.print(
                f"[bold red]rejected:[/] {path.name}: transaction set {s.code} {s.control}: "
                f"{reasons}",
                highlight=False,
            )
        for r in s.rejected:
            who = r.get("patient_control_number") or r.get("member") or ""
            for reason in r.get("reasons", [r.get("reason", "")]):
                err_console.print(
                    f"[red]{s.code} rejected[/] {who} {r.get('status', '')}: {reason}",
                    highlight=False,
                )


@app.command("ingest")
def ingest(
    files: list[Path] = typer.Argument(..., help="X12 files; each may hold several interchanges."),
    out: Path = typer.Option(
        Path("x12-out"), "--out", help="Where the acknowledgments, answers and reports go."
    ),
    adjudicate: bool = typer.Option(
        False, "--adjudicate", help="Adjudicate the claims taken in, after the files."
    ),
    plan_map: Path | None = typer.Option(
        None,
        "--plan-map",
        help="834: a YAML of the sponsor's plan codes (REF*CE, HD04, HD03) to our plan keys.",
    ),
    database: str | None = typer.Option(
        None, "--database", help="Database URL (default: OPENHMO_DATABASE_URL or ./openhmo.db)."
    ),
) -> None:
    """Read X12 files, apply them, and answer each: a 999 for syntax, a 277CA for 837 claims,
    a 271 for a 270, a 278 for a 278 request.

    A file that is not X12, a broken transaction set or a broken claim is reported with
    its file, line, segment position, element and reason; everything else goes through.
    """
    if plan_map is not None:
        if not plan_map.is_file():
            raise fail(f"--plan-map {plan_map}: no such file")
        os.environ["OPENHMO_834_PLAN_MAP"] = str(plan_map.resolve())
    eng = engine(database)
    who = actor()
    # Taken: claims stored, members applied, inquiries and requests answered; refused: the
    # ones rejected, each named on stderr above the table.
    table = Table("file", "sets", "taken", "refused", "answers")
    table.title = "X12 ingest"
    unreadable = 0
    for path in files:
        if not path.is_file():
            err_console.print(f"[bold red]error:[/] {path}: no such file", highlight=False)
            unreadable += 1
            continue
        report = ingest_file(eng, path, out, actor=who)
        unreadable += bool(report.fatal)
        _say(path, report)
        table.add_row(
            path.name,
            ", ".join(f"{s.code} {s.control} {s.status}" for s in report.sets) or "-",
            str(sum(len(s.accepted) + len(s.applied) for s in report.sets)),
            str(sum(len(s.rejected) for s in report.sets)),
            ", ".join(Path(o).name for o in report.outputs),
        )
    console.print(table)
    if adjudicate:
        result = adjudicate_waiting(session_factory(eng), actor=who)
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(result.statuses.items()))
        console.print(f"adjudicated {result.claims} claims, {result.lines} lines ({statuses})")
        for error in result.errors:
            err_console.print(f"[red]not adjudicated:[/] {error}", highlight=False)
    if unreadable:
        raise fail(f"{unreadable} file(s) could not be read as X12", code=1)
