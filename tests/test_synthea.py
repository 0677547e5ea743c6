"""The Synthea importer on the real sample, on a broken export, and from the command line.

The expected numbers were read off the sample's CSV files
(corpus/synthea/csv_10pt_massachusetts):
- organizations.csv and providers.csv: 47 rows each, every provider GENERAL PRACTICE;
- patients.csv: 11 patients. Line 10 (Cameron381 Reilly981) died on 2022-09-07. Lines 9
  (Christeen33 Beier427, Norwell) and 12 (Rodrigo242 Grady603, Westwood) have ZIP 00000,
  Synthea's placeholder for a town it has no ZIP for: the importer uses the town's own
  ZIP (02061, 02090) and says so in a note. All 10 live in Norfolk, Essex, Suffolk,
  Worcester, Plymouth and Middlesex counties: inside the HMO's service area;
- encounters.csv: each of those 10 had wellness or ambulatory visits, so each gets the
  provider they saw most as initial PCP, and no one is left for auto-assignment.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.cli.main import app
from openhmo.enrollment.models import (
    Coverage,
    Member,
    MemberAddress,
    MemberCoverage,
    Notice,
    PcpAssignment,
)
from openhmo.history.models import ChangeRecord
from openhmo.interop.synthea import SyntheaImportError, import_synthea, synthetic_npi
from openhmo.network.models import Contract, Location, Organization, Provider
from openhmo.network.npi import validate_npi
from openhmo.network.service import add_fee_schedule, add_provider
from openhmo.plans.models import Plan
from support import load_examples

ACTOR = "test:synthea"
PLAN = "openhmo-silver-hmo"
EFFECTIVE = date(2026, 1, 1)
MARGORIE = "515991e2-40dd-22c1-c377-e0b71ad973b9"  # patients.csv line 3
BRADLEY = "f81e15f1-086c-3608-84dc-d9d71a9f997f"  # providers.csv line 3
SOUTHWOOD = "aa682136-a4df-3942-9f50-e6fcee6c0b73"  # organizations.csv line 3
ALYSHA_KOCH = "234450fb-d93a-318d-83a2-9ecb4c6f5b58"  # Margorie's most-seen provider (21 visits)
TED = "544d7452-dca6-3de0-8405-be417812ae95"  # providers.csv line 2
ENROLLED = {  # patients.csv lines 2-9, 11 and 12
    "b37f7960-7e9e-f3f7-f891-79ae4f632406",
    MARGORIE,
    "6fc4436c-20cc-50f7-cabc-a19442b5837e",
    "9808a1c3-5354-de5f-bfe5-7fdbd39bb426",
    "4237be97-a13d-18b8-6e01-df3ee076675f",
    "7aa9e024-e01b-a999-b719-cdbc94a84250",
    "49abcfcc-8abb-9781-d49e-cab0cd9f5c40",
    "920e3c45-f754-686a-a312-a070f4258dee",
    "edcd074e-b20a-2826-ff28-4677579314b1",  # line 9, ZIP 00000 in Norwell
    "9f39bf35-ea79-4383-4eb1-36c43280dff2",  # line 12, ZIP 00000 in Westwood
}
# fmt: off
TABLES = (Organization, Provider, Location, Contract, Member, MemberAddress, Coverage,
          MemberCoverage, PcpAssignment, Notice, ChangeRecord)
# fmt: on


@pytest.fixture
def sample(corpus) -> Path:
    return corpus / "synthea" / "csv_10pt_massachusetts"


@pytest.fixture
def plans(session):
    load_examples(session)
    return session


def run(session, directory, **kwargs):
    report = import_synthea(
        session,
        directory,
        plan_key=PLAN,
        effective=EFFECTIVE,
        network_key="openhmo-core",
        actor=ACTOR,
        **kwargs,
    )
    session.commit()
    return report


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def counts(session) -> dict[str, int]:
    return {model.__name__: count(session, model) for model in TABLES}


def test_the_sample_imports_with_the_exact_numbers(plans, sample):
    session = plans
    report = run(session, sample)
    assert _numbers(report) == {
        "organizations": 47,
        "providers": 47,
        "enrolled": 10,
        "refused": 0,
        "skipped": 1,  # line 10: died in 2022
        "pcp_from_encounters": 10,
        "pcp_auto_assigned": 0,
        "pcp_none_available": 0,
    }
    assert report.already_enrolled == 0
    assert [str(s) for s in report.skips] == [
        "patients.csv, line 10, DEATHDATE: Cameron Reilly died on 2022-09-07, before coverage "
        "would start on 2026-01-01"
    ]
    assert report.rejections == []
    assert [(n.file, n.line, n.field) for n in report.notes] == [
        ("patients.csv", 9, "ZIP"),
        ("patients.csv", 12, "ZIP"),
    ]
    for note, (town, zip_code) in zip(
        report.notes, (("Norwell", "02061"), ("Westwood", "02090")), strict=True
    ):
        assert f"ZIP 00000 is Synthea's placeholder; used {zip_code}" in note.reason
        assert town in note.reason
    assert report.added == {"organization": 47, "provider": 47, "contract": 47}

    stored = counts(session)
    del stored["Location"], stored["ChangeRecord"]
    assert stored == {
        "Organization": 47,
        "Provider": 47,
        "Contract": 47,
        "Member": 10,
        "MemberAddress": 10,
        "Coverage": 10,
        "MemberCoverage": 10,
        "PcpAssignment": 10,
        "Notice": 10,
    }  # Notice: "your PCP is ..."
    assert set(session.scalars(select(Coverage.tier))) == {"self_only"}
    assert set(session.scalars(select(PcpAssignment.method))) == {"chosen"}
    assert set(session.scalars(select(Member.external_id))) == ENROLLED


def test_every_stored_npi_passes_the_check_digit_and_is_synthetic(plans, sample):
    session = plans
    run(session, sample)
    providers = session.scalars(select(Provider.npi)).all()
    organizations = session.scalars(select(Organization.npi)).all()
    for npi in providers + organizations:
        assert validate_npi(npi) == npi
    # Real NPIs begin with 1 or 2; ours cannot be mistaken for (or merged into) one.
    assert {n[0] for n in providers} == {"9"} and {n[0] for n in organizations} == {"8"}
    assert len(set(providers)) == 47 and len(set(organizations)) == 47


def fields(record, names: str) -> dict[str, object]:
    return {name: getattr(record, name) for name in names.split()}


def test_one_patient_and_one_provider_field_by_field(plans, sample):
    session = plans
    run(session, sample)
    member = session.scalar(select(Member).where(Member.external_id == MARGORIE))
    assert fields(member, "first_name last_name birth_date sex language relationship_code") == {
        "first_name": "Margorie",  # Margorie48; MAIDEN (Okuneva707) is ignored
        "last_name": "Cormier",
        "birth_date": date(1987, 4, 27),
        "sex": "F",
        "language": "en",
        "relationship_code": "self",
    }
    assert member.subscriber_id == member.id
    assert member.member_number == f"OHM{member.id:09d}-00"
    [address] = member.addresses
    assert fields(address, "line1 line2 city state zip_code county_fips effective_from") == {
        "line1": "927 Mann Track",
        "line2": None,
        "city": "Andover",
        "state": "MA",  # Massachusetts
        "zip_code": "01810",
        "county_fips": "25009",  # Essex County
        "effective_from": EFFECTIVE,
    }
    coverage = session.scalar(select(Coverage).where(Coverage.subscriber_id == member.id))
    assert session.get(Plan, coverage.plan_id).plan_key == PLAN
    assert fields(coverage, "tier effective_date termination_date") == {
        "tier": "self_only",
        "effective_date": EFFECTIVE,
        "termination_date": None,
    }
    pcp = session.scalar(select(PcpAssignment).where(PcpAssignment.member_id == member.id))
    assert fields(pcp, "method effective_from effective_to reason") == {
        "method": "chosen",
        "effective_from": EFFECTIVE,
        "effective_to": None,
        "reason": "initial PCP from Synthea encounter history: 21 wellness or ambulatory visits",
    }
    chosen = session.get(Provider, pcp.provider_id)
    assert (chosen.external_id, chosen.display_name) == (ALYSHA_KOCH, "Alysha Koch")

    provider = session.scalar(select(Provider).where(Provider.external_id == BRADLEY))
    assert synthetic_npi(BRADLEY, "provider") == "9262580472"
    assert fields(
        provider,
        "npi entity_type first_name last_name sex taxonomy_code specialty "
        "pcp_eligible pediatrics ob_gyn accepting_new_patients source",
    ) == {
        "npi": "9262580472",
        "entity_type": "individual",
        "first_name": "Bradley",  # Bradley693 Runolfsson901
        "last_name": "Runolfsson",
        "sex": "M",
        "taxonomy_code": "208D00000X",  # GENERAL PRACTICE
        "specialty": "General Practice",
        "pcp_eligible": True,
        "pediatrics": False,
        "ob_gyn": False,
        "accepting_new_patients": True,
        "source": "synthea",
    }
    assert fields(provider.organization, "name npi external_id kind source") == {
        "name": "SOUTHWOOD AT NORWELL NURSING CTR",
        "npi": "8679819390",
        "external_id": SOUTHWOOD,
        "kind": "facility",
        "source": "synthea",
    }
    [link] = provider.locations
    assert link.is_primary
    # The provider practises at the organization's own address: one shared Location.
    assert fields(
        link.location,
        "line1 city state zip_code county_fips latitude longitude phone organization_id",
    ) == {
        "line1": "501 CORDWAINER DRIVE",
        "city": "NORWELL",
        "state": "MA",
        "zip_code": "02061",  # 020611630
        "county_fips": "25023",  # Plymouth County
        "latitude": 42.1647071,
        "longitude": -70.88149077838713,
        "phone": "7819827450",
        "organization_id": provider.organization_id,
    }
    [contract] = session.scalars(select(Contract).where(Contract.provider_id == provider.id))
    assert contract.network.key == "openhmo-core"
    assert fields(contract, "effective_from effective_to fee_schedule_id arrangement source") == {
        "effective_from": EFFECTIVE,
        "effective_to": None,
        "fee_schedule_id": None,
        "arrangement": "ffs",
        "source": "synthea",
    }


def test_running_it_again_changes_nothing(plans, sample):
    session = plans
    first = run(session, sample)
    before = counts(session)
    again = run(session, sample)
    assert counts(session) == before  # no duplicates, and not even a history entry
    assert (again.organizations, again.providers, again.enrolled, again.already_enrolled) == (
        47,
        47,
        0,
        10,
    )
    assert (again.added, again.updated) == ({}, {})
    assert (again.pcp_from_encounters, again.pcp_auto_assigned) == (0, 0)
    assert (again.skips, again.rejections) == (first.skips, first.rejections)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


def _numbers(report) -> dict[str, int]:
    names = (
        "organizations",
        "providers",
        "enrolled",
        "refused",
        "skipped",
        "pcp_from_encounters",
        "pcp_auto_assigned",
        "pcp_none_available",
    )
    return {name: getattr(report, name) for name in names}


def test_a_broken_export_reports_file_and_line_and_imports_the_good_rows(plans, sample, tmp_path):
    session = plans
    add_fee_schedule(
        session,
        key="core-120",
        name="120% of Medicare",
        method="percent_of_medicare",
        percent=Decimal("120"),
        medicare_locality="MA-01",
        actor=ACTOR,
    )
    session.commit()
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(sample / "organizations.csv", export)
    header, providers = _read(sample / "providers.csv")
    assert providers[23]["Id"] == ALYSHA_KOCH
    providers[23]["SPECIALITY"] = "ASTROLOGY"  # line 25: Margorie's most-seen provider
    _write(export / "providers.csv", header, providers)

    # First without patients.csv and encounters.csv: the network still goes in.
    report = run(session, export, fee_schedule_key="core-120")
    assert _numbers(report) == {
        "organizations": 47,
        "providers": 46,
        "enrolled": 0,
        "refused": 0,
        "skipped": 0,
        "pcp_from_encounters": 0,
        "pcp_auto_assigned": 0,
        "pcp_none_available": 0,
    }
    assert [str(r) for r in report.rejections] == [
        "providers.csv, line 25, SPECIALITY: specialty 'ASTROLOGY' does not match a NUCC "
        "taxonomy; add it to specialty_names.csv",
        f"encounters.csv: the file is missing from {export}",
        f"patients.csv: the file is missing from {export}",
    ]
    assert {c.fee_schedule.key for c in session.scalars(select(Contract))} == {"core-120"}

    # Leonie's most-seen provider stops taking new patients.
    norah = session.scalar(select(Provider).where(Provider.last_name == "Jenkins"))
    norah.accepting_new_patients = False
    session.commit()
    shutil.copy(sample / "encounters.csv", export)
    header, rows = _read(sample / "patients.csv")
    patients = {p["FIRST"]: p for p in rows}
    new = {"Id": "00000000-0000-4000-8000-000000000001", "FIRST": "Nova12", "LAST": "Newman34"}
    _write(
        export / "patients.csv",
        header,
        [
            patients["Margorie48"],
            patients["Barney639"] | {"BIRTHDATE": "1986-13-01"},
            patients["Rosetta750"]
            | {
                "Id": "00000000-0000-4000-8000-000000000002",
                "ADDRESS": "1 Main St",
                "CITY": "Hyannis",
                "ZIP": "02601",
            },
            patients["Rosetta750"] | new,  # never seen by anyone: no encounters
            patients["Leonie332"] | {"DEATHDATE": "2026-03-15"},
        ],
    )

    report = run(session, export, fee_schedule_key="core-120")
    assert _numbers(report) == {
        "organizations": 47,
        "providers": 46,
        "enrolled": 3,
        "refused": 2,
        "skipped": 0,
        "pcp_from_encounters": 0,
        "pcp_auto_assigned": 3,
        "pcp_none_available": 0,
    }
    assert [str(r) for r in report.rejections[1:]] == [
        "patients.csv, line 3, BIRTHDATE: '1986-13-01' is not a date (YYYY-MM-DD)",
        "patients.csv, line 4: Rosetta Hilll: ZIP code 02601 (Barnstable County, MA) is outside "
        "the service area of OpenHMO Silver HMO",
    ]
    assert [(n.file, n.line) for n in report.notes] == [("patients.csv", 2), ("patients.csv", 6)]
    assert report.notes[0].reason == (
        f"Margorie Cormier's most-seen provider {ALYSHA_KOCH} was "
        "not imported; left for auto-assignment"
    )
    assert "Norah Jenkins" in report.notes[1].reason
    assert "cannot be Leonie Jacobs's PCP on 2026-01-01" in report.notes[1].reason
    assert report.notes[1].reason.endswith("; left for auto-assignment")
    # The refused patients left nothing behind; the others were all auto-assigned a PCP.
    assert set(session.scalars(select(Member.first_name))) == {"Margorie", "Nova", "Leonie"}
    assert count(session, Coverage) == count(session, MemberAddress) == 3
    assert list(session.scalars(select(PcpAssignment.method))) == ["auto_assigned"] * 3
    # Leonie dies after her coverage starts: enrolled, and the coverage ends that day.
    leonie = session.scalar(select(Member).where(Member.first_name == "Leonie"))
    coverage = session.scalar(select(Coverage).where(Coverage.subscriber_id == leonie.id))
    assert (coverage.termination_date, coverage.termination_reason) == (date(2026, 3, 15), "death")


def test_a_row_refused_halfway_leaves_nothing_behind(plans, sample, tmp_path):
    session = plans
    header, organizations = _read(sample / "organizations.csv")
    _, providers = _read(sample / "providers.csv")
    # The organization is saved before its address is placed; with no ZIP and no coordinates
    # the address cannot be, and the savepoint takes the organization back out.
    broken = organizations[1] | {"ZIP": "ABCDE", "LAT": "", "LON": ""}
    export = tmp_path / "export"
    export.mkdir()
    _write(export / "organizations.csv", header, [organizations[0], broken])
    _write(export / "providers.csv", list(providers[0]), providers[:2])

    report = run(session, export)
    assert (report.organizations, report.providers) == (1, 1)
    assert [(r.file, r.line, r.field) for r in report.rejections[:2]] == [
        ("organizations.csv", 3, "ZIP"),
        ("providers.csv", 3, "ORGANIZATION"),
    ]
    assert "'ABCDE' is not a ZIP code" in report.rejections[0].reason
    assert count(session, Organization) == 1
    assert (
        session.scalar(select(Organization).where(Organization.external_id == broken["Id"])) is None
    )
    assert session.scalars(
        select(ChangeRecord.action).where(ChangeRecord.entity == "organization")
    ).all() == ["organization_added"]


def test_a_synthetic_npi_already_taken_is_reported_not_merged(plans, sample):
    session = plans
    npi = synthetic_npi(TED, "provider")
    add_provider(
        session, npi=npi, first_name="Real", last_name="Person", source="nppes", actor=ACTOR
    )
    session.commit()
    report = run(session, sample)
    assert report.providers == 46
    [collision] = [r for r in report.rejections if r.file == "providers.csv"]
    assert (collision.line, collision.field) == (2, "Id")
    assert f"synthetic NPI {npi}" in collision.reason and "Real Person" in collision.reason
    assert session.scalar(select(Provider.last_name).where(Provider.npi == npi)) == "Person"


def test_what_stops_the_import_before_it_starts(plans, sample, tmp_path):
    session = plans
    with pytest.raises(SyntheaImportError, match="is not a directory"):
        run(session, tmp_path / "nowhere")
    with pytest.raises(SyntheaImportError, match="no fee schedule 'nope'"):
        run(session, sample, fee_schedule_key="nope")
    with pytest.raises(SyntheaImportError, match="no plan year on 2031-01-01"):
        import_synthea(
            session,
            sample,
            plan_key=PLAN,
            effective=date(2031, 1, 1),
            network_key="openhmo-core",
            actor=ACTOR,
        )
    with pytest.raises(SyntheaImportError, match="no plan with id 'nope'"):
        import_synthea(
            session,
            sample,
            plan_key="nope",
            effective=EFFECTIVE,
            network_key="openhmo-core",
            actor=ACTOR,
        )


def test_the_command_line_loads_the_plans_and_the_sample(
    database_url, session, sample, monkeypatch
):
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "test:cli")
    runner = CliRunner()
    command = [
        "import",
        "synthea",
        str(sample),
        "--plan",
        PLAN,
        "--effective",
        "2026-01-01",
        "--network",
        "openhmo-core",
    ]
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    output = result.output
    assert "loaded the example plans" in output and PLAN in output
    assert "skipped patients.csv, line 10, DEATHDATE: Cameron Reilly died on 2022-09-07" in output
    assert "note patients.csv, line 9, ZIP: Christeen Beier: ZIP 00000" in output
    assert "note patients.csv, line 12, ZIP: Rodrigo Grady: ZIP 00000" in output
    for label, number in (
        ("members enrolled", 10),
        ("PCP from encounter history", 10),
        ("patients refused", 0),
        ("providers", 47),
    ):
        line = next(x for x in output.splitlines() if label in x)
        assert f" {number} " in line, line
    assert count(session, Member) == 10 and count(session, Plan) == 5
    assert (
        session.scalar(
            select(func.count()).select_from(ChangeRecord).where(ChangeRecord.actor == "test:cli")
        )
        > 0
    )

    again = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "loaded the example plans" not in again.output
    assert count(session, Member) == 10

    # An error goes to stderr, wrapped at the terminal's width: compare the words.
    bad = runner.invoke(app, ["import", "synthea", str(sample), "--effective", "soon"])
    assert bad.exit_code == 1
    assert "--effective 'soon' is not a date" in " ".join(bad.output.split())
    missing = runner.invoke(app, ["import", "synthea", str(sample / "nope")])
    assert missing.exit_code == 1
    assert f"{sample / 'nope'} is not a directory" in " ".join(missing.output.split())
