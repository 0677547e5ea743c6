"""Benchmark: the vectorised service-category classifier against its row-by-row reference.

Runs both on the same synthetic claim lines in one process and reports lines per
second, the ratio between them, and the process's peak resident memory.

    .venv/bin/python bench/bench_categories.py [--lines 1000000] [--reference-lines 20000]
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import time

import polars as pl

from openhmo.categories.classifier import classify, classify_line

PROCEDURES = [
    "99213",
    "99214",
    "99203",
    "99395",
    "99381",
    "77067",
    "77066",
    "70551",
    "71046",
    "80053",
    "85025",
    "36415",
    "90837",
    "97110",
    "98941",
    "E0601",
    "A0427",
    "99284",
    "59400",
    "27447",
    "45378",
    "J1100",
    "G0439",
    "99223",
    "76805",
]
TAXONOMIES = [
    "207Q00000X",
    "207R00000X",
    "208000000X",
    "207V00000X",
    "207RC0000X",
    "2085R0202X",
    "103T00000X",
    "225100000X",
    "111N00000X",
    "207P00000X",
    "282N00000X",
]
PLACES = ["11", "11", "11", "22", "23", "21", "20", "81", "12", "19"]
DIAGNOSES = ["Z0000", "J069", "E119", "I10", "O0990", "Z3400", "M545", "F411", "Z23", "S8290XA"]


def synthetic_lines(n: int, seed: int = 1) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = {
        "procedure_code": [rng.choice(PROCEDURES) for _ in range(n)],
        "modifiers": [["33"] if rng.random() < 0.03 else [] for _ in range(n)],
        "revenue_code": [
            None if rng.random() < 0.9 else rng.choice(["0450", "0300", "0120", "0360"])
            for _ in range(n)
        ],
        "place_of_service": [rng.choice(PLACES) for _ in range(n)],
        "rendering_taxonomy": [rng.choice(TAXONOMIES) for _ in range(n)],
        "diagnosis_codes": [[rng.choice(DIAGNOSES)] for _ in range(n)],
        "drug_tier": [None] * n,
        "claim_type": ["professional"] * n,
        "sex": [rng.choice("FM") for _ in range(n)],
    }
    return pl.DataFrame(
        rows,
        schema_overrides={"modifiers": pl.List(pl.String), "diagnosis_codes": pl.List(pl.String)},
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def reference(frame: pl.DataFrame) -> list:
    return [classify_line(**row) for row in frame.iter_rows(named=True)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--reference-lines", type=int, default=20_000)
    args = parser.parse_args()
    big = synthetic_lines(args.lines)
    small = big.head(args.reference_lines)
    classify(small.head(100))  # load the rule table before timing
    fast, fast_s = timed(classify, big)
    slow, slow_s = timed(reference, small)
    agree = fast.head(len(small))["service_category"].to_list() == [c.value for c, _ in slow]
    fast_rate, slow_rate = args.lines / fast_s, len(small) / slow_s
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"vectorised classify: {args.lines:,} lines in {fast_s:.2f} s = {fast_rate:,.0f} lines/s")
    print(
        f"row-by-row reference: {len(small):,} lines in {slow_s:.2f} s = {slow_rate:,.0f} lines/s"
    )
    print(f"ratio: {fast_rate / slow_rate:.0f}x; same categories on the shared lines: {agree}")
    print(f"peak resident memory of the run: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
