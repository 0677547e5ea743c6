"""What every sub-command shares: the console, the database, and how errors are shown."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from openhmo.config import database_url
from openhmo.db import make_engine, migrate, transaction

# Lines of output are not wrapped (a file path or an error stays on one line, for grep
# and for people); tables still fit the terminal. Into a pipe or a log, where Rich would
# assume 80 columns and cut wide tables' cells, they get 160 (COLUMNS still decides).
_WIDTH = None if os.isatty(1) or "COLUMNS" in os.environ else 160
console = Console(soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, width=_WIDTH)


def actor() -> str:
    """Who is acting, for the change history: OPENHMO_ACTOR, else the login name."""
    return os.environ.get("OPENHMO_ACTOR") or f"cli:{getpass.getuser()}"


def engine(url: str | None = None, *, upgrade: bool = True) -> Engine:
    """The configured database, migrated to the latest schema."""
    eng = make_engine(url or database_url())
    if upgrade:
        migrate(eng)
    return eng


@contextmanager
def unit_of_work(url: str | None = None) -> Iterator[Session]:
    with transaction(engine(url)) as session:
        yield session


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)
