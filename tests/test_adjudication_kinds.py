"""The engine's memory of classified kinds of line gives what classifying them gives.

steps_coverage._ClassifiedKinds keeps each kind's category for the process's life (a
kind's category depends on the kind alone). These tests check it against the classifier
itself on the rule table's own cases: across calls that add kinds, when it starts again
at its limit, and with threads adding the same kinds at once.
"""

from __future__ import annotations

import threading

import polars as pl
import pytest

from openhmo.adjudication.steps_coverage import (
    KIND_FEATURES,
    KIND_KEY,
    _ClassifiedKinds,
)
from openhmo.categories.classifier import classify
from test_categories import CASES, SCHEMA, em


def _lines() -> pl.DataFrame:
    lines = pl.DataFrame([case for _, _, case in CASES], schema=SCHEMA, orient="row")
    return lines.select(KIND_FEATURES)


def _kinds(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.unique(subset=KIND_KEY, keep="first", maintain_order=True)


def _expected(lines: pl.DataFrame) -> pl.DataFrame:
    return classify(lines).select(
        *KIND_KEY, category="service_category", category_rule="category_rule"
    )


def _looked_up(memory: _ClassifiedKinds, lines: pl.DataFrame) -> pl.DataFrame:
    known = memory.classified(_kinds(lines), KIND_KEY)
    # One row per kind, or the engine's join would repeat lines.
    assert known.select(KIND_KEY).is_duplicated().sum() == 0
    return lines.select(KIND_KEY).join(
        known, on=KIND_KEY, how="left", maintain_order="left", nulls_equal=True
    )


# New kinds classified as a frame (0), and one by one (1,000).
ONE_BY_ONE = pytest.mark.parametrize("one_by_one", [0, 1000])


@ONE_BY_ONE
def test_kinds_looked_up_are_classified_as_the_classifier_does(one_by_one):
    lines = _lines()
    assert lines.height > 40
    expected = _expected(lines)
    memory = _ClassifiedKinds()
    memory.ONE_BY_ONE = one_by_one
    # In three calls: the second and third find some kinds known, some new.
    thirds = [lines[: lines.height // 3], lines[: 2 * lines.height // 3], lines]
    for part in thirds:
        got = _looked_up(memory, part)
        assert got.equals(expected.head(part.height))
    # And they are the rule table's own answers.
    assert got["category"].to_list() == [str(category) for category, _, _ in CASES]
    assert got["category_rule"].to_list() == [rule for _, rule, _ in CASES]


@ONE_BY_ONE
def test_memory_starts_again_at_its_limit_and_still_answers_every_kind(one_by_one):
    lines = _lines()
    expected = _expected(lines)
    memory = _ClassifiedKinds()
    memory.ONE_BY_ONE = one_by_one
    memory.LIMIT = 10
    for start in range(0, lines.height, 7):
        part = lines[start : start + 12]
        assert _looked_up(memory, part).equals(expected[start : start + 12])
    # Past the limit it kept only what the last call needed, not every kind seen.
    assert memory.classified(_kinds(lines[-12:]), KIND_KEY).height <= 2 * 12


@ONE_BY_ONE
def test_threads_adding_the_same_kinds_at_once_leave_one_row_per_kind(one_by_one):
    lines = _lines()
    expected = _expected(lines)
    memory = _ClassifiedKinds()
    memory.ONE_BY_ONE = one_by_one
    start = threading.Barrier(4)
    answers: list[pl.DataFrame] = []

    def ask() -> None:
        start.wait()
        answers.append(_looked_up(memory, lines))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4
    for answer in answers:
        assert answer.equals(expected)


@ONE_BY_ONE
def test_kinds_differing_only_in_diagnoses_no_rule_reads_are_classified_once(one_by_one):
    # One E/M visit and one vaccine, with diagnoses the rules read (a well visit's as the
    # principal, a pregnancy's or Z23 anywhere) and many they do not, written both ways.
    lists = [
        ["J06.9"],
        ["j069"],
        ["I10", "E11.9"],
        ["E11.9", "I10", "J06.9"],
        ["Z00.00"],
        ["z0000", "I10"],
        ["I10", "Z00.00"],
        ["O09.90"],
        ["I10", "O09.90"],
        ["Z23"],
        ["I10", "Z23"],
        ["I10", "z23", "J06.9"],
        [],
    ]
    lines = pl.DataFrame(
        [em(code, "207Q00000X", diagnosis_codes=dx) for code in ("99213", "90686") for dx in lists],
        schema=SCHEMA,
    )
    lines = lines.select(KIND_FEATURES)
    memory = _ClassifiedKinds()
    memory.ONE_BY_ONE = one_by_one
    got = _looked_up(memory, lines)
    assert got.equals(_expected(lines))
    n = len(lists)
    listed = [",".join(dx) for dx in got["diagnosis_codes"].to_list()]
    categories = dict(zip(listed[:n], got["category"][:n], strict=True))
    # The rules' own distinctions are kept...
    assert categories["Z00.00"] == "preventive" and categories["I10,Z00.00"] != "preventive"
    assert categories["O09.90"] == categories["I10,O09.90"] == "maternity"
    vaccines = dict(zip(listed[n:], got["category"][n:], strict=True))
    assert vaccines["I10,z23,J06.9"] == vaccines["Z23"] != vaccines["J06.9"]
    # ...and the lists no rule tells apart are one kind: 26 lines, 8 kinds kept (per
    # code: nothing read, a Z00.00 principal, O09.90 anywhere, Z23 anywhere).
    assert memory._known.height == 8
