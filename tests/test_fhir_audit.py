"""Staff read the audit of personal-health-data reads as FHIR AuditEvent; no one else can."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import select

from api_support import client, seed_world, serve
from fhir_validate import assert_valid_fhir
from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller
from openhmo.db import session_factory
from openhmo.enrollment.models import Member


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    with session_factory(module_engine)() as s:
        ids = dict(s.execute(select(Member.member_number, Member.id)).all())
        welby = Caller(username="welby", role="provider", address="10.0.0.7")
        ada = Caller(username="ada", role="member", address="192.0.2.1")
        record_reads(
            s,
            welby,
            [(ids[world.ada], "ExplanationOfBenefit", "C000000001")],
            action="read",
            what="GET /fhir/ExplanationOfBenefit/C000000001",
        )
        record_reads(
            s,
            ada,
            [(ids[world.ada], "Patient", world.ada), (ids[world.kid], "Patient", world.kid)],
            action="search",
            what="GET /fhir/Patient",
        )
        s.commit()
    with serve(module_engine) as base:
        yield base, world


def test_staff_search_the_audit_by_patient_and_agent(api):
    base, world = api
    with client(base, "staff") as staff:
        bundle = staff.get("/fhir/AuditEvent", params={"patient": f"Patient/{world.ada}"}).json()
        assert bundle["total"] == 2
        events = [e["resource"] for e in bundle["entry"]]
        assert_valid_fhir(bundle)
        for event in events:
            AuditEvent.model_validate(event)
        agents = sorted(e["agent"][0]["who"]["display"] for e in events)
        assert agents == ["ada", "welby"]
        eob = next(e for e in events if e["agent"][0]["who"]["display"] == "welby")
        assert eob["agent"][0]["network"]["address"] == "10.0.0.7"
        assert eob["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
        assert {x["what"]["reference"] for x in eob["entity"]} == {
            f"Patient/{world.ada}",
            "ExplanationOfBenefit/C000000001",
        }
        mine = staff.get("/fhir/AuditEvent", params={"agent-name": "ada"}).json()
        assert mine["total"] == 2
        one = staff.get(f"/fhir/AuditEvent/{eob['id']}")
        assert one.status_code == 200 and one.json()["id"] == eob["id"]


def test_the_audit_is_dated_and_a_bad_date_says_where(api):
    base, _ = api
    with client(base, "staff") as staff:
        assert staff.get("/fhir/AuditEvent", params={"date": "ge2000-01-01"}).json()["total"] >= 3
        assert staff.get("/fhir/AuditEvent", params={"date": "lt2000-01-01"}).json()["total"] == 0
        bad = staff.get("/fhir/AuditEvent", params={"date": "yesterday"})
        assert bad.status_code == 400
        assert bad.json()["issue"][0]["expression"] == ["date"]
        unknown = staff.get("/fhir/AuditEvent", params={"colour": "red"})
        assert unknown.status_code == 400 and "colour" in unknown.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("who", [None, "ada", "welby", "clearinghouse"])
def test_no_one_but_staff_reads_the_audit(api, who):
    base, _ = api
    with client(base, who) as someone:
        answer = someone.get("/fhir/AuditEvent")
        assert answer.status_code == (401 if who is None else 403)
        assert answer.json()["resourceType"] == "OperationOutcome"
