"""The server loads what its first callers would wait for before it takes calls."""

from __future__ import annotations

import gc

import httpx
import numba
from sqlalchemy import func, select

from api_support import serve
from openhmo.adjudication import share_pass
from openhmo.db import session_factory
from openhmo.plans import store
from openhmo.plans.models import Plan
from openhmo.reference import geo
from support import load_examples


def test_the_zip_table_and_every_plan_design_are_loaded_before_the_first_call(engine, monkeypatch):
    with session_factory(engine)() as s:
        load_examples(s)
        s.commit()
        plans = s.scalar(select(func.count()).select_from(Plan))
    assert plans >= 5
    geo.zip_table.cache_clear()
    geo.counties.cache_clear()
    store._designs.clear()
    # The cost-sharing pass afresh, as in a new process (nothing compiled or loaded yet).
    fresh = numba.njit(cache=True, nogil=True)(share_pass._pass.py_func)
    monkeypatch.setattr(share_pass, "_pass", fresh)
    assert not fresh.signatures
    gc.unfreeze()
    try:
        with serve(engine, lifespan="on") as base:
            # Started means the start-up has run: nothing has been asked yet.
            assert geo.zip_table.cache_info().currsize == 1
            assert geo.counties.cache_info().currsize == 1
            assert len(store._designs) == plans
            # The compiled cost-sharing pass, for the arguments the engine gives it.
            assert share_pass._pass.signatures
            # What was loaded is frozen: the garbage collector walks it no more.
            zips = geo.zip_table()
            assert gc.get_freeze_count() > 0
            assert gc.is_tracked(zips)
            assert all(o is not zips for o in gc.get_objects(generation=2))
            assert httpx.get(f"{base}/fhir/metadata", timeout=30).status_code == 200
    finally:
        gc.unfreeze()  # the test process's own objects are collected again
