"""Everything the server emits is valid FHIR R4, by a validator that shares none of our code.

One pass over the running server as staff collects a resource of every type it sends
(reads, searches, operations and errors) and validates each with HL7's R4 JSON schema
(tests/fhir_validate.py) and with fhir.resources' models. The types checked must cover
every type the CapabilityStatement lists and every type an operation answers with.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fhir.resources.R4B import get_fhir_model_class

from api_support import client, fhir_claim, fhir_eligibility, seed_world, serve
from fhir_validate import fhir_problems
from openhmo.interop.fhir.common import fhir_json

# What operations answer with, beside the types a server reads and searches.
ANSWERS = {
    "CapabilityStatement",
    "OperationOutcome",
    "Bundle",
    "ClaimResponse",
    "CoverageEligibilityResponse",
}


def _walk(resource: dict, into: dict[str, dict]) -> None:
    into.setdefault(resource["resourceType"], resource)
    for entry in resource.get("entry", []):
        _walk(entry["resource"], into)
    for contained in resource.get("contained", []):
        _walk(contained, into)


@pytest.fixture(scope="module")
def emitted(module_engine):
    world = seed_world(module_engine)
    seen: dict[str, dict] = {}
    answers: list[dict] = []
    with serve(module_engine) as base, client(base, "staff") as staff:

        def keep(response) -> None:
            body = json.loads(response.content, parse_float=Decimal)
            answers.append(body)
            _walk(body, seen)

        keep(staff.get("/fhir/metadata"))
        statement = answers[0]
        listed = {r["type"] for r in statement["rest"][0]["resource"]}
        # AuditEvent last: by then the reads before it are in the audit.
        asked = sorted(
            listed - {"Claim", "CoverageEligibilityRequest"}, key=lambda t: (t == "AuditEvent", t)
        )
        for resource_type in asked:
            bundle = staff.get(f"/fhir/{resource_type}", params={"_count": 3})
            keep(bundle)
            entries = json.loads(bundle.content).get("entry", [])
            if entries:
                keep(staff.get(f"/fhir/{resource_type}/{entries[0]['resource']['id']}"))
        headers = {"Content-Type": "application/fhir+json"}
        claim = fhir_claim(world.lee, world.casey_npi, "c-1")
        keep(staff.post("/fhir/Claim/$submit", content=fhir_json(claim), headers=headers))
        eligibility = fhir_eligibility(world.ada)
        keep(
            staff.post(
                "/fhir/CoverageEligibilityRequest/$submit",
                content=fhir_json(eligibility),
                headers=headers,
            )
        )
        keep(staff.get("/fhir/Patient/OHM999999999-00"))  # an OperationOutcome
        keep(staff.get("/fhir/Patient", params={"unknown-parameter": "x"}))
    return seen, answers, listed


def test_every_type_the_server_emits_was_collected(emitted):
    seen, _, listed = emitted
    missing = (listed - {"Claim", "CoverageEligibilityRequest"}) | ANSWERS
    assert not missing - set(seen), f"never emitted in this pass: {sorted(missing - set(seen))}"


def test_every_answer_is_valid_r4_by_hl7s_schema(emitted):
    _, answers, _ = emitted
    problems = [
        f"{a['resourceType']} {a.get('id', '')}: {p}" for a in answers for p in fhir_problems(a)
    ]
    assert not problems, "\n".join(problems[:30])


def test_every_type_is_valid_by_fhir_resources_too(emitted):
    seen, _, _ = emitted
    for resource_type, resource in sorted(seen.items()):
        get_fhir_model_class(resource_type).model_validate(resource)
