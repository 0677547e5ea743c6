"""Where OpenHMO keeps its data: one database URL, from the environment or the default.

The default is an embedded SQLite file in the working directory, so a fresh clone
runs the demo with nothing to set up; OPENHMO_DATABASE_URL selects PostgreSQL
(postgresql+psycopg://...) for a real deployment.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SQLITE_FILE = "openhmo.db"


def database_url() -> str:
    url = os.environ.get("OPENHMO_DATABASE_URL")
    if url:
        return normalise_url(url)
    return f"sqlite:///{Path(DEFAULT_SQLITE_FILE).resolve()}"


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_location(url: str) -> str:
    """Where the data lives, for people: the file for SQLite, host and database otherwise."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend, port = parsed.get_backend_name(), parsed.port or 5432
    return f"{backend} database {parsed.database!r} on {parsed.host}:{port}"
