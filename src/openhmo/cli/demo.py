"""`openhmo demo`: build a realistic synthetic HMO in the database and show what it holds."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, inspect, select

from openhmo.cli.common import console, fail
from openhmo.config import database_url, describe_location
from openhmo.db import Base, load_all_models, make_engine, migrate, transaction
from openhmo.demo.generator import DemoConfig, build_demo
from openhmo.demo.summary import render_summary
from openhmo.enrollment.models import Member
from openhmo.history.models import ChangeRecord


def demo(
    seed: int = typer.Option(2026, help="the same seed gives the same HMO"),
    families: int = typer.Option(1200, min=1, help="families applying for coverage"),
    year: int = typer.Option(2026, help="the plan year to simulate"),
    reset: bool = typer.Option(False, help="empty a database that holds other data first"),
    files: Path = typer.Option(Path("openhmo-demo-files"), help="where the generated rosters go"),
) -> None:
    """Build a synthetic HMO: plans, a provider network, families, PCPs and a year of premiums."""
    url = database_url()
    started = time.monotonic()
    engine = _fresh_database(url, reset)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        def factory(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda n=1: progress.advance(task, n)

        result = build_demo(
            engine, DemoConfig(seed=seed, families=families, year=year, workdir=files), factory
        )
    with transaction(engine) as session:
        render_summary(session, result, year)
    console.print(
        f"\nBuilt in {time.monotonic() - started:.1f} s. The data lives in "
        f"[bold]{describe_location(url)}[/]; the provider rosters it imported are in "
        f"{files}/.\nTry: openhmo plans show openhmo-silver-hmo, openhmo network search "
        "--specialty pediatrics --near-zip 02139, openhmo enrollment show OHM000000001-00, "
        f"openhmo x12 remit --out {files}/835 (the year's claims paid, one 835 per provider)"
    )


def _fresh_database(url: str, reset: bool) -> Engine:
    """An empty, migrated database: a previous demo is replaced; other data needs --reset."""
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    if "member" in tables:
        with engine.connect() as conn:
            members = conn.scalar(select(func.count()).select_from(Member))
            was_demo = conn.scalar(
                select(func.count())
                .select_from(ChangeRecord)
                .where(ChangeRecord.action == "demo_built")
            )
        if members and not was_demo and not reset:
            raise fail(
                f"{describe_location(url)} holds {members} members that are not a demo's; "
                "use --reset to replace them, or point OPENHMO_DATABASE_URL elsewhere"
            )
    if url.startswith("sqlite:///"):
        engine.dispose()
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(url)
    elif tables:
        load_all_models()
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(engine)
    return engine
