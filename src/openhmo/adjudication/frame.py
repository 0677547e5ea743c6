"""Frame helpers of the engine's steps: settling open lines, recording the trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl

from openhmo.money import format_money

OPEN = pl.col("status").is_null()
# Whether the steps record their trace. The real-time path shows it to staff; a batch
# run writes only the decisions (and the clause that decided each line), so it skips
# building the notes of every step for millions of lines.
_TRACING: ContextVar[bool] = ContextVar("openhmo_tracing", default=True)


@contextmanager
def tracing(on: bool) -> Iterator[None]:
    token = _TRACING.set(on)
    try:
        yield
    finally:
        _TRACING.reset(token)


S, I64 = pl.String, pl.Int64


def settle(
    w: pl.DataFrame,
    condition: pl.Expr,
    *,
    step: str,
    status: str = "denied",
    group: str | None = "CO",
    carc: str | None = None,
    rarc: str | None = None,
    pend: str | None = None,
    clause: pl.Expr | str | None = None,
    note: pl.Expr | str | None = None,
) -> pl.DataFrame:
    """Give the open lines where `condition` holds their final status at this step."""
    hit = OPEN & condition.fill_null(False)

    def put(column: str, value) -> pl.Expr:
        value = value if isinstance(value, pl.Expr) else pl.lit(value, dtype=S)
        return pl.when(hit).then(value).otherwise(pl.col(column)).alias(column)

    return w.with_columns(
        put("status", status),
        put("group", group if status == "denied" else None),
        put("carc", carc),
        put("rarc", rarc),
        put("pend_reason", pend),
        put("decided_step", step),
        put("decided_clause", clause if clause is not None else pl.lit(None, S)),
        put("decided_note", note if note is not None else pl.lit(None, S)),
    )


def pend(
    w: pl.DataFrame,
    condition: pl.Expr,
    *,
    step: str,
    reason: str,
    clause: pl.Expr | str,
    approvable: bool = True,
) -> pl.DataFrame:
    """Pend the open lines where `condition` holds, unless staff have resolved the pend.

    A staff denial denies the line here with the staff's CARC (group CO); a staff
    approval passes the pend (docs/adjudication.md §6). An override of a line that
    does not pend changes nothing. `approvable=False` where an approval alone cannot
    settle the pend (pricing needs the allowed amount, which the step reads itself).
    """
    condition = condition.fill_null(False)
    w = settle(
        w,
        condition & override("deny"),
        step=step,
        carc=pl.col("override_carc"),
        clause=pl.lit("staff review: ", S) + pl.col("override_reason").fill_null(""),
    )
    if approvable:
        condition = condition & ~override("approve")
    return settle(w, condition, step=step, status="pended", pend=reason, clause=clause)


def trace(
    w: pl.DataFrame,
    step: str,
    clause: pl.Expr | str,
    note: pl.Expr | str | None = None,
    when: pl.Expr | None = None,
) -> pl.DataFrame:
    """Record that `step` applied `clause` to the lines where `when` holds.

    Each record is a column of its own (`_trace_<n>`), gathered into the decision's
    trace list once at the end (`trace_columns`): appending to one list column at
    every step would copy all the lists every time.
    """
    if not _TRACING.get():
        return w
    clause = clause if isinstance(clause, pl.Expr) else pl.lit(clause, S)
    note = note if isinstance(note, pl.Expr) else pl.lit(note, S)
    cond = when.fill_null(False) if when is not None else pl.lit(True)
    entry = pl.when(cond & clause.is_not_null()).then(
        pl.struct(step=pl.lit(step, S), clause=clause.cast(S), note=note.cast(S))
    )
    n = sum(c.startswith(TRACE_PREFIX) for c in w.columns)
    return w.with_columns(entry.alias(f"{TRACE_PREFIX}{n:02d}"))


TRACE_PREFIX = "_trace_"


def trace_columns(w: pl.DataFrame) -> list[str]:
    """The trace records of `w`, in the order the steps made them."""
    return sorted(c for c in w.columns if c.startswith(TRACE_PREFIX))


def override(action: str) -> pl.Expr:
    return (pl.col("override_action") == action).fill_null(False)


def money_text(expr: pl.Expr) -> pl.Expr:
    """Cents as "$1,250.00" text (openhmo.money.format_money), formatted once per distinct
    amount: a batch has millions of lines but few distinct amounts."""

    def fmt(cents: pl.Series) -> pl.Series:
        distinct = cents.drop_nulls().unique()
        texts = [format_money(c) for c in distinct.to_list()]
        return cents.replace_strict(distinct, texts, default=None, return_dtype=S)

    return expr.map_batches(fmt, return_dtype=S)
