"""270 -> 271 eligibility and 278 referral requests -> 278 responses, through `x12 ingest`.

On SQLite and PostgreSQL, with real members, providers, claims and referrals in the
database: the corpus 270s (not our members: AAA), hand-written 270s for our members
(active coverage, plan type, PCP, copays, and what remains of the deductible and the
out-of-pocket maximum after adjudicated claims), and hand-written 278 requests (approved,
pended, denied, broken). pyx12, with the 5010 maps of tests/x12_maps, must accept every
271 and 278 written.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from openhmo.claims.intake import ClaimIn, submit_claim
from openhmo.claims.service import adjudicate_claim
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.history.models import PhiAccess
from openhmo.interop.x12.eligibility270 import Benefits, CostLine, Limit, Pcp, benefit_segments
from openhmo.interop.x12.ingest import ingest_file
from openhmo.network.models import Provider
from openhmo.referrals.models import Referral
from support import choose_pcp_for, family, load_examples, price_network, provider
from x12_validate import pyx12_validate

DATA = Path(__file__).resolve().parent / "data" / "x12"
WHEN = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
X12_ACTOR = "test:x12-ingest"
NPI = {
    "pcp": "1900000013",
    "cardio": "1900000021",
    "ortho": "1900000039",
    "outside": "1900000047",
}


# --- the world: Ada's family on the Silver HMO, their PCP, specialists, two claims -------------


def _provider(session, key: str, **kwargs):
    found = provider(session, **kwargs)
    found.npi = NPI[key]  # the hand-written files name these NPIs
    session.flush()
    return found


def build_world(session) -> dict[str, Member]:
    """Ada's family with their PCP, three specialists (one out of network) and fee schedules."""
    load_examples(session)
    coverage = family(session)
    members = {
        m.first_name: m
        for m in session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        )
    }
    pcp = _provider(session, "pcp", last_name="Welby")
    cardio = _provider(session, "cardio", last_name="Heart", taxonomy="207RC0000X", pcp=False)
    ortho = _provider(session, "ortho", last_name="Bones", taxonomy="207X00000X", pcp=False)
    _provider(
        session, "outside", last_name="Faraway", taxonomy="207RC0000X", pcp=False, network_key=None
    )
    price_network(session, [pcp, cardio, ortho], {"99214": 15000, "59425": 30000})
    choose_pcp_for(session, members.values(), pcp)
    session.commit()
    return members


@pytest.fixture
def world(engine, session):
    members = build_world(session)
    assert members["Ada"].member_number == "OHM000000001-00"
    assert members["Kid0"].member_number == "OHM000000001-02"
    return engine, session, members


def _claim(session, member, code: str, day: date, charge: str, pcn: str) -> None:
    claim = submit_claim(
        session,
        ClaimIn(
            patient_control_number=pcn,
            member_number=member.member_number,
            billing_npi=NPI["pcp"],
            diagnosis_codes=["I10"],
            lines=[{"service_date": day, "procedure_code": code, "charge": charge}],
        ),
        received_at=WHEN,
        actor=X12_ACTOR,
    )
    session.commit()
    adjudicate_claim(session, claim.claim_id, actor=X12_ACTOR)
    session.commit()


def ingest(engine, path: Path, out: Path):
    report = ingest_file(engine, path, out, actor=X12_ACTOR, now=WHEN)
    assert report.fatal is None, report.fatal
    return report


def answer(report, kind: str) -> Path:
    (found,) = [Path(o) for o in report.outputs if o.endswith(f".{kind}")]
    return found


def segments(path: Path) -> list[list[str]]:
    text = path.read_text()
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def valid(path: Path) -> None:
    ok, errors = pyx12_validate(path)
    assert ok, (errors, path.read_text())


def of(segs: list[list[str]], sid: str) -> list[list[str]]:
    return [s for s in segs if s[0] == sid]


# --- the pure mapping --------------------------------------------------------------------------


def test_benefit_segments_from_plain_data():
    benefits = Benefits(
        True,
        "FAM",
        "HM",
        "OpenHMO Silver HMO",
        "23",
        Pcp("1900000013", "Welby", "Marcus"),
        (Limit("C", "IND", "Y", 50000, 20000), Limit("G", "FAM", "Y", 1200000, 1167500)),
        (
            CostLine("98", "Y", copay=2500, per="27"),
            CostLine("UC", "Y", copay=5000, per="27"),
            CostLine("3", "Y", copay=5000, per="27", authorization=True),
            CostLine("69", "Y", coinsurance=Decimal("20")),
            CostLine("A9", "Y", copay=3000, per="27", visit_limit=("VS", 30, "23")),
            CostLine("BZ", "Y", copay=None),
        ),
    )
    assert benefit_segments(benefits, ["30"]) == [
        ["EB", "1", "FAM", "30", "HM", "OPENHMO SILVER HMO"],
        ["EB", "L"],
        ["LS", "2120"],
        ["NM1", "P3", "1", "WELBY", "MARCUS", "", "", "", "XX", "1900000013"],
        ["LE", "2120"],
        ["EB", "C", "IND", "30", "HM", "", "23", "500", "", "", "", "", "Y"],
        ["EB", "C", "IND", "30", "HM", "", "29", "200", "", "", "", "", "Y"],
        ["EB", "G", "FAM", "30", "HM", "", "23", "12000", "", "", "", "", "Y"],
        ["EB", "G", "FAM", "30", "HM", "", "29", "11675", "", "", "", "", "Y"],
        ["EB", "B", "", "98", "HM", "", "27", "25", "", "", "", "", "Y"],
        # the same copay for urgent care and the specialist's consultation, but only the
        # specialist needs the PCP's referral (EB11)
        ["EB", "B", "", "UC", "HM", "", "27", "50", "", "", "", "", "Y"],
        ["EB", "B", "", "3", "HM", "", "27", "50", "", "", "", "Y", "Y"],
        ["EB", "A", "", "69", "HM", "", "", "", "0.2", "", "", "", "Y"],
        ["EB", "B", "", "A9", "HM", "", "27", "30", "", "", "", "", "Y"],
        ["EB", "F", "", "A9", "HM", "", "23", "", "", "VS", "30", "", "Y"],
        ["EB", "B", "", "BZ", "HM", "", "", "0", "", "", "", "", "Y"],
    ]
    # Asked for urgent care only: its status, and its cost sharing, nothing else priced.
    asked = benefit_segments(benefits, ["UC"])
    assert ["EB", "1", "", "UC", "HM"] in asked
    assert [s[3] for s in asked if s[:2] == ["EB", "B"]] == ["UC"]
    assert benefit_segments(Benefits(False), ["30"]) == [["EB", "6", "", "30"]]


# --- 270 -> 271 --------------------------------------------------------------------------------


def corpus_270s(corpus: Path) -> list[Path]:
    x12 = corpus / "x12"
    return sorted((x12 / "linuxforhealth").glob("270_*.270")) + sorted(
        (x12 / "badx12").glob("edi__X279-generic-request-by-*.edi")
    )


def test_the_corpus_270s_are_answered_not_our_members(engine, corpus, tmp_path):
    files = corpus_270s(corpus)
    assert len(files) == 4
    for path in files:
        report = ingest(engine, path, tmp_path)
        (ts,) = report.sets
        assert ts.status == "A", ts.problems
        assert ts.applied == []
        (rejected,) = ts.rejected
        assert rejected["member"] == "11122333301"
        assert rejected["status"] == "AAA:75:C"
        assert "NM109" in rejected["reasons"][0] and "not a member" in rejected["reasons"][0]
        out = answer(report, "271")
        valid(out)
        segs = segments(out)
        assert of(segs, "AAA") == [["AAA", "Y", "", "75", "C"]]
        assert of(segs, "TRN") == [["TRN", "2", "93175-012547", "9877281234"]]
        assert of(segs, "EB") == []
        # The trace of the inquiry is answered; the 999 accepts the set.
        assert "IK5*A" in answer(report, "999").read_text()


def test_an_active_member_with_benefits_left_after_claims(world, tmp_path):
    engine, session, m = world
    # Ada's maternity visit: $300 allowed, all to her deductible. Sam's PCP visit: $25.
    _claim(session, m["Ada"], "59425", date(2026, 2, 2), "400", "A")
    _claim(session, m["Sam"], "99214", date(2026, 3, 5), "200", "B")
    report = ingest(engine, DATA / "eligibility-subscriber.270", tmp_path)
    (ts,) = report.sets
    assert ts.status == "A" and ts.rejected == []
    assert ts.applied == [
        {
            "trace": "ELIG0001-1",
            "member": "OHM000000001-00",
            "date": "2026-06-01",
            "member_number": "OHM000000001-00",
            "status": "active",
            "plan": "openhmo-silver-hmo",
            "service_types": ["30"],
        }
    ]
    out = answer(report, "271")
    valid(out)
    segs = segments(out)
    assert of(segs, "BHT") == [["BHT", "0022", "11", "ELIG0001", "20260601", "0930"]]
    ada = ["NM1", "IL", "1", "OKAFOR", "ADA", "", "", "", "MI", "OHM000000001-00"]
    assert of(segs, "NM1")[2] == ada
    assert ["DMG", "D8", "19850214", "F"] in segs
    assert ["DTP", "346", "D8", "20260101"] in segs
    eb = of(segs, "EB")
    assert eb[0] == ["EB", "1", "FAM", "30", "HM", "OPENHMO SILVER HMO"]
    assert ["EB", "L"] in eb
    assert ["NM1", "P3", "1", "WELBY", "PAT", "", "", "", "XX", NPI["pcp"]] in segs
    limits = {(s[1], s[2], s[6]): s[7] for s in eb if s[1] in ("C", "G")}
    assert limits == {
        ("C", "IND", "23"): "500",
        ("C", "IND", "29"): "200",
        ("C", "FAM", "23"): "1000",
        ("C", "FAM", "29"): "700",
        ("G", "IND", "23"): "6000",
        ("G", "IND", "29"): "5700",
        ("G", "FAM", "23"): "12000",
        ("G", "FAM", "29"): "11675",
    }
    copays = {t: (s[7], s[11]) for s in eb if s[1] == "B" for t in s[3].split("^")}
    assert copays["98"] == ("25", "")  # PCP office visit
    assert copays["3"] == ("50", "Y")  # specialist, on the PCP's referral
    assert copays["86"] == ("300", "")  # emergency room
    assert copays["UC"] == ("50", "")  # urgent care
    assert copays["BZ"] == ("0", "")  # preventive care
    coinsurance = {t: s[8] for s in eb if s[1] == "A" for t in s[3].split("^")}
    assert coinsurance["69"] == "0.2"  # maternity: 20% after the deductible
    # Visit limits: rehabilitation 30 visits, chiropractic 12, skilled nursing 100 days.
    limited = {t: (s[6], s[9], s[10]) for s in eb if s[1] == "F" for t in s[3].split("^")}
    assert limited == {
        "A9": ("23", "VS", "30"),
        "33": ("23", "VS", "12"),
        "AG": ("23", "DY", "100"),
    }
    # The disclosure is audited.
    reads = session.scalars(select(PhiAccess).where(PhiAccess.member_id == m["Ada"].id)).all()
    assert any("270" in r.purpose for r in reads)


def test_a_dependent_is_answered_as_the_subscriber_with_their_own_number(world, tmp_path):
    engine, _, _ = world
    report = ingest(engine, DATA / "eligibility-dependent.270", tmp_path)
    (ts,) = report.sets
    (applied,) = ts.applied
    assert applied["member_number"] == "OHM000000001-02"
    assert applied["service_types"] == ["98", "UC", "86"]
    assert applied["date"] == "2026-06-01"  # no DTP*291: the day the file is read
    out = answer(report, "271")
    valid(out)
    segs = segments(out)
    assert ["HL", "3", "2", "22", "0"] in segs
    assert of(segs, "TRN") == [["TRN", "2", "ELIG0002-1", "9877281234"]]
    assert ["NM1", "IL", "1", "OKAFOR", "KID0", "", "", "", "MI", "OHM000000001-02"] in segs
    eb = of(segs, "EB")
    assert ["EB", "1", "", "98^UC^86", "HM"] in eb
    priced = sorted(t for s in eb if s[1] in ("A", "B", "I", "F") for t in s[3].split("^"))
    assert priced == ["3", "86", "98", "UC"]  # 98 answers for office visits, PCP and specialist


def test_a_date_outside_coverage_is_inactive(world, tmp_path):
    engine, _, _ = world
    report = ingest(engine, DATA / "eligibility-outside-coverage.270", tmp_path)
    (applied,) = report.sets[0].applied
    assert (applied["status"], applied["date"]) == ("inactive", "2025-12-15")
    out = answer(report, "271")
    valid(out)
    segs = segments(out)
    assert of(segs, "EB") == [["EB", "6", "", "30"]]
    assert ["DTP", "356", "D8", "20260101"] in segs  # eligibility begins


def test_members_not_found_and_broken_inquiries_get_aaa(world, tmp_path):
    engine, _, _ = world
    report = ingest(engine, DATA / "eligibility-not-found.270", tmp_path)
    (ts,) = report.sets
    assert ts.status == "E"  # the bad birth date, in the 999; the others are answered
    assert ts.applied == []
    assert [(r["trace"], r["status"]) for r in ts.rejected] == [
        ("ELIG0004-1", "AAA:75:C"),
        ("ELIG0004-2", "AAA:58:C"),
        ("ELIG0004-3", "AAA:77:C"),
        ("ELIG0004-4", "AAA:72:C"),
        ("ELIG0004-5", "AAA:71:C"),
    ]
    bad_date = ts.rejected[1]["reasons"][0]
    assert "line 17" in bad_date and "element DMG02" in bad_date and "not a date" in bad_date
    assert "ZED" in ts.rejected[2]["reasons"][0]
    assert "element DMG02: DMG02 19850215: not the birth date" in ts.rejected[4]["reasons"][0]
    ack = answer(report, "999").read_text()
    assert "IK3*DMG*15" in ack and "IK4*2**8*19851340" in ack
    out = answer(report, "271")
    valid(out)
    segs = segments(out)
    assert of(segs, "AAA") == [
        ["AAA", "Y", "", "75", "C"],
        ["AAA", "N", "", "58", "C"],
        ["AAA", "Y", "", "77", "C"],
        ["AAA", "N", "", "72", "C"],
        ["AAA", "Y", "", "71", "C"],
    ]
    # The dependent not found is answered in her own loop, under the subscriber as sent.
    assert ["NM1", "03", "1", "OKAFOR", "ZED"] in segs
    assert of(segs, "EB") == []


# --- 278 -> 278 --------------------------------------------------------------------------------


def test_a_pcp_referral_to_an_in_network_specialist_is_approved(world, tmp_path):
    engine, _, m = world
    report = ingest(engine, DATA / "referral-approved.278", tmp_path)
    (ts,) = report.sets
    assert ts.status == "A" and ts.rejected == []
    (applied,) = ts.applied
    number = applied["referral_number"]
    assert applied | {"referral_number": None} == {
        "trace": "REF0001",
        "member": "OHM000000001-00",
        "action": "A1",
        "referral_number": None,
        "status": "approved",
        "visits": 3,
        "valid_from": "2026-06-15",
        "valid_to": "2026-09-15",
    }
    with session_factory(engine)() as fresh:
        referral = fresh.scalar(select(Referral).where(Referral.referral_number == number))
        assert referral.member_id == m["Ada"].id
        assert referral.status == "approved" and referral.source == "x12-278"
        assert referral.visits == 3
        assert (referral.valid_from, referral.valid_to) == (date(2026, 6, 15), date(2026, 9, 15))
        assert referral.diagnosis_codes == ["I209", "R0789"]
        assert referral.category == "specialist_visit"
        npis = {
            p.id: p.npi
            for p in fresh.scalars(select(Provider).where(Provider.npi.in_(NPI.values())))
        }
        assert npis[referral.referring_provider_id] == NPI["pcp"]
        assert npis[referral.specialist_provider_id] == NPI["cardio"]
    out = answer(report, "278")
    valid(out)
    segs = segments(out)
    assert of(segs, "BHT") == [["BHT", "0007", "11", "REF0001", "20260601", "0930"]]
    assert of(segs, "HCR") == [["HCR", "A1", number]]
    assert of(segs, "TRN") == [["TRN", "2", "REF0001", "9012345678"]]
    assert ["UM", "SC", "I", "3", "11:B"] in segs
    assert ["DTP", "007", "D8", "20260615"] in segs and ["DTP", "036", "D8", "20260915"] in segs
    assert ["HSD", "VS", "3"] in segs
    assert ["NM1", "SJ", "1", "HEART", "PAT", "", "", "", "XX", NPI["cardio"]] in segs
    # Sent again: the same referral, not a second one.
    again = ingest(engine, DATA / "referral-approved.278", tmp_path / "again")
    assert again.sets[0].applied[0]["referral_number"] == number
    with session_factory(engine)() as fresh:
        assert fresh.scalar(select(func.count()).select_from(Referral)) == 1


def test_a_referral_to_a_reviewed_specialty_is_pended(world, tmp_path):
    engine, _, m = world
    report = ingest(engine, DATA / "referral-pended.278", tmp_path)
    (applied,) = report.sets[0].applied
    assert (applied["action"], applied["status"], applied["visits"]) == ("A4", "requested", 2)
    with session_factory(engine)() as fresh:
        referral = fresh.scalar(
            select(Referral).where(Referral.referral_number == applied["referral_number"])
        )
        assert referral.member_id == m["Kid0"].id  # the dependent, found by name and birth
        assert "orthopaedic" in referral.status_reason.lower()
    out = answer(report, "278")
    valid(out)
    segs = segments(out)
    assert of(segs, "HCR") == [["HCR", "A4", applied["referral_number"], "0W"]]
    assert ["HL", "4", "3", "23", "1"] in segs and ["NM1", "QC", "1", "OKAFOR", "KID0"] in segs
    assert of(segs, "HSD") == []  # nothing certified yet


def test_referrals_denied_with_a_reason(world, tmp_path):
    engine, _, _ = world
    report = ingest(engine, DATA / "referral-denied.278", tmp_path)
    outside, not_pcp = report.sets
    assert [s.applied for s in report.sets] == [[], []]
    (a,) = outside.rejected
    assert a["status"] == "A3:09"
    assert "element NM109" in a["reasons"][0] and "not in the network" in a["reasons"][0]
    (b,) = not_pcp.rejected
    assert b["status"] == "A3:0E"
    assert "PCP" in b["reasons"][0]
    with session_factory(engine)() as fresh:
        assert fresh.scalar(select(func.count()).select_from(Referral)) == 0
    out = answer(report, "278")
    valid(out)
    segs = segments(out)
    assert of(segs, "HCR") == [["HCR", "A3", "", "09"], ["HCR", "A3", "", "0E"]]
    assert len(of(segs, "ST")) == 2


def test_a_broken_referral_request_is_rejected_with_where_and_why(world, tmp_path):
    engine, _, _ = world
    report = ingest(engine, DATA / "referral-broken.278", tmp_path)
    broken, stranger = report.sets
    assert broken.status == "E"
    (r,) = broken.rejected
    assert r["status"] == "AAA:57:C"
    assert [x.split(": ", 1)[0].rsplit(", ", 1)[-1] for x in r["reasons"]] == [
        "element DTP03",
        "element HI01",
    ]
    assert "segment 15 (DTP, position 13" in r["reasons"][0]
    (s,) = stranger.rejected
    assert s["status"] == "AAA:75:C"
    assert "not a member" in s["reasons"][0]
    ack = answer(report, "999").read_text()
    assert "IK3*DTP*13" in ack and "IK3*HI*14" in ack
    out = answer(report, "278")
    valid(out)
    segs = segments(out)
    assert of(segs, "AAA") == [["AAA", "N", "", "57", "C"], ["AAA", "Y", "", "75", "C"]]
    assert of(segs, "HCR") == []
    with session_factory(engine)() as fresh:
        assert fresh.scalar(select(func.count()).select_from(Referral)) == 0
    # The report on disk says the same.
    saved = json.loads((tmp_path / "referral-broken.278.report.json").read_text())
    assert saved["sets"][0]["rejected"][0]["reasons"] == r["reasons"]


def test_a_requester_we_do_not_know_is_answered_in_its_own_loop(world, tmp_path):
    engine, _, _ = world
    path = tmp_path / "unknown-requester.278"
    text = (DATA / "referral-approved.278").read_text()
    path.write_text(text.replace("XX*1900000013", "XX*1900000054"))
    report = ingest(engine, path, tmp_path / "out")
    (rejected,) = report.sets[0].rejected
    assert rejected["status"] == "AAA:51:C"
    assert "element NM109" in rejected["reasons"][0] and "1900000054" in rejected["reasons"][0]
    out = answer(report, "278")
    valid(out)
    segs = segments(out)
    requester = segs.index(["NM1", "1P", "1", "WELBY", "MARCUS", "", "", "", "XX", "1900000054"])
    assert segs[requester + 1] == ["AAA", "Y", "", "51", "C"]


@pytest.mark.parametrize(
    ("source", "old", "new", "segment"),
    [
        # the information receiver without an identifier: nobody to answer
        ("eligibility-subscriber.270", "MARCUS****XX*1900000013~", "MARCUS~", "NM1"),
        # a request category that is not one: nothing to decide
        ("referral-approved.278", "UM*SC*I*", "UM*ZZ*I*", "UM"),
    ],
)
def test_a_set_broken_above_the_patient_is_rejected_by_the_999_alone(
    world, tmp_path, source, old, new, segment
):
    engine, _, _ = world
    path = tmp_path / f"broken-{source}"
    path.write_text((DATA / source).read_text().replace(old, new))
    report = ingest(engine, path, tmp_path / "out")
    (ts,) = report.sets
    assert ts.status == "R" and ts.applied == ts.rejected == []
    assert not [o for o in report.outputs if o.endswith((".271", ".278"))]
    ack = answer(report, "999")
    assert f"IK3*{segment}*" in ack.read_text() and "IK5*R" in ack.read_text()
    valid(ack)
    with session_factory(engine)() as fresh:
        assert fresh.scalar(select(func.count()).select_from(Referral)) == 0


def test_a_ppo_couple_has_both_network_tiers_and_an_aggregate_deductible(world, tmp_path):
    engine, session, _ = world
    coverage = family(session, plan_key="openhmo-gold-ppo", children=0)
    number = session.get(Member, coverage.subscriber_id).member_number
    path = tmp_path / "ppo.270"
    path.write_text(
        (DATA / "eligibility-subscriber.270").read_text().replace("OHM000000001-00", number)
    )
    report = ingest(engine, path, tmp_path / "out")
    out = answer(report, "271")
    valid(out)
    eb = of(segments(out), "EB")
    assert eb[0] == ["EB", "1", "ESP", "30", "PR", "OPENHMO GOLD PPO"]
    assert ["EB", "L"] not in eb  # a PPO member has no PCP
    limits = {(s[1], s[2], s[12], s[6]): s[7] for s in eb if s[1] in ("C", "G")}
    # In network the deductible is embedded (IND and FAM); out of network it is aggregate
    # (FAM only). The out-of-pocket maximum is always embedded.
    assert limits == {
        ("C", "IND", "Y", "23"): "1500",
        ("C", "IND", "Y", "29"): "1500",
        ("C", "FAM", "Y", "23"): "3000",
        ("C", "FAM", "Y", "29"): "3000",
        ("G", "IND", "Y", "23"): "7500",
        ("G", "IND", "Y", "29"): "7500",
        ("G", "FAM", "Y", "23"): "15000",
        ("G", "FAM", "Y", "29"): "15000",
        ("C", "FAM", "N", "23"): "6000",
        ("C", "FAM", "N", "29"): "6000",
        ("G", "IND", "N", "23"): "15000",
        ("G", "IND", "N", "29"): "15000",
        ("G", "FAM", "N", "23"): "30000",
        ("G", "FAM", "N", "29"): "30000",
    }
    # Drugs are not covered out of network; in network the PCP visit is a $30 copay and
    # out of network 50% coinsurance.
    assert ["EB", "I", "", "GF^B2^B3", "PR", "", "", "", "", "", "", "", "N"] in eb
    assert ["EB", "B", "", "98^BV^MH", "PR", "", "27", "30", "", "", "", "", "Y"] in eb
    assert any(
        s[1] == "A" and "98" in s[3].split("^") and s[8:] == ["0.5", "", "", "", "N"] for s in eb
    )
