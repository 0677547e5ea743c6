"""Fuzzing the X12 reader: no input, however broken, may crash it or lose the good claims.

Hypothesis mutates valid 837s (ours and the corpus's): characters deleted, inserted
(delimiters above all), replaced; segments dropped, repeated or swapped; the file cut
short; and it throws raw bytes at the reader. Whatever comes in, the reader returns
what it found, the acknowledgments are written and read back as X12, every claim is
either accepted or rejected with a reason, and ingesting into a real database leaves
only whole claims.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from openhmo.claims.intake import ClaimIn
from openhmo.claims.models import Claim, ClaimLine
from openhmo.db import make_engine, session_factory
from openhmo.enrollment.models import Member
from openhmo.interop.x12 import ack999, write837
from openhmo.interop.x12.claims837 import ClaimsReader
from openhmo.interop.x12.envelope import read_file
from openhmo.interop.x12.ingest import ingest_file
from openhmo.interop.x12.intake837 import Accepted, Rejection, decide
from openhmo.interop.x12.syntax import read_segments

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "x12"
WHEN = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _ours() -> str:
    provider = write837.BillingProvider("1234567893", "CLINIC")
    items = []
    for i in range(3):
        claim = ClaimIn(
            patient_control_number=f"F{i}",
            member_number="M100",
            billing_npi="1234567893",
            place_of_service="11",
            diagnosis_codes=["J06.9", "R05"],
            lines=[
                {"service_date": date(2026, 3, 1 + i), "procedure_code": "99213", "charge": "100"},
                {"service_date": date(2026, 3, 1 + i), "procedure_code": "87880", "charge": "20.5"},
            ],
        )
        items.append(
            (claim, write837.Patient("M100", "OKAFOR", "ADA", date(1985, 2, 14), "F"), provider)
        )
    return write837.interchange(items, claims_per_set=2).render()


SEEDS = [_ours()]
for name in (
    "linuxforhealth/837_005010X222A2__demo.example1.837",
    "badx12/edi__X222-ambulance.edi",
):
    if (CORPUS / name).exists():
        SEEDS.append((CORPUS / name).read_text(encoding="latin-1"))

_CHARS = st.sampled_from(list("*~:^\n\r> 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-\x00\xff"))


@st.composite
def mutated(draw, fewest: int = 1) -> bytes:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(fewest, 6))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "drop", "repeat", "swap", "cut"]))
        n = len(text)
        if n == 0:
            break
        at = draw(st.integers(0, n - 1))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif op == "insert":
            text = text[:at] + "".join(draw(st.lists(_CHARS, min_size=1, max_size=6))) + text[at:]
        elif op == "replace":
            text = text[:at] + draw(_CHARS) + text[at + 1 :]
        elif op == "cut":
            text = text[:at]
        else:
            segments = text.split("~")
            i = draw(st.integers(0, len(segments) - 1))
            j = draw(st.integers(0, len(segments) - 1))
            if op == "drop":
                del segments[i]
            elif op == "repeat":
                segments.insert(i, segments[i])
            else:
                segments[i], segments[j] = segments[j], segments[i]
            text = "~".join(segments)
    return text.encode("latin-1", "replace")


def _read(data: bytes):
    claims = []
    read = read_file(
        io.BytesIO(data), {"837": lambda ts, d: ClaimsReader(ts, d, claims.append)}, name="fuzz.837"
    )
    return read, claims


def _check(data: bytes) -> None:
    read, claims = _read(data)
    for ts in read.sets():
        assert ts.status in ("A", "E", "R")
        for p in ts.problems:
            assert p.reason and isinstance(p.segment, str) and p.position >= 0
            assert "fuzz.837, line" in p.describe("fuzz.837")
    for claim in claims:
        outcome = decide(claim, "M100", submitter="fuzz")
        assert isinstance(outcome, Accepted | Rejection)
        if isinstance(outcome, Rejection):
            assert outcome.problems and all(p.reason for p in outcome.problems)
    # The answers are X12 that reads back without a problem of its own.
    for _, text in ack999.acknowledge(read, moment=WHEN, control=1):
        back = list(read_segments(io.BytesIO(text.encode("latin-1"))))
        assert back[0][1].id == "ISA" and back[-1][1].id == "IEA"
        answered = read_file(io.BytesIO(text.encode("latin-1")), {})
        assert answered.fatal is None
        assert all(not ic.problems for ic in answered.interchanges), (
            [ic.problems for ic in answered.interchanges],
            text[:300],
        )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_837s_never_crash_the_reader(data):
    _check(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_raw_bytes_never_crash_the_reader(data):
    _check(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_bytes_after_a_valid_isa_never_crash_the_reader(tail):
    _check(SEEDS[0][:107].encode() + tail)


def test_ingest_of_mutated_files_never_crashes_and_stores_only_whole_claims(
    tmp_path, sqlite_template
):
    import shutil

    path = tmp_path / "fuzz.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with session_factory(engine)() as session, session.begin():
        session.add(
            Member(
                member_number="M100",
                relationship_code="self",
                first_name="ADA",
                last_name="OKAFOR",
                birth_date=date(1985, 2, 14),
                sex="F",
            )
        )
    seen: list[int] = []

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(mutated(fewest=0))
    def run(data):
        source = tmp_path / "in.837"
        source.write_bytes(data)
        report = ingest_file(engine, source, tmp_path / "out", actor="test:fuzz", now=WHEN)
        assert (tmp_path / "out" / "in.837.report.json").exists()
        seen.append(report.claims_accepted)

    run()
    with session_factory(engine)() as session:
        claims = session.scalars(select(Claim)).all()
        for claim in claims:
            lines = session.scalar(
                select(func.count()).select_from(ClaimLine).where(ClaimLine.claim_id == claim.id)
            )
            assert lines >= 1 and claim.total_charge_cents == sum(
                ln.charge_cents for ln in claim.lines
            )
    engine.dispose()
    assert any(seen), (
        "no mutated file kept any good claim: the fuzzing is too blunt to test anything"
    )


def test_an_hl_hierarchy_in_a_circle_is_rejected_not_followed_forever(tmp_path):
    """Found by this fuzzing: an HL its own parent, or an id used twice so that two HLs
    name each other, sent the walk up the hierarchy round in a circle (memory without end).
    Run in a child process with a memory cap, so a regression fails instead of eating the
    machine."""
    import subprocess
    import sys

    text = SEEDS[0]
    looped = [
        text.replace("HL*2*1*22*0~", "HL*2*2*22*0~", 1),  # its own parent
        text.replace("HL*2*1*22*0~", "HL*1*2*22*0~", 1).replace("HL*3*1*22*0~", "HL*2*1*22*0~", 1),
    ]
    for n, case in enumerate(looped):
        assert case != text
        path = tmp_path / f"circle{n}.837"
        path.write_text(case)
        child = (
            "import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from test_x12_fuzz import _read\n"
            f"read, claims = _read(open({str(path)!r}, 'rb').read())\n"
            "assert all(c.problems for c in claims[:1]), 'the claim under the circle'\n"
            "print('ok', len(claims))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", child], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]
