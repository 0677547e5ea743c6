"""Benchmark: 837 intake (parse, validate, map) against pyx12 on the same file, and memory.

One 837P file of generated claims (005010X222A1, the version pyx12 has a map for: one to
three service lines, modifiers, referrals, several billing providers, sets of 5,000
claims) is read, each in a fresh process:

- by OpenHMO's intake as `openhmo x12 ingest` reads it: the envelopes checked, every
  segment against its element rules, the loops followed and each claim mapped
  (openhmo.interop.x12.claims837), and every claim turned into our intake model
  (`ClaimIn`, all its validation) by intake837.decide;
- the same without `ClaimIn` (reading, checking and mapping only);
- by pyx12's validator (x12n_document), the reference Python X12 validator.

It reports claims per second, each one's ratio to pyx12 in this run, and peak resident
memory. Then, for memory that stays flat, it reads a small file and a large one (1 GB by
default: the small file's sets repeated) with the intake and compares peak memory.

    .venv/bin/python bench/bench_x12.py [--claims 20000] [--large-mb 1024] [--work DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from _common import run_child  # noqa: E402


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in info.read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = f"{names[0]} x {len(names)}" if names else cpu
    return cpu


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children -------------------------------------------------------------------------


def generate(path: str, claims: int, seed: int = 7) -> dict:
    import random

    from openhmo.claims.intake import ClaimIn
    from openhmo.interop.x12 import write837

    rng = random.Random(seed)
    providers = [
        write837.BillingProvider(npi, f"CLINIC {i}")
        for i, npi in enumerate(["1234567893", "1245319599", "1679576722", "1386670107"])
    ]
    codes = ["99213", "99214", "87880", "80053", "93000", "71046", "J1100", "97110"]
    diagnoses = ["J06.9", "R05", "E11.9", "I10", "M54.50", "Z00.00"]

    def items():
        for i in range(claims):
            lines = [
                {
                    "service_date": date(2026, 1 + i % 12, 1 + rng.randrange(28)),
                    "procedure_code": rng.choice(codes),
                    "modifiers": ["25"] if rng.random() < 0.1 else [],
                    "charge": f"{rng.randint(20, 900)}.{rng.randrange(100):02d}",
                    "units": rng.choice([1, 1, 1, 2]),
                }
                for _ in range(rng.choice([1, 1, 2, 3]))
            ]
            claim = ClaimIn(
                patient_control_number=f"PCN{i:08d}",
                member_number=f"M{rng.randrange(100000):08d}",
                billing_npi=providers[i % 4].npi,
                place_of_service="11",
                diagnosis_codes=rng.sample(diagnoses, rng.choice([1, 2, 3])),
                referral_number=f"R{i:07d}" if rng.random() < 0.2 else None,
                lines=lines,
            )
            patient = write837.Patient(claim.member_number, "DOE", "JANE", date(1980, 1, 1), "F")
            yield claim, patient, providers[i % 4]

    started = time.perf_counter()
    with open(path, "w", encoding="ascii") as out:
        for piece in write837.stream(sorted(items(), key=lambda x: x[2].npi)):
            out.write(piece)
            out.write("\n")
    return {"seconds": time.perf_counter() - started, "bytes": Path(path).stat().st_size}


def enlarge(small: str, large: str, megabytes: int) -> dict:
    """The small file's sets repeated, each with a control number of its own, to `megabytes`."""
    import re

    text = Path(small).read_text()
    head, _, rest = text.partition("ST*837*")
    body = "ST*837*" + rest[: rest.rindex("GE*")]
    number = 0

    def st(match: re.Match) -> str:
        nonlocal number
        number += 1
        return f"ST*837*{number:09d}*"

    written = 0
    with open(large, "w", encoding="ascii") as out:
        out.write(head)
        while written < megabytes * 1024 * 1024:
            chunk = re.sub(r"ST\*837\*\d+\*", st, body)
            # Each SE names the ST before it: number them the same way, in order.
            numbers = iter(range(number - chunk.count("ST*837*") + 1, number + 1))

            def se(match: re.Match, numbers=numbers) -> str:
                return f"{match.group(1)}{next(numbers):09d}~"

            chunk = re.sub(r"(SE\*\d+\*)\d+~", se, chunk)
            out.write(chunk)
            written += len(chunk)
        out.write(f"GE*{number}*1~\nIEA*1*000000001~\n")
    return {"bytes": Path(large).stat().st_size, "sets": number}


def intake(path: str, decide_claims: bool = True) -> dict:
    from openhmo.interop.x12.claims837 import ClaimsReader
    from openhmo.interop.x12.envelope import read_file
    from openhmo.interop.x12.intake837 import Accepted, decide

    counts = {"claims": 0, "accepted": 0}

    def sink(claim) -> None:
        counts["claims"] += 1
        if decide_claims:
            decided = decide(claim, claim.subscriber_id, submitter="bench")
            counts["accepted"] += isinstance(decided, Accepted)
        else:
            counts["accepted"] += not claim.problems

    started = time.perf_counter()
    read = read_file(path, {"837": lambda ts, d: ClaimsReader(ts, d, sink)})
    seconds = time.perf_counter() - started
    sets = list(read.sets())
    return {
        **counts,
        "seconds": seconds,
        "sets": len(sets),
        "sets_accepted": sum(ts.status == "A" for ts in sets),
        "peak_mib": _peak_mib(),
    }


def pyx12(path: str) -> dict:
    import logging

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    valid = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=path,
        fd_997=io.StringIO(),
        fd_html=None,
        fd_xmldoc=None,
        xslt_files=None,
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "valid": bool(valid), "peak_mib": _peak_mib()}


CHILDREN = {"generate": generate, "enlarge": enlarge, "intake": intake, "pyx12": pyx12}


# --- the run --------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](**json.loads(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=20000)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="openhmo-x12-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    small, large = work / "claims.837", work / "large.837"
    made = run_child(HERE, "generate", path=str(small), claims=args.claims)
    size = made["bytes"] / 1e6
    print(f"{args.claims:,} claims, {size:.1f} MB, generated in {made['seconds']:.1f} s")
    full = run_child(HERE, "intake", path=str(small), decide_claims=True)
    reading = run_child(HERE, "intake", path=str(small), decide_claims=False)
    reference = run_child(HERE, "pyx12", path=str(small))
    assert full["accepted"] == reading["accepted"] == args.claims, (full, reading)
    assert reference["valid"], "pyx12 found the generated file invalid"
    rates = {
        "OpenHMO intake (read, check, map, ClaimIn)": args.claims / full["seconds"],
        "OpenHMO reading alone (no ClaimIn)": args.claims / reading["seconds"],
        "pyx12 validation": args.claims / reference["seconds"],
    }
    peaks = {
        "OpenHMO intake (read, check, map, ClaimIn)": full["peak_mib"],
        "OpenHMO reading alone (no ClaimIn)": reading["peak_mib"],
        "pyx12 validation": reference["peak_mib"],
    }
    base = rates["pyx12 validation"]
    print(f"\nmachine: {_machine()}, Python {platform.python_version()}")
    print(f"{'reader':44} {'claims/s':>10} {'x pyx12':>8} {'peak MiB':>9}")
    for name, rate in rates.items():
        print(f"{name:44} {rate:10,.0f} {rate / base:8.1f} {peaks[name]:9.0f}")
    if args.large_mb:
        grown = run_child(
            HERE, "enlarge", small=str(small), large=str(large), megabytes=args.large_mb
        )
        big = run_child(HERE, "intake", path=str(large), decide_claims=True)
        assert big["sets_accepted"] == grown["sets"], big
        print(
            f"\nmemory: {made['bytes'] / 1e6:.0f} MB file {full['peak_mib']:.0f} MiB peak; "
            f"{grown['bytes'] / 1e9:.2f} GB file ({big['claims']:,} claims, "
            f"{big['claims'] / big['seconds']:,.0f} claims/s) {big['peak_mib']:.0f} MiB peak "
            f"({big['peak_mib'] / full['peak_mib']:.2f}x)"
        )
        large.unlink()


if __name__ == "__main__":
    main()
