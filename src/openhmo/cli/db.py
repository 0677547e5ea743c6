"""`openhmo db`: where the data lives, and bringing its schema up to date."""

from __future__ import annotations

import typer

from openhmo.cli.common import console, engine
from openhmo.config import database_url, describe_location

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
