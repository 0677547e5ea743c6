"""The fast path of 837 intake gives what the precise reader gives, or hands the set over.

Whatever the file (the corpus, our own 837s of every shape, fuzzed ones), reading it with
`fast837.read_file_fast` and with `envelope.read_file` must give the same envelopes, the
same set verdicts and problems, and the same claims decided the same way. And the fast
path must actually be taken on clean files, or this would test nothing.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import date

from hypothesis import HealthCheck, given, settings

from openhmo.claims.intake import ClaimIn
from openhmo.interop.x12 import write837
from openhmo.interop.x12.claims837 import ClaimsReader
from openhmo.interop.x12.envelope import read_file
from openhmo.interop.x12.fast837 import read_file_fast
from openhmo.interop.x12.intake837 import Accepted, decide
from test_x12_fuzz import mutated


def summary(reader, data: bytes):
    claims = []
    read = reader(
        io.BytesIO(data), {"837": lambda ts, d: ClaimsReader(ts, d, claims.append)}, name="f"
    )
    sets = [
        (ts.code, ts.control, ts.status, [p.describe("f") for p in ts.problems], ts.set_problems)
        for ts in read.sets()
    ]
    envelopes = [(ic.problems, [g.problems for g in ic.groups]) for ic in read.interchanges]
    out = []
    for claim in claims:
        fields = dataclasses.asdict(claim)
        for name in ("sources", "locate", "problems"):
            fields.pop(name)
        decided = decide(claim, claim.subscriber_id or "X", submitter="s")
        fields["decided"] = (
            decided.claim_in.model_dump()
            if isinstance(decided, Accepted)
            else [p.describe("f") for p in decided.problems]
        )
        fields["problems"] = [p.describe("f") for p in claim.problems]
        out.append(fields)
    return str(read.fatal), envelopes, sets, out, [ts.bulk for ts in read.sets()]


def same(data: bytes) -> list[bool]:
    precise, fast = summary(read_file, data), summary(read_file_fast, data)
    assert precise[:4] == fast[:4]
    return fast[4]


def _claims(n: int, institutional: bool = False):
    provider = write837.BillingProvider(
        "1234567893", "CLINIC", address=("1 MAIN ST", "BOSTON", "MA", "021080000")
    )
    for i in range(n):
        lines = [
            {
                "service_date": date(2026, 3, 1 + i % 27),
                "procedure_code": ["99213", "87880", "80053"][i % 3],
                "modifiers": ["25"] if i % 4 == 0 else [],
                "revenue_code": "0450" if institutional else None,
                "charge": f"{100 + i}.{i % 100:02d}",
                "units": 1 + i % 3,
            }
            for _ in range(1 + i % 3)
        ]
        claim = ClaimIn(
            patient_control_number=f"P{i}",
            member_number=f"M{i:05d}",
            billing_npi="1234567893",
            rendering_npi="1234567893" if i % 2 else None,
            claim_type="institutional" if institutional else "professional",
            place_of_service=None if institutional else "11",
            diagnosis_codes=["J06.9", "R05"][: 1 + i % 2],
            referral_number=f"R{i}" if i % 5 == 0 else None,
            prior_auth_number=f"A{i}" if i % 7 == 0 else None,
            emergency=i % 6 == 0,
            lines=lines,
        )
        yield (
            claim,
            write837.Patient(claim.member_number, "DOE", f"J{i}", date(1980, 1, 1 + i % 28), "F"),
            provider,
        )


def test_the_corpus_reads_the_same_both_ways(corpus):
    files = sorted((corpus / "x12").rglob("*"))
    files = [f for f in files if f.is_file()]
    bulk = []
    for path in files:
        bulk.extend(same(path.read_bytes()))
    assert any(bulk), "the fast path took no corpus set"


def test_our_837s_read_the_same_both_ways_and_in_bulk():
    for institutional in (False, True):
        text = write837.interchange(
            list(_claims(60, institutional)), claims_per_set=25, institutional=institutional
        ).render()
        assert same(text.encode()) == [True, True, True]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(fewest=0))
def test_fuzzed_837s_read_the_same_both_ways(data):
    same(data)
