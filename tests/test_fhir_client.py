"""A provider's system drives the running server with fhirpy, a FHIR client library.

What an office's practice-management system does in a day: find a cardiologist in the
directory, check a patient's eligibility, send a claim and read the answer, and read the
explanation of benefit; all through fhirpy (requests under it) against the real server
on a real port, with the office's OAuth2 token.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, ResourceNotFound
from sqlalchemy import select

from api_support import fhir_claim, fhir_eligibility, seed_world, serve, token
from fhir_validate import assert_valid_fhir
from openhmo.claims.models import Claim, LineDecision
from openhmo.db import session_factory
from openhmo.interop.fhir.common import NPI_SYSTEM


@pytest.fixture(scope="module")
def office(module_engine):
    world = seed_world(module_engine)
    with serve(module_engine) as base:
        fhir = SyncFHIRClient(
            f"{base}/fhir",
            authorization=f"Bearer {token(base, 'welby')}",
            extra_headers={"Accept": "application/fhir+json"},
        )
        yield fhir, world, module_engine


def test_the_office_finds_a_cardiologist_in_the_directory(office):
    fhir, world, _ = office
    roles = (
        fhir.resources("PractitionerRole")
        .search(specialty="207RC0000X")
        .include("PractitionerRole", "practitioner")
        .fetch()
    )
    assert roles, "no cardiologist found"
    practitioners = [r["practitioner"].to_resource() for r in roles]
    npis = {
        ident["value"]
        for p in practitioners
        for ident in p["identifier"]
        if ident["system"] == NPI_SYSTEM
    }
    assert world.heart_npi in npis
    heart = fhir.reference("Practitioner", world.heart_npi).to_resource()
    assert heart["name"][0]["family"] == "Heart"
    # Paging is followed by the client: every practitioner, two at a time.
    everyone = fhir.resources("Practitioner").limit(2).fetch_all()
    ids = [p["id"] for p in everyone]
    assert sorted(ids) == sorted(
        [world.welby_npi, world.casey_npi, world.heart_npi, world.outside_npi]
    )


def test_the_office_checks_eligibility_before_the_visit(office):
    fhir, world, _ = office
    request = fhir_eligibility(world.ada, "1985-02-14")
    answer = fhir.resources("CoverageEligibilityRequest").execute("$submit", data=request)
    assert_valid_fhir(answer)
    assert answer["resourceType"] == "CoverageEligibilityResponse"
    assert answer["outcome"] == "complete"
    assert answer["insurance"][0]["inforce"] is True


def test_the_office_sends_a_claim_and_reads_its_eob(office):
    fhir, world, engine = office
    claim = fhir_claim(
        world.sam,
        world.welby_npi,
        "fhirpy-1",
        code="99214",
        charge="240.00",
        day="2026-06-23",
        diagnosis="J06.9",
    )
    response = fhir.resources("Claim").execute("$submit", data=claim)
    assert_valid_fhir(response)
    assert response["resourceType"] == "ClaimResponse"
    assert response["outcome"] == "complete"
    claim_id = response["id"]
    with session_factory(engine)() as s:
        stored = s.scalar(select(Claim).where(Claim.claim_id == claim_id))
        decision = s.scalar(
            select(LineDecision).where(
                LineDecision.claim_id == stored.id, LineDecision.superseded_at.is_(None)
            )
        )
    eob = fhir.reference("ExplanationOfBenefit", claim_id).to_resource()
    assert_valid_fhir(eob.serialize())
    paid = [
        Decimal(str(t["amount"]["value"]))
        for t in eob["total"]
        if t["category"]["coding"][0]["code"] == "paidtoprovider"
    ]
    assert paid == [Decimal(decision.plan_paid_cents) / 100]
    assert eob["patient"]["reference"] == f"Patient/{world.sam}"
    # The office's search for its patient's EOBs finds this one.
    found = fhir.resources("ExplanationOfBenefit").search(patient=world.sam).fetch_all()
    assert claim_id in {e["id"] for e in found}


def test_what_the_office_may_not_see_is_not_found(office):
    fhir, world, _ = office
    with pytest.raises(ResourceNotFound):
        fhir.reference("Patient", world.lee).to_resource()
    with pytest.raises(ForbiddenError, match="may not search AuditEvent"):
        fhir.resources("AuditEvent").fetch()
