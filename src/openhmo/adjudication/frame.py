"""Frame helpers of the engine's steps: settling open lines, recording the trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl

from openhmo.money import format_money

OPEN = pl.col("_decision").is_null()
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


# What a step decides of a line: its status, group code, CARC, RARC, pend reason, the
# step and the clause that decided it (and the trace's note on it).
FIELDS = (
    "status",
    "group",
    "carc",
    "rarc",
    "pend_reason",
    "decided_step",
    "decided_clause",
    "decided_note",
)
# Every decision a step can make, once: a line carries the number of its decision
# (`_decision`), and only the parts that differ line by line (a clause naming a claim
# number, a CARC from staff) as columns of their own (`_x_<field>`). Writing eight
# text columns at every settle would copy them all for every line, dozens of times.
_DECISIONS: dict[tuple, int] = {}
_LOCK = threading.Lock()


def _decision_id(values: tuple) -> int:
    with _LOCK:
        return _DECISIONS.setdefault(values, len(_DECISIONS))


def settle(
    w: pl.DataFrame,
    condition: pl.Expr,
    *,
    step: str,
    status: str = "denied",
    group: str | None = "CO",
    carc: pl.Expr | str | None = None,
    rarc: str | None = None,
    pend: str | None = None,
    clause: pl.Expr | str | None = None,
    note: pl.Expr | str | None = None,
) -> pl.DataFrame:
    """Give the open lines where `condition` holds their final status at this step."""
    hit = OPEN & condition.fill_null(False)
    fields = dict(
        zip(
            FIELDS,
            (
                status,
                group if status == "denied" else None,
                carc,
                rarc,
                pend,
                step,
                clause,
                note if _TRACING.get() else None,
            ),
            strict=True,
        )
    )
    constant = tuple(None if isinstance(v, pl.Expr) else v for v in fields.values())
    number = _decision_id(constant)
    # Most rules settle no line of most partitions: then nothing is written (the
    # condition is evaluated once, and the decision and clause columns not at all).
    hits = w.select(hit.alias("_hit")).to_series()
    if not hits.any():
        return w
    # A rule settles a few lines: their decision is put in place, and the parts that
    # differ line by line are made for those lines alone (an expression over every line,
    # kept only where it hit, cost most of a settle).
    at = hits.arg_true()
    columns = [w.get_column("_decision").scatter(at, number)]
    made = {f"_x_{name}": v.cast(S) for name, v in fields.items() if isinstance(v, pl.Expr)}
    if made:
        roots = {r for v in made.values() for r in v.meta.root_names()} or {"_decision"}
        # (with_columns, not select: a constant is made once for every line that hit.)
        lines = w.select(sorted(roots)).filter(hits).with_columns(**made)
        for column in made:
            before = (
                w.get_column(column)
                if column in w.columns
                else pl.Series(column, [None], S).extend_constant(None, w.height - 1)
            )
            columns.append(before.scatter(at, lines.get_column(column)))
    return w.with_columns(columns)


def decided(w: pl.DataFrame) -> pl.DataFrame:
    """The decision of every line as the columns FIELDS; a line no step settled and that
    cost sharing paid (`paying`) is paid."""
    with _LOCK:
        known = list(_DECISIONS.items())
    # One join with the table of decisions (most lines, paid, have none).
    table = pl.DataFrame(
        {"_decision": [n for _, n in known]}
        | {name: [key[i] for key, _ in known] for i, name in enumerate(FIELDS)},
        schema={"_decision": pl.Int32} | dict.fromkeys(FIELDS, S),
    )
    w = w.drop([c for c in FIELDS if c in w.columns]).join(
        table, on="_decision", how="left", maintain_order="left"
    )
    variable = [name for name in FIELDS if f"_x_{name}" in w.columns]
    w = w.with_columns(
        pl.coalesce(pl.col(f"_x_{name}"), pl.col(name)).alias(name) for name in variable
    ).drop([c for c in w.columns if c.startswith("_x_")])
    return w.with_columns(
        status=pl.when(pl.col("_decision").is_null() & pl.col("paying").fill_null(False))
        .then(pl.lit("paid", S))
        .otherwise(pl.col("status"))
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


def first_of_line() -> pl.Expr:
    """The first row of each line in a frame whose rows are grouped by line (`_row`), as
    a join that keeps the lines' order leaves them: with the right side sorted, a line's
    first row is its match (its span, plan year or contract)."""
    return pl.col("_row") != pl.col("_row").shift(1).fill_null(-1)


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
