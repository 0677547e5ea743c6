"""Test fixtures: real databases (SQLite and PostgreSQL), migrated by Alembic, one per test.

Each storage test runs twice, on an embedded SQLite file and on PostgreSQL. The schema
is migrated once per session into a template; every test gets a fresh copy of it (a
file copy for SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL), so tests commit for
real and still cannot see each other's data.

PostgreSQL is at OPENHMO_TEST_POSTGRES_URL (default: the local server on 127.0.0.1:5432,
user postgres, database test). When no server answers, the PostgreSQL half is skipped
with a message saying so, unless OPENHMO_REQUIRE_POSTGRES=1 (as in CI), where it fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from openhmo.db import make_engine, migrate, session_factory

POSTGRES_URL = os.environ.get(
    "OPENHMO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("OPENHMO_REQUIRE_POSTGRES") == "1"
CORPUS = Path(
    os.environ.get("OPENHMO_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpus")

# Rich sizes the CLI's console when it is first imported; give test output room.
os.environ.setdefault("COLUMNS", "200")

_postgres_problem: str | None = None


def _admin_engine() -> Engine:
    return make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _postgres_available() -> bool:
    global _postgres_problem
    try:
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception as exc:  # any failure to connect means: no server here
        _postgres_problem = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return False


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.exists():
        pytest.skip(f"the shared corpus is not at {CORPUS} (set OPENHMO_CORPUS)")
    return CORPUS


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template():
    if not _postgres_available():
        message = (
            f"PostgreSQL is not answering at {make_url(POSTGRES_URL).render_as_string()} "
            f"({_postgres_problem}); the PostgreSQL half of the storage tests is skipped here "
            "and runs in CI"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    name = f"openhmo_tpl_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    migrate(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_postgres(template: str) -> tuple[str, Engine]:
    name = f"openhmo_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(False)
    return name, make_engine(url)


def _drop_postgres(name: str) -> None:
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def _database(request, folder: Path) -> Iterator[Engine]:
    """A migrated, empty database of the kind `request.param` names."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = folder / "openhmo.db"
        shutil.copyfile(template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        template = request.getfixturevalue("postgres_template")
        name, eng = _fresh_postgres(template)
        yield eng
        eng.dispose()
        _drop_postgres(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Engine:
    """A migrated, empty database of each kind."""
    with _database(request, tmp_path) as eng:
        yield eng


@pytest.fixture
def database_url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def session(engine) -> Session:
    """A session on the test database; tests commit through it like the application does."""
    with session_factory(engine)() as s:
        yield s


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_engine(request, tmp_path_factory) -> Engine:
    """A migrated database of each kind shared by one module's tests (a seeded world)."""
    with _database(request, tmp_path_factory.mktemp("module")) as eng:
        yield eng
