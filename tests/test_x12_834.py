"""834 enrollment intake: the reader on the public corpus, the shell on SQLite and PostgreSQL.

The corpus files (linuxforhealth, pyx12) are read from the shared corpus, never copied
here; the hand-written files in tests/data/x12 carry a family through additions, changes,
terminations and reinstatements, with bad members beside good ones.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from openhmo.enrollment.maintenance import (
    EnrollmentSets,
    MaintenanceReport,
    ingest_834,
    load_plan_map,
)
from openhmo.enrollment.models import Coverage, Member, MemberAddress, MemberCoverage
from openhmo.enrollment.pcp import pcp_of
from openhmo.enrollment.service import change_address
from openhmo.history.models import ChangeRecord
from openhmo.interop.x12.enrollment834 import MemberMaintenance, collect
from openhmo.interop.x12.envelope import read_file
from openhmo.network.models import Provider
from openhmo.plans.design import ServiceArea
from openhmo.plans.loader import example_designs, load_design
from openhmo.plans.store import save_design
from support import ACTOR, NEW_YORK, family, load_examples, provider

DATA = Path(__file__).parent / "data" / "x12"
WELBY, HOUSE = "1900000013", "1900000021"  # the NPIs the hand-written files name
# How the corpus's coverage lines map onto the test plans (see maintenance's docstring).
CORPUS_PLANS = {"HMO": "prairie-hmo", "PPO": "openhmo-gold-ppo", "HLT": "openhmo-gold-ppo"}
CORPUS_PLANS |= {"DEN": None, "VIS": None, "AK": None}


@pytest.fixture(scope="module")
def x12(corpus) -> Path:
    path = corpus / "x12"
    if not (path / "linuxforhealth").is_dir() or not (path / "pyx12").is_dir():
        pytest.skip(f"the X12 corpus is not at {path} (linuxforhealth/ and pyx12/)")
    return path


def corpus_834s(x12: Path) -> list[Path]:
    lfh = sorted((x12 / "linuxforhealth").glob("834_*"))
    pyx = sorted((x12 / "pyx12").glob("834_*.txt"))
    return (
        lfh + pyx + [x12 / "pyx12" / "example834_5010.txt", x12 / "pyx12" / "multiple_st_loops.txt"]
    )


def got(thing: object, names: str) -> tuple:
    """The attributes of `thing` named in `names`, in order: one tuple to compare."""
    return tuple(getattr(thing, name) for name in names.split())


def read(path: Path) -> tuple[list, list[MemberMaintenance]]:
    records: list[MemberMaintenance] = []
    done = read_file(path, {"834": collect(records)})
    return list(done.sets()), records


# -- the reader, on the corpus ----------------------------------------------------------
def test_every_corpus_834_is_read_without_a_crash(x12):
    files = corpus_834s(x12)
    names = {p.name for p in files}
    assert len(files) >= 18 and "834_005010X220A1__add-dependent.834" in names
    assert {"834_deident_family.txt", "834_ls_le_ls.txt", "multiple_st_loops.txt"} <= names
    for path in files:
        sets, records = read(path)
        assert sets, path.name
        if ".999." in path.name:  # acknowledgments of 834s, not 834s: refused as a set
            assert records == [] and {s.status for s in sets} == {"R"}
            continue
        assert records, path.name
        for record in records:
            assert record.maintenance in (
                "addition",
                "change",
                "termination",
                "reinstatement",
                "audit",
            )
            assert record.subscriber_id and record.last_name, path.name


def test_a_family_of_the_corpus_is_mapped_field_by_field(x12):
    sets, records = read(x12 / "pyx12" / "834_deident_family.txt")
    header = sets[0].result.header
    assert (header.sponsor_name, header.sponsor_id) == ("WIDGET CORPORATION", "234567891")
    assert got(header, "payer_name reference created") == (
        "CAREPLUS HEALTH PLAN",
        "20260401-002",
        date(2026, 4, 1),
    )
    robert, mary, michael = records
    assert got(robert, "subscriber relationship maintenance reason") == (
        True,
        "18",
        "addition",
        "XN",
    )
    assert got(robert, "subscriber_id group_policy employment_status") == (
        "M000002",
        "GRP002",
        "FT",
    )
    assert got(robert, "first_name last_name birth_date sex") == (
        "ROBERT",
        "SMITH",
        date(1975, 8, 20),
        "M",
    )
    assert got(robert.address, "line1 city state zip5") == (
        "200 OAK AVE",
        "RIVERSIDE",
        "CA",
        "92501",
    )
    assert robert.eligibility_begin == date(2026, 4, 1)
    (hd,) = robert.coverages
    assert got(hd, "maintenance_type insurance_line coverage_level begin") == (
        "021",
        "PPO",
        "FAM",
        date(2026, 4, 1),
    )
    # Where the values came from: REF*0F is segment 6 of the set (ST is 1), element 2, on
    # line 8 of the file.
    src = robert.sources["subscriber_id"]
    assert got(src, "segment position element line") == ("REF", 6, 2, 8)
    assert (hd.sources["insurance_line"].position, hd.sources["begin"].position) == (13, 14)
    assert got(mary, "subscriber relationship first_name birth_date sex") == (
        False,
        "01",
        "MARY",
        date(1977, 3, 3),
        "F",
    )
    assert got(michael, "relationship subscriber_id coverages") == ("19", "M000004", [])
    assert all(not r.problems for r in records)


def test_terminations_audits_and_reporting_categories_of_the_corpus(x12):
    _, (patricia, thomas) = read(x12 / "pyx12" / "834_deident_term.txt")
    assert got(patricia, "maintenance eligibility_begin eligibility_end") == (
        "termination",
        date(2021, 1, 1),
        date(2026, 3, 31),
    )
    assert got(patricia.coverages[0], "maintenance_type end") == ("024", date(2026, 3, 31))
    assert got(thomas, "first_name subscriber_id position") == ("THOMAS", "M000011", 16)

    # A corrected name (NM1*74), the incorrect one (NM1*70), and an LS/LE loop whose LX
    # are reporting categories, not providers.
    _, (member,) = read(x12 / "pyx12" / "834_ls_le_ls.txt")
    assert got(member, "name_entity first_name last_name") == (
        "74",
        "SUBSCRIBER FIRST 1",
        "SUBSCRIBER LAST 1",
    )
    assert got(member, "previous_first_name previous_last_name") == ("FIRST", "INCORRECT")
    assert member.identifiers == {"23": "REF 23", "3H": "REF 3H", "F6": "REF F6"}
    assert member.member_identifier == "REF 23"
    assert got(member.address, "zip5 county_code") == ("97526", "033")
    assert member.eligibility_end == date(2013, 3, 31)
    (hd,) = member.coverages
    assert got(hd, "insurance_line plan_description coverage_level") == (
        "HMO",
        "12345678902012062020130415N",
        "IND",
    )
    assert hd.references == {"17": "D4"} and hd.providers == []
    assert member.problems == []

    sets, records = read(x12 / "pyx12" / "multiple_st_loops.txt")
    assert [s.control for s in sets] == ["0001", "0002", "0003", "0004"]
    assert [(r.set_control, r.maintenance, r.subscriber_id) for r in records] == [
        (c, "audit", "00389999") for c in ("0001", "0002", "0003", "0004")
    ]
    assert sets[0].result.header.action == "4"  # verify: compare only
    assert records[0].coverages[0].plan_description == "064703"


def test_the_corpus_pcp_and_element_problems_are_kept_per_member(x12):
    lfh = x12 / "linuxforhealth"
    _, (smith,) = read(lfh / "834_005010X220A1__enroll-employee-managed-care.834")
    (pcp,) = smith.coverages[0].providers
    assert got(pcp, "entity last_name id_qualifier id_code relationship") == (
        "P3",
        "BROWN",
        "SV",
        "143766",
        "25",
    )
    assert pcp.npi is None  # SV is the sponsor's provider number, not an NPI
    (problem,) = smith.problems
    assert got(problem, "segment position element element_code") == ("DTP", 8, 1, "7")
    assert "'358'" in problem.reason

    _, (doe,) = read(lfh / "834_005010X220A1__enroll-employee-multiple-products.834")
    assert [c.insurance_line for c in doe.coverages] == ["HLT", "VIS"]
    assert got(doe.address, "line2 county_code") == ("APT 30", "CUMBERLAND")
    assert doe.contacts == [("HP", "7172343334"), ("WP", "7172341240")]

    _, (changed,) = read(lfh / "834_005010X220A1__change-subscriber-information.834")
    assert got(changed, "reason birth_date previous_birth_date") == (
        "25",
        date(1950, 4, 15),
        date(1950, 4, 16),
    )

    # INS01 Y (the subscriber) with INS02 19 (child) breaks the guide's rule.
    _, (term,) = read(lfh / "834_005010X220A1__terminate-subscriber-eligibility.834")
    assert [(p.segment, p.position, p.element) for p in term.problems] == [("INS", 5, 2)]

    # Trailing blanks in INS06-1 ("C   ") make it too long: the member is refused, not the set.
    sets, (audit,) = read(x12 / "pyx12" / "example834_5010.txt")
    assert sets[0].status == "E"
    (problem,) = audit.problems
    assert got(problem, "segment position element component") == ("INS", 6, 6, 1)


# -- the shell, on the corpus --------------------------------------------------------------
@pytest.fixture
def plans(session):
    load_examples(session)
    hmo = next(load_design(p) for p in example_designs() if p.stem == "hmo-silver")
    prairie = hmo.model_copy(
        update={
            "id": "prairie-hmo",
            "name": "Prairie HMO",
            "service_area": ServiceArea(counties=["Sangamon County, IL"]),
        }
    )
    save_design(session, prairie, source="test", actor=ACTOR)
    session.commit()
    return session


def ingest(session, path: Path, **kwargs) -> MaintenanceReport:
    _read, report = ingest_834(session, path, actor=ACTOR, **kwargs)
    session.commit()
    return report


def test_the_corpus_is_applied_mapped_plans_enrolled_the_rest_reported(plans, x12):
    session = plans
    reports = {p.name: ingest(session, p, plan_map=CORPUS_PLANS) for p in corpus_834s(x12)}

    new = reports["834_deident_new_enroll.txt"]
    (jane,) = new.outcomes
    assert jane.status == "applied", jane.problems
    assert jane.applied[0] == f"enrolled {jane.member_number} in prairie-hmo from 2026-04-01"
    assert jane.notes == [f"{jane.member_number} has no PCP yet: auto-assignment will choose"]
    member = session.scalar(select(Member).where(Member.member_number == jane.member_number))
    assert got(member, "first_name external_id birth_date") == (
        "JANE",
        "M000001",
        date(1980, 5, 15),
    )

    robert, mary, michael = reports["834_deident_family.txt"].outcomes
    assert robert.status == "applied" and "openhmo-gold-ppo" in robert.applied[0]
    assert any("HD05 FAM" in n and "self_only" in n for n in robert.notes)
    # The dependents carry their own ids in REF*0F, which the guide reserves for the
    # subscriber's: no subscriber M000003 exists, so they are refused, saying where.
    assert mary.status == michael.status == "rejected"
    (problem,) = mary.problems
    assert got(problem, "segment position element") == ("REF", 16, 2)
    assert "REF*0F 'M000003' names no subscriber" in problem.reason

    for outcome in reports["834_deident_term.txt"].outcomes:
        assert outcome.status == "rejected" and "names no subscriber" in outcome.problems[0].reason

    products = reports["834_005010X220A1__enroll-employee-multiple-products.834"].outcomes[0]
    assert products.status == "rejected"
    assert "has no plan year on 1996-06-01" in products.problems[0].reason
    assert got(products.problems[0], "segment position") == ("DTP", 15)
    assert any("VIS" in n and "skipped" in n for n in products.notes)

    managed = reports["834_005010X220A1__enroll-employee-managed-care.834"].outcomes[0]
    assert managed.status == "rejected" and "'358'" in managed.problems[0].reason

    dependent = reports["834_005010X220A1__add-dependent.834"].outcomes[0]
    assert "REF*0F '123456789' names no subscriber" in dependent.problems[0].reason

    audit = reports["multiple_st_loops.txt"]
    assert len(audit.outcomes) == 4 and all(o.status == "rejected" for o in audit.outcomes)
    for name in ("834_ls_le_ls_5010.999.txt", "834_lui_id_5010.999.txt"):
        assert reports[name].outcomes == [] and "not applied" in reports[name].set_problems[0]

    assert session.scalar(select(func.count()).select_from(Member)) == 2
    assert sum(len(r.with_status("applied")) for r in reports.values()) == 2


def test_an_unknown_plan_and_a_plan_map_that_names_no_plan_are_reported(plans, x12):
    path = x12 / "pyx12" / "834_deident_new_enroll.txt"
    (outcome,) = ingest(plans, path).outcomes
    assert outcome.status == "rejected"
    (problem,) = outcome.problems
    assert got(problem, "segment position element") == ("HD", 14, 3)
    assert "HD03 'HMO'" in problem.reason and "no plan" in problem.reason
    (outcome,) = ingest(plans, path, plan_map={"HMO": "no-such-plan"}).outcomes
    assert "'no-such-plan', which is no plan" in outcome.problems[0].reason
    # HD03 says HMO: a map onto a PPO is a mapping mistake, not applied.
    (outcome,) = ingest(plans, path, plan_map={"HMO": "openhmo-gold-ppo"}).outcomes
    assert "HD03 HMO" in outcome.problems[0].reason and "a PPO" in outcome.problems[0].reason


# -- the shell, on the hand-written files ---------------------------------------------------
@pytest.fixture
def acme(plans):
    session = plans
    for last_name, npi in (("Welby", WELBY), ("House", HOUSE)):
        doctor = provider(session, last_name=last_name)
        doctor.npi = npi
    session.commit()
    return session


def by_name(report: MaintenanceReport) -> dict[str, object]:
    return {o.name: o for o in report.outcomes}


def member(session, first_name: str) -> Member:
    return session.scalar(select(Member).where(Member.first_name == first_name))


def actions(session, who: Member) -> list[str]:
    rows = session.scalars(
        select(ChangeRecord.action)
        .where(ChangeRecord.member_id == who.id)
        .order_by(ChangeRecord.id)
    )
    return list(rows)


def test_additions_apply_the_good_members_and_report_the_bad_ones(acme):
    session = acme
    report = ingest(session, DATA / "additions.834")
    out = by_name(report)
    applied, rejected = ["applied"] * 3, ["rejected"] * 4
    assert [o.status for o in report.outcomes] == [*applied, *rejected, "applied"]
    ada, sam, kemi = member(session, "ADA"), member(session, "SAM"), member(session, "KEMI")
    assert out["ADA OKAFOR"].applied == [
        f"enrolled {ada.member_number} in openhmo-silver-hmo from 2026-01-01",
        f"PCP of {ada.member_number}: Pat Welby, MD (NPI {WELBY}) from 2026-01-01",
    ]
    assert sam.member_number == ada.member_number[:-3] + "-01" and sam.relationship_code == "spouse"
    assert kemi.relationship_code == "child" and kemi.subscriber_id == ada.id
    assert [m.external_id for m in (ada, sam, kemi)] == ["ACME1001", "ACME1001-01", "ACME1001-02"]
    coverage = session.scalar(select(Coverage).where(Coverage.subscriber_id == ada.id))
    assert coverage.tier == "family" and out["ADA OKAFOR"].notes == []  # HD05 FAM agrees
    welby = session.scalar(select(Provider.id).where(Provider.npi == WELBY))
    for who in (ada, sam, kemi):
        assert pcp_of(session, who, date(2026, 1, 1)).provider_id == welby
    assert actions(session, ada) == ["enrolled", "pcp_chosen"]
    assert actions(session, sam) == ["enrolled", "pcp_chosen"]
    lin = member(session, "LIN")
    assert "openhmo-gold-ppo" in out["LIN CHEN"].applied[0]  # found by REF*CE

    # The bad ones: each says the segment position, the element and why.
    (unknown,) = out["KEN NAKAMURA"].problems
    assert got(unknown, "segment position element") == ("HD", 44, 4)
    assert "HD04 'PLATINUM-DELUXE'" in unknown.reason
    (orphan,) = out["NORA NOBODY"].problems
    assert got(orphan, "segment position element") == ("REF", 47, 2)
    assert "REF*0F 'ACME9999' names no subscriber" in orphan.reason
    (bad_date,) = out["ANA SILVA"].problems
    assert got(bad_date, "segment position element element_code") == ("DTP", 58, 3, "8")
    (nameless,) = out[""].problems
    assert got(nameless, "segment position code") == ("NM1", 59, "3")
    assert "NM1*IL" in nameless.reason
    assert {m.first_name for m in session.scalars(select(Member))} == {"ADA", "SAM", "KEMI", "LIN"}
    assert lin.subscriber_id == lin.id


def test_changes_move_the_household_change_a_pcp_and_correct_a_name(acme):
    session = acme
    ingest(session, DATA / "additions.834")
    report = ingest(session, DATA / "changes.834")
    out = by_name(report)
    ada, kemi = member(session, "ADA"), member(session, "KEMI")
    samuel = member(session, "SAMUEL")

    assert out["ADA OKAFOR"].status == "applied"
    homes = session.scalars(
        select(MemberAddress).where(MemberAddress.member_id == ada.id).order_by(MemberAddress.id)
    ).all()
    assert [(a.zip_code, a.effective_from, a.effective_to) for a in homes] == [
        ("02108", date(2026, 1, 1), date(2026, 3, 14)),
        ("02138", date(2026, 3, 15), None),
    ]
    moved = session.scalars(
        select(ChangeRecord).where(ChangeRecord.action == "address_changed")
    ).all()
    assert len(moved) == 3  # the household moves with the subscriber
    assert moved[0].reason == "834 change from ACME WIDGETS (ACME-2026-03B): change of location"

    # The PCP change takes effect as the plan says: the first of the month after the file.
    assert out["KEMI OKAFOR"].applied == [
        f"PCP of {kemi.member_number}: Pat House, MD (NPI {HOUSE}) from 2026-04-01"
    ]
    assert (
        pcp_of(session, kemi, date(2026, 3, 31)).provider_id
        != pcp_of(session, kemi, date(2026, 4, 1)).provider_id
    )
    assert actions(session, kemi)[-2:] == ["pcp_ended", "pcp_chosen"]

    # Found by the incorrect name (NM1*70), renamed to the corrected one (NM1*74).
    assert samuel is not None and member(session, "SAM") is None
    details = session.scalar(
        select(ChangeRecord).where(ChangeRecord.action == "member_details_changed")
    )
    assert details.changes == {"first_name": ["SAM", "SAMUEL"]}
    assert details.member_id == samuel.id and details.effective_date == date(2026, 3, 10)

    (ghost,) = out["GUS GHOST"].problems
    assert got(ghost, "segment position element") == ("REF", 26, 2)


def test_a_termination_and_a_reinstatement_go_to_the_history(acme):
    session = acme
    for name in ("additions.834", "changes.834"):
        ingest(session, DATA / name)
    report = ingest(session, DATA / "terminations.834")
    assert [o.status for o in report.outcomes] == ["applied", "applied"]
    samuel, lin = member(session, "SAMUEL"), member(session, "LIN")
    span = session.scalar(select(MemberCoverage).where(MemberCoverage.member_id == samuel.id))
    assert got(span, "termination_date termination_reason") == (
        date(2026, 4, 30),
        "sponsor: termination of benefits",
    )
    coverage = span.coverage
    assert coverage.tier == "self_plus_children" and coverage.termination_date is None
    ppo = session.scalar(select(Coverage).where(Coverage.subscriber_id == lin.id))
    assert got(ppo, "termination_date termination_reason") == (
        date(2026, 5, 31),
        "sponsor: termination of employment",
    )

    report = ingest(session, DATA / "reinstatements.834")
    out = by_name(report)
    assert out["SAMUEL OKAFOR"].applied == [f"reinstated from 2026-05-01: {samuel.member_number}"]
    session.refresh(span)
    assert span.termination_date is None and span.termination_reason is None
    assert coverage.tier == "family"
    assert actions(session, samuel)[-2:] == ["eligibility_ended", "eligibility_reinstated"]
    tiers = session.scalars(
        select(ChangeRecord.changes)
        .where(ChangeRecord.action == "tier_changed")
        .order_by(ChangeRecord.id)
    ).all()
    assert [t["tier"] for t in tiers[-2:]] == [
        ["family", "self_plus_children"],
        ["self_plus_children", "family"],
    ]
    (nothing,) = out["KEMI OKAFOR"].problems
    assert "nothing to reinstate" in nothing.reason and nothing.position == 10
    # The subscriber: the coverage and every span the termination ended resume.
    assert out["LIN CHEN"].applied == [f"reinstated from 2026-06-01: {lin.member_number}"]
    session.refresh(ppo)
    assert ppo.termination_date is None and ppo.termination_reason is None
    assert actions(session, lin)[-3:] == [
        "coverage_terminated",
        "coverage_reinstated",
        "eligibility_reinstated",
    ]
    reopened = session.scalar(
        select(ChangeRecord).where(ChangeRecord.action == "coverage_reinstated")
    )
    assert reopened.changes == {"termination_date": ["2026-05-31", None]}
    assert reopened.effective_date == date(2026, 6, 1) and reopened.actor == ACTOR


def test_an_834_does_not_reinstate_what_the_plan_rules_ended(acme):
    session = acme
    coverage = family(session, children=0, spouse=False)
    ada = session.get(Member, coverage.subscriber_id)
    change_address(session, member=ada, address=NEW_YORK, effective=date(2026, 2, 10), actor=ACTOR)
    session.commit()
    # REF*0F may be our member number.
    body = [
        "BGN*00*R1*20260301*0900****2",
        "N1*P5*ACME WIDGETS*FI*123456789",
        "N1*IN*OPENHMO*FI*987654321",
        "INS*Y*18*025*41*A***FT",
        f"REF*0F*{ada.member_number}",
        "NM1*IL*1*Okafor*Ada",
    ]
    _read, report = ingest_834(session, io.BytesIO(envelope(body)), actor=ACTOR, name="inline.834")
    (outcome,) = report.outcomes
    assert outcome.status == "rejected" and outcome.member_number == ada.member_number
    assert "moved_out_of_service_area" in outcome.problems[0].reason
    assert "reinstates only what a sponsor ended" in outcome.problems[0].reason


def test_a_broken_header_rejects_the_set_and_applies_nothing(acme):
    session = acme
    read, report = ingest_834(session, DATA / "broken-header.834", actor=ACTOR)
    (ts,) = read.sets()
    assert ts.status == "R" and report.outcomes == []
    assert "no N1*IN" in report.set_problems[0]
    assert session.scalar(select(func.count()).select_from(Member)) == 0


def test_a_verify_file_compares_and_writes_nothing(acme):
    session = acme
    ingest(session, DATA / "additions.834")
    before = session.scalar(select(func.count()).select_from(ChangeRecord))
    text = (DATA / "changes.834").read_text().replace("****2~", "****4~", 1)
    _read, report = ingest_834(session, io.BytesIO(text.encode()), actor=ACTOR)
    out = by_name(report)
    assert out["ADA OKAFOR"].status == "compared"
    assert out["ADA OKAFOR"].notes == ["ZIP code: the 834 says 02138, OpenHMO 02108"]
    assert out["SAMUEL OKAFOR"].notes == ["name: the 834 says SAMUEL OKAFOR, OpenHMO SAM OKAFOR"]
    assert session.scalar(select(func.count()).select_from(ChangeRecord)) == before


def test_the_ingest_processor_and_a_plan_map_file(acme, tmp_path):
    session = acme
    state = EnrollmentSets()
    reports: list[SimpleNamespace] = []

    def on_set(ts):
        report = SimpleNamespace(applied=[], rejected=[])  # what ingest's SetReport collects
        state.apply(session, ts, report, None, actor=ACTOR, now=None, source="additions.834")
        reports.append(report)

    read_file(DATA / "additions.834", {"834": state.reader}, on_set=on_set)
    (report,) = reports
    assert len(report.applied) == 4 and len(report.rejected) == 4
    assert report.rejected[0]["reasons"][0].startswith("additions.834, line 46, segment 46 (HD")

    mapping = tmp_path / "plans.yaml"
    mapping.write_text("HMO: openhmo-silver-hmo\nVIS: null\n064703: prairie-hmo\n")
    assert load_plan_map(mapping) == {
        "HMO": "openhmo-silver-hmo",
        "VIS": None,
        "064703": "prairie-hmo",
    }


def envelope(body: list[str]) -> bytes:
    """An interchange around one 834 set's body segments."""
    segments = [
        "ISA*00*          *00*          *ZZ*ACMEHR         *ZZ*OPENHMO        "
        "*260301*0900*^*00501*000000900*0*T*:",
        "GS*BE*ACMEHR*OPENHMO*20260301*0900*900*X*005010X220A1",
        "ST*834*0001*005010X220A1",
        *body,
        f"SE*{len(body) + 2}*0001",
        "GE*1*900",
        "IEA*1*000000900",
    ]
    return "~\n".join(segments).encode() + b"~\n"
