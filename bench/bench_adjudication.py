"""Benchmark: the columnar adjudication engine against the row-by-row reference model.

Both decide the same synthetic world (the property tests' generator: a plan, families,
providers, referrals, a stream of claims) in one process; the script checks they agree
on every line, and reports lines per second, the ratio, and peak resident memory.

    .venv/bin/python bench/bench_adjudication.py [--families 400] [--claims 20000]
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from openhmo.adjudication.engine import adjudicate
from reference_model import adjudicate_reference
from test_adjudication_properties import Shape, random_world


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=400)
    parser.add_argument("--claims", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shape = Shape(
        plan_type="HMO",
        accumulation="separate",
        deductible_kind="embedded",
        deductible_cents=30000,
        family_sizes=tuple([4] * args.families),
        claims=args.claims,
        seed=args.seed,
    )
    world = random_world(shape)
    lines = world.claims.height
    adjudicate(world.claims.head(50), world.context)  # warm caches (rules, code lists)
    started = time.perf_counter()
    fast = adjudicate(world.claims, world.context)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = adjudicate_reference(world.claims, world.context)
    reference_s = time.perf_counter() - started
    columns = [
        "claim_id",
        "line_number",
        "status",
        "allowed_cents",
        "plan_paid_cents",
        "member_share_cents",
    ]
    agree = (
        fast.decisions.select(columns)
        .sort(columns[:2])
        .equals(slow.decisions.select(columns).sort(columns[:2]))
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"{lines:,} claim lines, {args.families} families")
    print(f"engine:    {engine_s:.2f} s = {lines / engine_s:,.0f} lines/s")
    print(f"reference: {reference_s:.2f} s = {lines / reference_s:,.0f} lines/s")
    print(f"ratio: {reference_s / engine_s:.1f}x; identical decisions: {agree}")
    print(f"peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
