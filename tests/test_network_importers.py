"""The importers on the real corpus files (QHP directory, TiC rates) and an NPPES CSV."""

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.cli.main import app
from openhmo.network.directory import search
from openhmo.network.importers.nppes import import_nppes
from openhmo.network.importers.qhp import import_qhp
from openhmo.network.importers.report import ImportFileError
from openhmo.network.importers.tic import import_tic
from openhmo.network.membership import is_in_network
from openhmo.network.models import (
    Contract,
    FeeSchedule,
    FeeScheduleRate,
    Location,
    Network,
    Organization,
    Provider,
)
from openhmo.network.npi import make_npi
from openhmo.network.pricing import ServiceLine, allowed_amount
from openhmo.network.service import add_provider, fee_schedule_snapshot, get_provider

ACTOR = "test:import"
NPPES = Path(__file__).parent / "data" / "nppes_sample.csv"
TABLES = (Provider, Organization, Location, Network, Contract, FeeSchedule, FeeScheduleRate)


@pytest.fixture
def qhp(corpus):
    return corpus / "marketplace" / "qhp_provider_formulary_api"


@pytest.fixture
def tic(corpus):
    return corpus / "marketplace" / "transparency_in_coverage"


def counts(session):
    return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def schedule_of(session, file_stem, group="1"):
    key = session.scalar(
        select(FeeSchedule.key)
        .where(FeeSchedule.key.like(f"%-g{group}"), FeeSchedule.name.is_not(None))
        .where(FeeSchedule.key.like(f"tic-{file_stem[:20]}%"))
    )
    schedule = session.scalar(select(FeeSchedule).where(FeeSchedule.key == key))
    return fee_schedule_snapshot(session, schedule.id)


# --- QHP provider directory ------------------------------------------------------------


def test_qhp_directory_imports_the_valid_npi_and_rejects_the_others(session, qhp):
    report = import_qhp(session, qhp / "providers.json", qhp / "plans.json", actor=ACTOR)
    session.commit()
    assert report.added == {"provider": 1, "network": 4, "contract": 4}
    assert [str(r) for r in report.rejections] == [
        "providers.json, record 2 ([1], NPI 1234567892): npi: "
        "NPI 1234567892 fails the check digit: expected 3, found 2",
        "providers.json, record 3 ([2], NPI 1234567891): npi: "
        "NPI 1234567891 fails the check digit: expected 3, found 1",
    ]
    martin = get_provider(session, "1234567893")
    assert martin.display_name == "Martin Nostrand"
    assert (martin.taxonomy_code, martin.specialty) == ("207N00000X", "Dermatology; Oncology")
    assert martin.accepting_new_patients is False
    location = martin.locations[0].location
    assert (location.line1, location.line2, location.zip_code) == (
        "123 Park Ave",
        "Suite 120",
        "10003",
    )
    assert location.latitude is not None and location.county_fips == "36061"
    keys = set(session.scalars(select(Network.key)))
    assert keys == {
        "qhp-12345xx9876543-preferred",
        "qhp-12345xx9876543-non-preferred",
        "qhp-12345xx9876542-preferred",
        "qhp-12345xx9876542-non-preferred",
    }
    name = session.scalar(select(Network.name).where(Network.key == "qhp-12345xx9876543-preferred"))
    assert name == "Vandelay Insurance Gold Health Plan (PREFERRED)"
    # years [2019, 2020]: in network for those plan years only.
    assert is_in_network(session, martin.id, "qhp-12345xx9876543-preferred", date(2019, 1, 1))
    assert is_in_network(session, martin.id, "qhp-12345xx9876543-preferred", date(2020, 12, 31))
    assert not is_in_network(session, martin.id, "qhp-12345xx9876543-preferred", date(2021, 1, 1))
    assert not is_in_network(session, martin.id, "qhp-12345xx9876541-preferred", date(2020, 1, 1))


def test_qhp_reimport_is_idempotent(session, qhp):
    import_qhp(session, qhp / "providers.json", qhp / "plans.json", actor=ACTOR)
    session.commit()
    before = counts(session)
    again = import_qhp(session, qhp / "providers.json", qhp / "plans.json", actor=ACTOR)
    session.commit()
    assert not again.added and not again.updated
    assert again.unchanged == {"provider": 1, "network": 4, "contract": 4}
    assert counts(session) == before


def test_qhp_plan_references_the_plans_file_does_not_know_are_rejected(session, qhp, tmp_path):
    records = json.loads((qhp / "providers.json").read_text())
    records[0]["plans"][0]["plan_id"] = "99999XX0000000"
    records[0]["plans"][1]["network_tier"] = "BRONZE"
    records[0]["accepting"] = "accepting"
    records[0]["languages"] = ["English", "Spanish"]
    changed = tmp_path / "providers.json"
    changed.write_text(json.dumps(records))
    report = import_qhp(session, changed, qhp / "plans.json", actor=ACTOR)
    messages = [str(r) for r in report.rejections]
    assert (
        "providers.json, record 1 ([0], NPI 1234567893) plans[0]: plan_id: plan 99999XX0000000 "
        "is not in the plans file" in messages
    )
    assert (
        "providers.json, record 1 ([0], NPI 1234567893) plans[1]: network_tier: plan "
        "12345XX9876543 has no network tier BRONZE" in messages
    )
    assert report.added["contract"] == 2
    martin = get_provider(session, "1234567893")
    assert martin.accepting_new_patients is True
    assert search(session, language="spanish")[0].provider.npi == "1234567893"


def test_qhp_malformed_records_are_reported_and_the_rest_imported(session, qhp, tmp_path):
    records = json.loads((qhp / "providers.json").read_text())
    records[1] = {**records[0], "npi": make_npi("100000301"), "addresses": "123 Main St"}
    records[2] = {
        **records[0],
        "npi": make_npi("100000302"),
        "plans": [{"plan_id": "X", "network_tier": "PREFERRED", "years": 2020}],
    }
    records.append({**records[0], "npi": make_npi("100000303"), "accepting": "maybe"})
    changed = tmp_path / "providers.json"
    changed.write_text(json.dumps(records))
    report = import_qhp(session, changed, actor=ACTOR)
    assert report.added["provider"] == 1
    assert [(r.where.split(" (")[0], r.field) for r in report.rejections] == [
        ("providers.json, record 2", "addresses"),
        ("providers.json, record 3", None),
        ("providers.json, record 4", "accepting"),
    ]
    assert "malformed: TypeError" in report.rejections[1].message
    assert "'maybe' is not one of accepting, not accepting" in report.rejections[2].message
    assert get_provider(session, make_npi("100000302")) is None


def test_qhp_without_plans_file_names_networks_by_plan(session, qhp):
    report = import_qhp(session, qhp / "providers.json", actor=ACTOR)
    assert report.added["contract"] == 4
    assert (
        session.scalar(
            select(Network.name).where(Network.key == "qhp-12345xx9876542-non-preferred")
        )
        == "QHP 12345XX9876542 (NON-PREFERRED)"
    )


def test_a_file_that_is_not_json_is_refused_whole(session, tmp_path):
    bad = tmp_path / "providers.json"
    bad.write_text('[{"npi": "1234567893",]')
    with pytest.raises(ImportFileError, match="line 1, column 23: not valid JSON"):
        import_qhp(session, bad, actor=ACTOR)


# --- Transparency in Coverage ------------------------------------------------------------


def test_tic_fee_for_service_rates_per_code(session, tic):
    file = tic / "in-network-rates-fee-for-service-single-plan-sample.json"
    report = import_tic(session, file, actor=ACTOR)
    session.commit()
    assert report.added == {
        "organization": 2,
        "network": 1,
        "fee_schedule": 1,
        "rate": 11,
        "contract": 2,
    }
    # Every sample NPI fails the check digit: 15 rejections, each with its JSON path.
    assert report.rejected == 15
    assert str(report.rejections[0]) == (
        "in-network-rates-fee-for-service-single-plan-sample.json "
        "provider_references[0].provider_groups[0].npi[0]: npi: "
        "NPI 1111111111 fails the check digit: expected 2, found 1"
    )
    assert {r.field for r in report.rejections} == {"npi"}
    orgs = {o.tin: o.name for o in session.scalars(select(Organization))}
    assert orgs == {"11-1111111": "ACME Provider Group", "22-2222222": "Midland Medical Group"}
    contracts = session.scalars(select(Contract)).all()
    assert {
        (c.network.key, c.effective_from, c.effective_to, c.arrangement) for c in contracts
    } == {("acme-choice-provider-group", date(2020, 8, 27), date(2022, 1, 1), "ffs")}
    schedule = schedule_of(session, "in-network-rates-fee-for-service")
    assert schedule.method == "per_code"

    def price(code, **line):
        return allowed_amount(ServiceLine(code, **line), schedule).amount_cents

    assert price("27447", modifiers=("AS",), place_of_service="11") == 12345
    assert price("27447", place_of_service="05") == 12045
    assert price("27447", place_of_service="21", billing_class="institutional") == 123045
    assert price("27448", place_of_service="24") == 1200345  # CSTM-00: any place
    assert price("27448", place_of_service="19", billing_class="institutional") == 1245


def test_tic_organization_contract_covers_a_provider_of_that_tin(session, tic):
    import_tic(
        session, tic / "in-network-rates-fee-for-service-single-plan-sample.json", actor=ACTOR
    )
    acme = session.scalar(select(Organization).where(Organization.tin == "11-1111111"))
    surgeon = add_provider(
        session,
        npi=make_npi("100000201"),
        last_name="Knee",
        taxonomy_code="207X00000X",
        organization=acme,
        actor=ACTOR,
    )
    assert is_in_network(session, surgeon.id, "acme-choice-provider-group", date(2021, 6, 1))
    assert not is_in_network(session, surgeon.id, "acme-choice-provider-group", date(2022, 1, 2))


def test_tic_bundle_gives_case_rates_and_reports_the_conflicting_price(session, tic):
    report = import_tic(
        session, tic / "in-network-rates-bundle-single-plan-sample.json", actor=ACTOR
    )
    session.commit()
    conflicts = [r for r in report.rejections if r.field == "negotiated_rate"]
    assert len(conflicts) == 1
    assert conflicts[0].where.endswith("in_network[0].negotiated_rates[1].negotiated_prices[0]")
    assert (
        "conflicts with in_network[0].negotiated_rates[0].negotiated_prices[0] ($20,000.00"
        in conflicts[0].message
    )
    schedule = schedule_of(session, "in-network-rates-bundle")
    assert schedule.method == "case_rate"
    assert {r.unit for r in schedule.rates.values()} == {"per_case"}
    case = allowed_amount(ServiceLine("81.54", units=3, place_of_service="06"), schedule)
    assert (case.amount_cents, case.method) == (2000000, "case_rate")
    assert {c.arrangement for c in session.scalars(select(Contract))} == {"bundle"}


def test_tic_capitation_is_a_contract_without_fee_for_service_rates(session, tic):
    report = import_tic(
        session, tic / "in-network-rates-capitation-single-plan-sample.json", actor=ACTOR
    )
    session.commit()
    assert report.added["contract"] == 2 and "fee_schedule" not in report.added
    contracts = session.scalars(select(Contract)).all()
    assert {(c.arrangement, c.fee_schedule_id) for c in contracts} == {("capitation", None)}
    assert session.scalar(select(func.count()).select_from(FeeScheduleRate)) == 0
    assert any("capitation amounts are not recorded" in n for n in report.notes)


def test_tic_negotiated_types_what_is_kept_and_what_is_reported(session, tic):
    report = import_tic(
        session, tic / "in-network-rates-all-negotiated-types-sample.json", actor=ACTOR
    )
    session.commit()
    not_amounts = {
        r.where.split(" ", 1)[1]: r.message
        for r in report.rejections
        if r.field == "negotiated_type"
    }
    assert set(not_amounts) == {
        "in_network[1].negotiated_rates[0].negotiated_prices[0]",
        "in_network[3].negotiated_rates[0].negotiated_prices[0]",
        "in_network[5].negotiated_rates[0].negotiated_prices[0]",
    }
    assert (
        "percentage 65.0: a percentage of billed charges"
        in not_amounts["in_network[1].negotiated_rates[0].negotiated_prices[0]"]
    )
    assert "derived 45.00" in not_amounts["in_network[3].negotiated_rates[0].negotiated_prices[0]"]
    assert report.rejected == 6 + 3  # six NPIs that fail the check digit
    group1 = schedule_of(session, "in-network-rates-all-negotiated", "1")
    group2 = schedule_of(session, "in-network-rates-all-negotiated", "2")
    assert allowed_amount(ServiceLine("99214"), group1).amount_cents == 15000
    assert (
        allowed_amount(ServiceLine("27447", place_of_service="22"), group1).amount_cents == 850000
    )
    icu = allowed_amount(
        ServiceLine("0200", units=3, place_of_service="21", billing_class="institutional"), group2
    )
    assert icu.amount_cents == 1650000  # $5,500 per diem x 3 days
    networks = set(session.scalars(select(Network.key)))
    assert networks == {"comprehensive-health-network", "comprehensive-health-plus-network"}
    assert {c.effective_from for c in session.scalars(select(Contract))} == {date(2024, 1, 15)}


def test_tic_group_identified_by_an_invalid_npi_is_rejected_with_its_rates(session, tic):
    report = import_tic(session, tic / "in-network-rates-no-npi.json", actor=ACTOR)
    assert [str(r) for r in report.rejections] == [
        "in-network-rates-no-npi.json provider_references[0].provider_groups[0].tin.value: "
        "npi: NPI 1234567890 fails the check digit: expected 3, found 0",
        "in-network-rates-no-npi.json provider group 1: it has no valid organization or "
        "provider; its rates are not imported",
    ]
    assert not report.added
    assert counts(session)["contract"] == 0


def test_tic_reimport_is_idempotent_and_a_network_can_be_forced(session, tic):
    files = sorted(tic.glob("in-network-rates-*.json"))
    for file in files:
        import_tic(session, file, actor=ACTOR)
    session.commit()
    before = counts(session)
    for file in files:
        again = import_tic(session, file, actor=ACTOR)
        assert not again.added and not again.updated, again.summary()
    session.commit()
    assert counts(session) == before
    forced = import_tic(session, files[0], network_key="openhmo-core", actor=ACTOR)
    assert forced.added["network"] == 1 and forced.added["contract"] == 3


# --- NPPES-style CSV ---------------------------------------------------------------------


def test_nppes_good_rows_in_bad_rows_reported_with_line_and_column(session):
    report = import_nppes(session, NPPES, actor=ACTOR)
    session.commit()
    assert report.added == {"provider": 4, "organization": 1}
    assert [(r.where, r.field) for r in report.rejections] == [
        ("nppes_sample.csv, line 6", "NPI"),
        ("nppes_sample.csv, line 7", "Provider Business Practice Location Address Postal Code"),
        ("nppes_sample.csv, line 8", "Provider Last Name (Legal Name)"),
    ]
    assert [r.message for r in report.rejections] == [
        "NPI 1234567890 fails the check digit: expected 3, found 0",
        "ZIP code 00000 is not a known US ZIP code; the location cannot be placed on the map",
        "provider 1000000061 has no last name",
    ]
    rivera = get_provider(session, "1000000012")
    assert (rivera.taxonomy_code, rivera.pcp_eligible, rivera.panel_capacity) == (
        "207Q00000X",
        True,
        1500,
    )
    assert rivera.organization.name == "Beacon Hill Family Practice"
    assert rivera.organization.tin == "04-1234567"
    assert sorted(lang.language for lang in rivera.languages) == ["English", "Spanish"]
    assert rivera.locations[0].location.zip_code == "02114"  # from 021142595
    nguyen = get_provider(session, "1000000020")
    assert (nguyen.pediatrics, nguyen.accepting_new_patients) == (True, False)
    # The primary taxonomy is the one switched "Y" (the second here), not the first.
    okafor = get_provider(session, "1000000038")
    assert (okafor.taxonomy_code, okafor.ob_gyn, okafor.pcp_eligible) == ("207V00000X", True, False)
    clinic = get_provider(session, "2000000044")
    assert (clinic.entity_type, clinic.display_name) == (
        "organization",
        "HARBOR COMMUNITY HEALTH CENTER",
    )


def test_nppes_contracts_the_providers_and_reimports_idempotently(session):
    from openhmo.network.service import add_fee_schedule

    add_fee_schedule(
        session,
        key="core-120",
        name="120% of Medicare",
        method="percent_of_medicare",
        percent=120,
        medicare_locality="MA-01",
        actor=ACTOR,
    )
    kwargs = {
        "network_key": "openhmo-core",
        "fee_schedule_key": "core-120",
        "effective": date(2026, 1, 1),
        "actor": ACTOR,
    }
    first = import_nppes(session, NPPES, **kwargs)
    session.commit()
    assert first.added["contract"] == 4
    before = counts(session)
    again = import_nppes(session, NPPES, **kwargs)
    session.commit()
    assert not again.added and not again.updated and again.rejected == 3
    assert counts(session) == before
    near = search(
        session,
        network_key="openhmo-core",
        on=date(2026, 2, 1),
        near_zip="02108",
        within_miles=10,
        pcp_only=True,
        accepting_new_patients=True,
    )
    assert [e.provider.npi for e in near] == ["1000000012", "2000000044"]


def test_nppes_header_without_npi_is_refused_whole(session, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('"Entity Type Code","Provider Last Name (Legal Name)"\n"1","X"\n')
    with pytest.raises(ImportFileError, match="line 1: the header has no column 'NPI'"):
        import_nppes(session, bad, actor=ACTOR)
    with pytest.raises(ImportFileError, match="no fee schedule 'nope'"):
        import_nppes(
            session,
            NPPES,
            network_key="x",
            fee_schedule_key="nope",
            effective=date(2026, 1, 1),
            actor=ACTOR,
        )


# --- the command line --------------------------------------------------------------------


def test_cli_imports_searches_shows_and_contracts(database_url, session, qhp, tic, monkeypatch):
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "test:cli")
    runner = CliRunner()

    result = runner.invoke(
        app,
        ["network", "import-qhp", str(qhp / "providers.json"), "--plans", str(qhp / "plans.json")],
    )
    assert result.exit_code == 3, result.output  # imported, with rejections
    assert "2 rejected" in result.output

    result = runner.invoke(
        app,
        [
            "network",
            "import-tic",
            str(tic / "in-network-rates-fee-for-service-single-plan-sample.json"),
            str(tic / "in-network-rates-capitation-single-plan-sample.json"),
        ],
    )
    assert result.exit_code == 3, result.output

    result = runner.invoke(
        app, ["network", "fee-schedule", "core-120", "--percent", "120", "--locality", "MA-01"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "network",
            "import-nppes",
            str(NPPES),
            "--network",
            "openhmo-core",
            "--fee-schedule",
            "core-120",
            "--effective",
            "2026-01-01",
        ],
    )
    assert result.exit_code == 3, result.output

    result = runner.invoke(
        app,
        [
            "network",
            "search",
            "--network",
            "openhmo-core",
            "--on",
            "2026-03-01",
            "--near-zip",
            "02108",
            "--within-miles",
            "5",
            "--language",
            "spanish",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1000000012" in result.output and "2000000044" in result.output
    assert "2 provider(s)" in result.output

    result = runner.invoke(
        app,
        [
            "network",
            "contract",
            "--network",
            "qhp-12345xx9876543-preferred",
            "--npi",
            "1000000012",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "network",
            "contract",
            "--network",
            "openhmo-core",
            "--tin",
            "041234567",
            "--from",
            "2026-01-01",
            "--arrangement",
            "capitation",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Beacon Hill Family Practice in openhmo-core" in result.output
    result = runner.invoke(app, ["network", "show", "1000000012"])
    assert result.exit_code == 0, result.output
    assert "qhp-12345xx9876543-preferred" in result.output and "core-120" in result.output

    result = runner.invoke(
        app,
        [
            "network",
            "contract",
            "--network",
            "openhmo-core",
            "--npi",
            "1000000012",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
        ],
    )
    assert result.exit_code == 1
    assert "before it starts" in result.output
    result = runner.invoke(app, ["network", "import-qhp", "/no/such/file.json"])
    assert result.exit_code == 1 and "cannot read the file" in result.output

    session.expire_all()
    rivera = get_provider(session, "1000000012")
    assert is_in_network(session, rivera.id, "qhp-12345xx9876543-preferred", date(2026, 6, 1))
    assert (
        session.scalar(
            select(func.count()).select_from(Contract).where(Contract.arrangement == "capitation")
        )
        == 3
    )
