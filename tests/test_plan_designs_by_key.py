"""plans.store.designs_by_key: each stored plan's design by plan key, its JSON read only once."""

from __future__ import annotations

import re

from sqlalchemy import event, select

from openhmo.db import session_factory
from openhmo.plans import store
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of, designs_by_key
from support import load_examples

# The design's JSON column, not its digest beside it.
DESIGN_JSON = re.compile(r"plan_year\.design\b(?!_)")


def test_designs_by_key_are_each_plans_design_and_read_its_json_once(engine, monkeypatch):
    with session_factory(engine)() as s:
        load_examples(s)
    with session_factory(engine)() as s:
        expected = {p.plan_key: design_of(p) for p in s.scalars(select(Plan)) if p.years}
    assert len(expected) >= 3
    monkeypatch.setattr(store, "_designs", {})  # none validated yet
    statements: list[str] = []

    def seen(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_factory(engine)() as s:
            assert designs_by_key(s, None) == expected
        assert any(DESIGN_JSON.search(st) for st in statements)  # read once, validated
        statements.clear()
        some = sorted(expected)[:2]
        with session_factory(engine)() as s:
            assert designs_by_key(s, None) == expected
            assert designs_by_key(s, some) == {k: expected[k] for k in some}
            assert designs_by_key(s, ["no-such-plan"]) == {}
        # Validated designs are found by their digests: one read a call, no JSON.
        assert len(statements) == 3
        assert not any(DESIGN_JSON.search(st) for st in statements)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
