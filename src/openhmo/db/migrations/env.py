"""Alembic environment: runs migrations on the connection OpenHMO hands it."""

from alembic import context
from sqlalchemy import pool

from openhmo.config import database_url
from openhmo.db import Base, load_all_models, make_engine

load_all_models()
target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(
        config.get_main_option("sqlalchemy.url") or database_url(), poolclass=pool.NullPool
    )
    with engine.begin() as conn:
        _run_on(conn)


def _run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
