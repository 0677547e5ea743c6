"""The explanation's parameters are JSON objects, put together as text (json_text).

The engine writes them without a JSON library per line (a batch encodes each distinct
value once and a compiled loop puts the objects together; a real-time call encodes
line by line), so these tests read what both ways write with the json module: any text,
including quotes, backslashes, control characters and non-ASCII, any integer, and null
must come back as they went in, and both ways must write the same text.
"""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from openhmo.adjudication import json_text
from openhmo.adjudication.json_text import Field, json_object, money
from openhmo.money import format_money

_TEXT = st.one_of(st.none(), st.text(max_size=12))
_NUMBER = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))


@settings(deadline=None)  # the first example loads the compiled loop
@given(
    st.lists(st.tuples(_TEXT, _NUMBER, _TEXT), max_size=30),
    st.text(min_size=1, max_size=8),
)
def test_the_objects_read_back_as_the_values_went_in(rows, name):
    frame = pl.DataFrame(rows, schema={"a": pl.String, "n": pl.Int64, "b": pl.String}, orient="row")
    # Key names are written as given; two of them would collide with `name` otherwise.
    fields = {name: Field(pl.col("a")), f"{name}#n": Field(pl.col("n")), "b": Field(pl.col("b"))}
    expected = [{name: a, f"{name}#n": n, "b": b} for a, n, b in rows]
    assert [json.loads(t) for t in _both_ways(frame, fields)] == expected


def _both_ways(frame: pl.DataFrame, fields: dict) -> list[str]:
    """The objects as a batch makes them (lines numbered by their combination of values,
    also renumbered at every field, as when numbers would overflow) and as a real-time
    call does (value by value); they must be the same text."""
    made = []
    for one_by_one, limit in ((10**6, json_text._LIMIT), (0, json_text._LIMIT), (0, 2)):
        saved = json_text.ONE_BY_ONE, json_text._LIMIT
        json_text.ONE_BY_ONE, json_text._LIMIT = one_by_one, limit
        try:
            made.append(frame.select(json_object(fields)).to_series().to_list())
        finally:
            json_text.ONE_BY_ONE, json_text._LIMIT = saved
    assert made[1] == made[0] and made[2] == made[0]
    return made[0]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(10**12), max_value=10**12))))
def test_money_is_the_formatted_amount_and_none_is_zero(amounts):
    frame = pl.DataFrame({"cents": amounts}, schema={"cents": pl.Int64})
    texts = _both_ways(frame, {"amount": money("cents")})
    assert [json.loads(t)["amount"] for t in texts] == [format_money(c or 0) for c in amounts]


def test_an_object_without_fields_is_empty_on_every_line():
    frame = pl.DataFrame({"x": [1, 2, 3]})
    assert frame.select("x", p=json_object({}))["p"].to_list() == ["{}"] * 3
