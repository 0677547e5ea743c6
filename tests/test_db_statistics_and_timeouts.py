"""What keeps the database's plans good and its callers from waiting forever.

- After a bulk load the planner's statistics are refreshed (db.refresh_statistics, also
  `openhmo db analyze`), on both databases: a PostgreSQL without autovacuum otherwise
  plans a directory search over 100,000 providers as if the tables were empty.
- The API server's statements on PostgreSQL have a timeout: a search stuck behind a lock
  is answered 503 with an OperationOutcome, and the server answers again afterwards.
- On SQLite the same timeout is how long a call waits for the one writer: a call that
  waits longer is answered 503 (come back), one whose writer finishes in time waits.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api_support import serve
from openhmo.cli.main import app
from openhmo.db import make_engine, session_factory
from openhmo.network.service import ensure_network
from support import ACTOR


def test_openhmo_db_analyze_gives_the_planner_the_tables_sizes(engine, database_url, monkeypatch):
    with session_factory(engine)() as s:
        ensure_network(s, "core", "Core Network", actor=ACTOR)
        s.commit()
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["db", "analyze"])
    assert result.exit_code == 0 and "Statistics refreshed" in result.output, result.output
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            stats = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'network'"))
            assert [row[0].split()[0] for row in stats][:1] == ["1"]  # one row counted
        else:
            analyzed = conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'network'")
            ).scalar_one()
            assert analyzed is not None


# PostgreSQL only: statement_timeout is its own, and SQLite's readers never wait for a lock.
@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_search_stuck_behind_a_lock_is_a_503_and_the_server_goes_on(engine):
    with session_factory(engine)() as s:
        ensure_network(s, "core", "Core Network", actor=ACTOR)
        s.commit()
    url = engine.url.render_as_string(hide_password=False)
    timed = make_engine(url, statement_timeout_ms=300)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE network IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)
            conn.rollback()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with serve(timed) as base:
            answer = httpx.get(f"{base}/fhir/PractitionerRole", timeout=30)
            assert answer.status_code == 503
            outcome = answer.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert outcome["issue"][0]["code"] == "timeout"
            assert answer.headers["retry-after"] == "5"
            release.set()
            holder.join(10)
            again = httpx.get(f"{base}/fhir/PractitionerRole", timeout=30)
            assert again.status_code == 200 and again.json()["total"] == 0
    finally:
        release.set()
        holder.join(10)
        timed.dispose()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_sqlite_writer_is_waited_for_up_to_the_servers_timeout(engine):
    url = engine.url.render_as_string(hide_password=False)
    asked = {"grant_type": "password", "username": "nobody", "password": "x" * 12}

    def holding_the_writer(seconds: float):
        held = threading.Event()

        def hold() -> None:
            with engine.connect() as conn:
                conn.exec_driver_sql("UPDATE network SET name = name")  # takes the write lock
                held.set()
                threading.Event().wait(seconds)
                conn.rollback()

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(10)
        return thread

    def asked_while_held(timeout_ms: int, held_s: float) -> httpx.Response:
        timed = make_engine(url, statement_timeout_ms=timeout_ms)
        try:
            holder = holding_the_writer(held_s)
            with serve(timed) as base:
                answer = httpx.post(f"{base}/auth/token", data=asked, timeout=30)
            holder.join(10)
            return answer
        finally:
            timed.dispose()

    answer = asked_while_held(300, 3)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    answer = asked_while_held(15_000, 1)
    # waited for the writer, then refused the login (RFC 6749: invalid_grant)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
