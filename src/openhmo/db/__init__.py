"""The database shell: engine, sessions and schema migrations for SQLite and PostgreSQL.

The schema is created only by the Alembic migrations in openhmo/db/migrations;
`migrate()` runs them. Models of every package share one declarative `Base`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from openhmo.config import database_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Python's sqlite3 driver opens transactions itself, lazily, at the first write: a
    # SAVEPOINT taken before that would open the transaction and its RELEASE commit it.
    # SQLAlchemy's documented recipe: the driver does nothing, and _sqlite_begin below
    # starts every transaction, so savepoints nest inside it as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers work while the demo writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(
    url: str | None = None, *, statement_timeout_ms: int | None = None, **kwargs
) -> Engine:
    """An engine for `url` (default: the configured database). `statement_timeout_ms`
    cancels any statement that runs longer (PostgreSQL) or waits longer for SQLite's one
    writer (its busy timeout; the driver's default is 5 s), e.g. for a server whose callers
    would rather have an error than wait."""
    url = url or database_url()
    if url.startswith("sqlite"):
        if statement_timeout_ms is not None:
            timeout = {"timeout": statement_timeout_ms / 1000}
            kwargs["connect_args"] = {**kwargs.get("connect_args", {}), **timeout}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if statement_timeout_ms is not None:
        options = f"-c statement_timeout={int(statement_timeout_ms)}"
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "options": options}
    # 40 connections kept, for the API's request threads (AnyIO's 40, each holding one at
    # most), and a few more for the real-time adjudicator's thread. With SQLAlchemy's
    # default (5 kept, 10 more) a busy server opened and closed a PostgreSQL connection
    # (a new server process) for most requests; with 20 kept and 20 more, a server that
    # fell behind for a moment still opened and closed 40-100 connections in 15 s at
    # 200 eligibility checks a second, each costing more than a check, so it fell
    # further behind.
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def refresh_statistics(engine: Engine) -> None:
    """Tell the query planner what a bulk load brought (ANALYZE every table).

    A server may run no autovacuum (this machine's PostgreSQL does not), or not yet: until
    then the planner takes a table of 100,000 providers for an empty one and plans a
    directory search that runs for minutes instead of milliseconds. SQLite's planner uses
    the statistics too (sqlite_stat1).
    """
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back entirely on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def load_all_models() -> None:
    """Import every package's models so Base.metadata knows the whole schema."""
    import openhmo.access.models
    import openhmo.billing.models
    import openhmo.claims.models
    import openhmo.enrollment.models
    import openhmo.history.models
    import openhmo.network.models
    import openhmo.plans.models
    import openhmo.referrals.models
    import openhmo.remittance.models  # noqa: F401
