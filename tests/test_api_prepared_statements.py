"""On PostgreSQL the server's statements stay prepared from one call to the next.

psycopg prepares a statement it has run five times on a connection, and drops them all
at every ROLLBACK. The token's account check ran in a transaction of its own that ended
with one, so no statement of the server was ever prepared: every call was parsed and
planned again (api.app._single_reads). This is PostgreSQL's own behaviour, so it is
tested there only.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api_support import client, fhir_eligibility, seed_world, serve
from conftest import _database


@pytest.fixture(scope="module", params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def pg_api(request, tmp_path_factory):
    with _database(request, tmp_path_factory.mktemp("prepared")) as engine:
        world = seed_world(engine)
        with serve(engine) as base:
            yield base, world, engine


def test_statements_of_repeated_calls_are_prepared(pg_api):
    base, world, engine = pg_api
    with client(base, "staff") as staff:
        for _ in range(12):
            answer = staff.post(
                "/fhir/CoverageEligibilityRequest/$submit", json=fhir_eligibility(world.ada)
            )
            assert answer.status_code == 200
    # Every connection the pool keeps, taken at once (a statement is prepared on the
    # connection that ran it).
    connections = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        prepared = [
            statement
            for connection in connections
            for statement in connection.scalars(
                text("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
            )
        ]
    finally:
        for connection in connections:
            connection.close()
    assert any("FROM api_account" in s for s in prepared)
    assert any("FROM member" in s for s in prepared)
    assert any("INSERT INTO phi_access" in s for s in prepared)
