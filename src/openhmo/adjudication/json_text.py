"""JSON objects as text, one a line: the parameters of the members' explanations.

A batch writes an object for each of millions of lines, but the lines have few distinct
objects (a partition's 220,000 paid lines about 1,500: amounts and a category). So the
lines are numbered by their combination of values, each distinct object is written
once (json.dumps of each value), and every line takes its object's text: a gather of
Polars' text views, which copies no text. Polars' struct.json_encode, or concat_str
after encoding each value, made every line's text anew (25-28 ms a partition). A
real-time call's few lines are encoded one by one, quicker for them than any numbering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from openhmo.money import format_money

S = pl.String
# Up to this many lines are encoded one by one.
ONE_BY_ONE = 512
# Combinations of values are renumbered before their number could pass this.
_LIMIT = 2**62


@dataclass(frozen=True)
class Field:
    """A field of the object: an expression, and what of each value is encoded (the
    value itself when `value` is None). A null is JSON null."""

    expr: pl.Expr
    value: Callable[[Any], Any] | None = None


def money(column: str) -> Field:
    """An amount in cents as the text "$1,250.00" (openhmo.money.format_money); none is 0."""
    return Field(pl.col(column).fill_null(0), format_money)


def json_object(fields: dict[str, Field]) -> pl.Expr:
    """One JSON object a line, as text: the `fields` by name, in the order given."""
    if not fields:
        return pl.lit("{}", S)
    struct = pl.struct(**{f"_{i}": f.expr for i, f in enumerate(fields.values())})
    make = partial(_objects, list(fields), [f.value for f in fields.values()])
    return struct.map_batches(make, return_dtype=S)


def _text(value: Any, turn: Callable[[Any], Any] | None) -> str:
    if value is None:
        return "null"
    return json.dumps(value if turn is None else turn(value), ensure_ascii=False)


def _objects(names: list[str], turns: list, batch: pl.Series) -> pl.Series:
    columns = batch.struct.unnest()
    pieces = [("{" if i == 0 else ",") + json.dumps(name) + ":" for i, name in enumerate(names)]
    if batch.len() <= ONE_BY_ONE:
        rows = zip(*(columns.get_column(c).to_list() for c in columns.columns), strict=True)
        return pl.Series(
            [
                "".join(p + _text(v, t) for p, v, t in zip(pieces, row, turns, strict=True)) + "}"
                for row in rows
            ],
            dtype=S,
        )
    # Each line's combination of values as one number: every field's distinct values
    # numbered (null last) and the numbers combined digit by digit; the combinations are
    # renumbered densely when the next digit could overflow, and at the end.
    combination = np.zeros(batch.len(), dtype=np.int64)
    size = 1
    steps: list[tuple[list[tuple[list[str], int]], np.ndarray]] = []
    digits: list[tuple[list[str], int]] = []
    for name, turn in zip(columns.columns, turns, strict=True):
        column = columns.get_column(name)
        distinct = column.drop_nulls().unique()
        texts = [_text(v, turn) for v in distinct.to_list()] + ["null"]
        numbers = pl.Series(np.arange(distinct.len(), dtype=np.int64))
        code = (
            column.replace_strict(distinct, numbers, default=None, return_dtype=pl.Int64)
            .fill_null(distinct.len())
            .to_numpy()
        )
        if size * len(texts) >= _LIMIT:
            combination, kept = _renumbered(combination)
            steps.append((digits, kept))
            digits, size = [], len(kept)
        combination = combination * len(texts) + code
        digits.append((texts, len(texts)))
        size *= len(texts)
    combination, kept = _renumbered(combination)
    steps.append((digits, kept))
    # Each distinct combination's values, undone digit by digit (last renumbering first).
    values: list[list[str]] = [[] for _ in range(len(kept))]
    numbers = np.arange(len(kept))
    for digits, kept in reversed(steps):
        rest = kept[numbers]
        for texts, radix in reversed(digits):
            rest, code = np.divmod(rest, radix)
            for value, c in zip(values, code.tolist(), strict=True):
                value.append(texts[c])
        numbers = rest
    objects = [
        "".join(p + t for p, t in zip(pieces, reversed(value), strict=True)) + "}"
        for value in values
    ]
    return pl.Series(objects, dtype=S).gather(combination)


def _renumbered(combination: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense numbers for `combination`, and the combination each number stands for."""
    values = pl.Series(combination)
    kept = values.unique()
    numbers = pl.Series(np.arange(kept.len(), dtype=np.int64))
    dense = values.replace_strict(kept, numbers, return_dtype=pl.Int64)
    return dense.to_numpy(), kept.to_numpy()
