"""The `openhmo` command end to end on SQLite and PostgreSQL: plans, enrollment, billing, audit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from openhmo.billing.models import Invoice
from openhmo.cli.main import app
from openhmo.db import session_factory
from openhmo.enrollment.models import Member, PcpAssignment
from openhmo.history.models import PhiAccess
from support import provider

runner = CliRunner()


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "staff:jlee")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


FAMILIES = [
    {
        "plan": "openhmo-silver-hmo",
        "effective": "2026-01-01",
        "subscriber": {
            "first_name": "Ada",
            "last_name": "Okafor",
            "birth_date": "1985-02-14",
            "sex": "F",
            "language": "ja",
        },
        "address": {"line1": "1 Beacon St", "city": "Boston", "state": "MA", "zip_code": "02108"},
        "dependents": [
            {
                "first_name": "Kid",
                "last_name": "Okafor",
                "birth_date": "2019-05-01",
                "sex": "M",
                "relationship": "child",
            }
        ],
    },
    {
        "plan": "openhmo-silver-hmo",
        "effective": "2026-01-01",
        "subscriber": {
            "first_name": "Bo",
            "last_name": "Far",
            "birth_date": "1980-01-01",
            "sex": "M",
        },
        "address": {"line1": "350 5th Ave", "city": "New York", "state": "NY", "zip_code": "10118"},
    },
    {
        "plan": "openhmo-silver-hmo",
        "effective": "2026-01-01",
        "subscriber": {
            "first_name": "Cy",
            "last_name": "Typo",
            "birth_date": "1980-13-01",
            "sex": "M",
        },
        "address": {"line1": "1 Main St", "city": "Boston", "state": "MA", "zip_code": "02108"},
    },
]


def test_plans_validate_load_and_show(cli, tmp_path: Path):
    from openhmo.plans.loader import example_designs

    broken = tmp_path / "broken.yaml"
    broken.write_text(example_designs()[0].read_text().replace("$30 copay", "$3O copay", 1))
    out = cli("plans", "validate", str(broken), code=1)
    assert f"{broken}:" in out and "could not read '$3O copay'" in out
    out = cli("plans", "load")
    assert out.count("loaded") == 5
    out = cli("plans", "show", "openhmo-silver-hmo")
    assert "$50.00 copay" in out and "referral" in out and "HMO default" in out
    assert "openhmo-gold-ppo" in cli("plans", "list")
    cli("plans", "show", "no-such-plan", code=1)


def test_enroll_a_file_good_families_in_bad_ones_reported(cli, tmp_path: Path, engine):
    cli("plans", "load")
    file = tmp_path / "families.yaml"
    file.write_text(yaml.safe_dump(FAMILIES))
    out = cli("enrollment", "enroll", str(file), code=1)
    assert "family [0]: enrolled OHM" in out
    assert "family [1]" in out and "outside the service area" in out
    assert "family [2]" in out and "subscriber" not in out.split("family [2]")[0][-5:]
    assert "birth_date" in out.split("family [2]")[1]
    assert "1 enrolled, 2 refused" in out
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Member)) == 2


def test_member_reads_are_audited_and_notices_speak_the_members_language(cli, tmp_path, engine):
    cli("plans", "load")
    file = tmp_path / "families.yaml"
    file.write_text(yaml.safe_dump(FAMILIES[:1]))
    cli("enrollment", "enroll", str(file))
    with session_factory(engine)() as session:
        number = session.scalar(select(Member.member_number).where(Member.first_name == "Ada"))
    assert "Ada Okafor" in cli("enrollment", "show", number, "--purpose", "call from member")
    assert "enrolled" in cli("enrollment", "history", number)
    out = cli(
        "enrollment",
        "move",
        number,
        "--line1",
        "350 5th Ave",
        "--city",
        "New York",
        "--state",
        "NY",
        "--zip",
        "10118",
        "--effective",
        "2026-03-05",
    )
    assert "eligibility ends" in out and "2026-03-31" in out
    assert "サービス地域外" in cli("enrollment", "notices", number)
    assert "terminated" in cli("enrollment", "eligibility", number, "--on", "2026-04-01")
    with session_factory(engine)() as session:
        reads = session.scalars(select(PhiAccess).order_by(PhiAccess.id)).all()
    assert [(r.actor, r.what) for r in reads] == [
        ("staff:jlee", "enrollment record"),
        ("staff:jlee", "history"),
        ("staff:jlee", "notices"),
        ("staff:jlee", "eligibility on 2026-04-01"),
    ]
    assert reads[0].purpose == "call from member"


def test_pcp_choice_and_billing_from_the_command_line(cli, tmp_path, engine):
    cli("plans", "load")
    file = tmp_path / "families.yaml"
    file.write_text(yaml.safe_dump(FAMILIES[:1]))
    cli("enrollment", "enroll", str(file))
    with session_factory(engine)() as session:
        doctor = provider(session, last_name="Welby")
        npi = doctor.npi
        session.commit()
        number = session.scalar(select(Member.member_number).where(Member.first_name == "Ada"))
    out = cli("enrollment", "choose-pcp", number, npi, "--on", "2026-02-10")
    assert "from 2026-03-01" in out
    out = cli("enrollment", "auto-assign", "--as-of", "2026-01-01")
    assert "assigned 1" in out  # the child; Ada has chosen hers
    cli("enrollment", "choose-pcp", number, "1234567890", code=1)
    cli("billing", "pay", number, "--amount", "$868.00", "--on", "2025-12-28", "--reference", "r1")
    out = cli("billing", "run", "--through", "2026-01-01")
    assert "$868.00" in out
    cli("billing", "run", "--through", "2026-01-01")
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert session.scalar(select(func.count()).select_from(PcpAssignment)) == 2
    assert "balance: $0.00" in cli("billing", "status", number)
    cli("billing", "pay", number, "--amount", "lots", "--on", "2026-01-01", code=1)
