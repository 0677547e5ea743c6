"""`openhmo db`: where the data lives, bringing its schema up to date, and its statistics."""

from __future__ import annotations

import typer

from openhmo.cli.common import console, engine
from openhmo.config import database_url, describe_location
from openhmo.db import refresh_statistics

app = typer.Typer(help="The database: location and schema migrations.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every schema migration to the configured database."""
    engine()
    console.print(f"Schema up to date in {describe_location(database_url())}")


@app.command()
def where() -> None:
    """Print where the data lives."""
    console.print(describe_location(database_url()))


@app.command()
def analyze() -> None:
    """Refresh the query planner's statistics (ANALYZE), e.g. after a large load.

    The importers and the demo do it themselves; a server whose autovacuum is off needs
    it now and then as claims and audit records grow."""
    refresh_statistics(engine())
    console.print(f"Statistics refreshed in {describe_location(database_url())}")
