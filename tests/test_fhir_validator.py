"""The independent FHIR R4 validator of tests/fhir_validate.py, proved on real and broken JSON.

Real: every example in the shared corpus (OPENHMO_CORPUS, see conftest.py) of the resource
types OpenHMO emits must validate: HL7's own R4 examples and CMS Blue Button (BFD v2)
responses. Broken: small changes to valid resources (an unknown element, a wrong type, a bad
code, a bad date ...) must each be rejected with a problem that names the path.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fhir_validate
from conftest import CORPUS
from fhir_validate import assert_valid_fhir, fhir_problems

FHIR_CORPUS = CORPUS / "fhir"
NO_CORPUS = f"the shared FHIR corpus is not at {FHIR_CORPUS} (set OPENHMO_CORPUS)"
CORPUS_DIRS = ("r4_core_examples", "bluebutton_bfd_v2")
TYPES = {
    "Bundle", "Claim", "ClaimResponse", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "ExplanationOfBenefit", "HealthcareService", "InsurancePlan",
    "Organization", "OrganizationAffiliation", "PractitionerRole", "ServiceRequest",
}  # fmt: skip

# BFD's endpoint fixtures mask the fields that change on every request (meta.lastUpdated,
# created) with this string, which is not a FHIR instant/dateTime. The response BFD really sends
# has a timestamp there. So these files must fail at exactly those fields, and must validate
# once the mask is replaced with a timestamp.
BFD_MASK = "IGNORED_FIELD"
TIMESTAMP = "2021-01-01T00:00:00+00:00"  # a valid instant and dateTime


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _corpus_files() -> list:
    files = [
        f
        for d in CORPUS_DIRS
        for f in sorted((FHIR_CORPUS / d).rglob("*.json"))
        if _load(f).get("resourceType") in TYPES
    ]
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS), id="no-corpus")]
    return [pytest.param(f, id=str(f.relative_to(FHIR_CORPUS))) for f in files]


def _unmask(node: Any, path: str, found: list[str]) -> Any:
    """A copy of node with BFD's masks replaced by a timestamp; masked paths go to found."""
    if isinstance(node, dict):
        return {k: _unmask(v, f"{path}.{k}", found) for k, v in node.items()}
    if isinstance(node, list):
        return [_unmask(v, f"{path}[{i}]", found) for i, v in enumerate(node)]
    if node == BFD_MASK:
        found.append(path)
        return TIMESTAMP
    return node


# ------------------------------------------------------------------ the real corpus


@pytest.mark.parametrize("path", _corpus_files())
def test_corpus_example_is_valid(path: Path):
    resource = _load(path)
    masked: list[str] = []
    unmasked = _unmask(resource, resource["resourceType"], masked)
    if masked:
        problems = fhir_problems(resource)
        assert problems, f"{path.name}: the masked timestamps {masked} were not rejected"
        for problem in problems:
            assert any(problem.startswith(f"{m}: ") for m in masked), problem
            assert BFD_MASK in problem, problem
        assert {p.split(":", 1)[0] for p in problems} == set(masked)
    assert_valid_fhir(unmasked)


def test_corpus_has_every_type_and_nested_resources():
    if not FHIR_CORPUS.exists():
        pytest.skip(NO_CORPUS)
    found = [_load(f) for d in CORPUS_DIRS for f in (FHIR_CORPUS / d).rglob("*.json")]
    assert {r["resourceType"] for r in found} >= TYPES
    # The corpus checks the nested-resource paths too: Bundle entries and contained resources.
    assert any(r["resourceType"] == "Bundle" and r.get("entry") for r in found)
    assert any(r.get("contained") for r in found)


# ------------------------------------------------------------------ broken variants


def coverage() -> dict:
    return {
        "resourceType": "Coverage",
        "id": "cov-1",
        "meta": {"lastUpdated": "2024-03-01T12:00:00Z"},
        "status": "active",
        "subscriberId": "M0001",
        "beneficiary": {"reference": "Patient/p1"},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                 "code": "self"}
            ]
        },
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
        "payor": [{"reference": "#org"}],
        "class": [
            {
                "type": {"coding": [{"code": "plan"}]},
                "value": "HMO-GOLD",
                "name": "Gold HMO",
            }
        ],
        "order": 1,
        "contained": [
            {"resourceType": "Organization", "id": "org", "active": True, "name": "OpenHMO"}
        ],
    }  # fmt: skip


def claim() -> dict:
    return {
        "resourceType": "Claim",
        "id": "clm-1",
        "status": "active",
        "type": {"coding": [{"code": "professional"}]},
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2024-03-02T09:30:00-05:00",
        "provider": {"reference": "Organization/o1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-1"}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"code": "99213"}]},
                "servicedDate": "2024-03-01",
                "unitPrice": {"value": 125.5, "currency": "USD"},
            }
        ],
    }


def bundle() -> dict:
    return {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "searchset",
        "total": 2,
        "entry": [
            {"fullUrl": "https://hmo.example/fhir/Coverage/cov-1", "resource": coverage()},
            {"fullUrl": "https://hmo.example/fhir/Claim/clm-1", "resource": claim()},
        ],
    }


def test_valid_bases():
    for resource in (coverage(), claim(), bundle()):
        assert fhir_problems(resource) == []
        assert_valid_fhir(resource)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets a dotted path (list indexes as numbers) to value."""

    def mutate(resource: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = resource
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict], None]:
    def mutate(resource: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = resource
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


# (base, mutation, the path the problem must name, words the problem must contain)
BROKEN = [
    # unknown elements
    pytest.param(
        coverage,
        _set("statusCode", "active"),
        "Coverage.statusCode",
        "unknown element",
        id="unknown-top-level",
    ),
    pytest.param(
        coverage,
        _set("payor.0.ref", "x"),
        "Coverage.payor[0].ref",
        "unknown element",
        id="unknown-nested",
    ),
    pytest.param(
        claim,
        _set("item.0.price", 1),
        "Claim.item[0].price",
        "unknown element",
        id="unknown-in-backbone",
    ),
    pytest.param(
        coverage,
        _set("contained.0.nme", "x"),
        "Coverage.contained[0].nme",
        "unknown element",
        id="unknown-in-contained",
    ),
    pytest.param(
        claim,
        _set("item.0.servicedDateTime", "2024-03-01"),
        "Claim.item[0].servicedDateTime",
        "unknown element",
        id="unknown-choice-name",
    ),
    # wrong JSON types
    pytest.param(
        coverage, _set("order", "1"), "Coverage.order", '"integer"', id="string-for-integer"
    ),
    pytest.param(
        coverage, _set("order", 1.5), "Coverage.order", '"integer"', id="decimal-for-integer"
    ),
    pytest.param(
        coverage,
        _set("class.0.value", 7),
        "Coverage.class[0].value",
        '"string"',
        id="number-for-string",
    ),
    pytest.param(
        coverage,
        _set("contained.0.active", "yes"),
        "Coverage.contained[0].active",
        '"boolean"',
        id="string-for-boolean",
    ),
    pytest.param(
        coverage,
        _set("payor", {"reference": "#org"}),
        "Coverage.payor",
        '"array"',
        id="object-for-array",
    ),
    pytest.param(
        coverage,
        _set("beneficiary", [{"reference": "Patient/p1"}]),
        "Coverage.beneficiary",
        '"object"',
        id="array-for-object",
    ),
    pytest.param(
        claim,
        _set("item.0.unitPrice.value", "125.50"),
        "Claim.item[0].unitPrice.value",
        '"number"',
        id="string-for-decimal",
    ),
    pytest.param(
        claim,
        _set("item.0.sequence", 0),
        "Claim.item[0].sequence",
        "minimum",
        id="zero-positiveInt",
    ),
    pytest.param(coverage, _set("class", []), "Coverage.class", "empty array", id="empty-array"),
    pytest.param(
        coverage, _set("period", {}), "Coverage.period", "empty object", id="empty-object"
    ),
    # bad codes (required bindings)
    pytest.param(
        coverage,
        _set("status", "current"),
        "Coverage.status",
        "is not one of",
        id="coverage-status",
    ),
    pytest.param(
        claim, _set("status", "Active"), "Claim.status", "is not one of", id="claim-status"
    ),
    pytest.param(claim, _set("use", "bill"), "Claim.use", "is not one of", id="claim-use"),
    pytest.param(
        bundle, _set("type", "searchSet"), "Bundle.type", "is not one of", id="bundle-type"
    ),
    pytest.param(
        bundle,
        _set("entry.0.resource.status", "current"),
        "Bundle.entry[0].resource.status",
        "is not one of",
        id="entry-status",
    ),
    pytest.param(
        claim, _set("status", " active"), "Claim.status", "is not one of", id="code-with-spaces"
    ),
    pytest.param(
        coverage,
        _set("identifier", [{"use": "primary", "value": "1"}]),
        "Coverage.identifier[0].use",
        "is not one of",
        id="identifier-use",
    ),
    pytest.param(
        claim,
        _set("item.0.unitPrice.currency", "USD "),
        "Claim.item[0].unitPrice.currency",
        "valid FHIR code",
        id="money-currency-not-code",
    ),
    # bad dates
    pytest.param(
        coverage,
        _set("period.start", "01/15/2024"),
        "Coverage.period.start",
        "valid FHIR dateTime",
        id="us-date",
    ),
    pytest.param(
        coverage,
        _set("period.end", "2024-13-01"),
        "Coverage.period.end",
        "valid FHIR dateTime",
        id="month-13",
    ),
    pytest.param(
        claim,
        _set("created", "2024-03-02T09:30:00"),
        "Claim.created",
        "valid FHIR dateTime",
        id="time-without-zone",
    ),
    pytest.param(
        claim,
        _set("item.0.servicedDate", "2024-03-01T00:00:00Z"),
        "Claim.item[0].servicedDate",
        "valid FHIR date",
        id="date-with-time",
    ),
    pytest.param(
        coverage,
        _set("meta.lastUpdated", "2024-03-01"),
        "Coverage.meta.lastUpdated",
        "valid FHIR instant",
        id="instant-without-time",
    ),
    pytest.param(
        bundle,
        _set("entry.1.resource.item.0.servicedDate", "2024/03/01"),
        "Bundle.entry[1].resource.item[0].servicedDate",
        "valid FHIR date",
        id="date-in-entry",
    ),
    # required elements and resourceType
    pytest.param(
        coverage,
        _delete("resourceType"),
        "$.resourceType",
        "required element is missing",
        id="no-resourceType",
    ),
    pytest.param(
        coverage,
        _delete("contained.0.resourceType"),
        "Coverage.contained[0].resourceType",
        "required element is missing",
        id="no-contained-resourceType",
    ),
    pytest.param(
        bundle,
        _set("entry.0.resource.resourceType", "Insurance"),
        "Bundle.entry[0].resource.resourceType",
        "not a FHIR R4 resource type",
        id="unknown-resourceType",
    ),
    pytest.param(
        coverage,
        _delete("beneficiary"),
        "Coverage.beneficiary",
        "required element is missing",
        id="no-beneficiary",
    ),
    pytest.param(
        coverage,
        _delete("status"),
        "Coverage.status",
        "required element is missing",
        id="no-status",
    ),
    pytest.param(
        bundle,
        _delete("entry.1.resource.created"),
        "Bundle.entry[1].resource.created",
        "required element is missing",
        id="no-created-in-entry",
    ),
    pytest.param(
        coverage,
        _set("extension", [{"valueString": "x"}]),
        "Coverage.extension[0].url",
        "required element is missing",
        id="no-extension-url",
    ),
]


@pytest.mark.parametrize(("base", "mutate", "path", "words"), BROKEN)
def test_broken_variant_is_rejected_naming_the_path(base, mutate, path, words):
    resource = base()
    mutate(resource)
    problems = fhir_problems(resource)
    assert any(p.startswith(f"{path}: ") and words in p for p in problems), problems
    with pytest.raises(AssertionError, match=path.replace("$", r"\$").replace("[", r"\[")):
        assert_valid_fhir(resource)


def test_only_the_broken_paths_are_reported():
    resource = coverage()
    resource["status"] = "bogus"
    resource["fooBar"] = 1
    resource["period"]["start"] = "2024-1-1"
    assert sorted(p.split(":")[0] for p in fhir_problems(resource)) == [
        "Coverage.fooBar",
        "Coverage.period.start",
        "Coverage.status",
    ]


def test_broken_corpus_examples_are_rejected():
    """Deep in real resources: an EOB's adjudication and a Bundle entry of HL7's examples."""
    eob_file = FHIR_CORPUS / "bluebutton_bfd_v2" / "eobReadCarrier.json"
    bundle_file = (
        FHIR_CORPUS / "r4_core_examples" / "Bundle" / "practitionerrole-examples-general.json"
    )
    if not (eob_file.exists() and bundle_file.exists()):
        pytest.skip(NO_CORPUS)
    eob = _unmask(_load(eob_file), "", [])
    i = next(i for i, a in enumerate(eob["item"][0]["adjudication"]) if "amount" in a)
    adjudication = f"ExplanationOfBenefit.item[0].adjudication[{i}]"
    eob["item"][0]["adjudication"][i]["amount"]["value"] = "12.00"
    eob["item"][0]["adjudication"][i]["reason"] = "CO-45"  # a CodeableConcept, not a string
    eob["item"][0]["adjudication"][i]["carcCode"] = "45"
    eob["status"] = "final"  # the schema's own enum
    eob["contained"][0]["resourceType"] = "Patients"
    problems = fhir_problems(eob)
    assert f'{adjudication}.amount.value: "12.00" is not of type "number"' in problems
    assert f'{adjudication}.reason: "CO-45" is not of type "object"' in problems
    assert f"{adjudication}.carcCode: unknown element" in problems
    assert any(p.startswith('ExplanationOfBenefit.status: "final" is not one of') for p in problems)
    assert any(p.startswith("ExplanationOfBenefit.contained[0].resourceType: ") for p in problems)

    example = _load(bundle_file)
    last = len(example["entry"]) - 1
    example["entry"][last]["resource"]["telecom"] = [{"system": "fax-machine", "value": "1"}]
    example["entry"][3]["resource"]["availableTime"][0]["daysOfWeek"] = ["monday"]
    problems = fhir_problems(example)
    entry = f"Bundle.entry[{last}].resource"
    assert any(
        p.startswith(f'{entry}.telecom[0].system: "fax-machine" is not one of') for p in problems
    )
    days = "Bundle.entry[3].resource.availableTime[0].daysOfWeek[0]"
    assert any(p.startswith(f'{days}: "monday" is not one of') for p in problems)


def test_primitive_given_only_by_its_extension_is_accepted():
    """FHIR lets a required primitive carry only an extension (_status), with no value."""
    resource = coverage()
    del resource["status"]
    resource["_status"] = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
             "valueCode": "unknown"}
        ]
    }  # fmt: skip
    assert fhir_problems(resource) == []


def test_null_place_holders_in_primitive_extension_arrays():
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "given": ["Ann", "B."],
                "_given": [
                    None,
                    {"extension": [{"url": "http://x.example/initial", "valueBoolean": True}]},
                ],
            }
        ],
    }
    assert fhir_problems(patient) == []
    patient["name"][0]["_given"][0] = "Ann"
    assert fhir_problems(patient) == ['Patient.name[0]._given[0]: "Ann" is not of type "null"']


def test_mended_schema_defects():
    """Two defects of HL7's R4 schema that would refuse valid FHIR (see fhir_validate.py)."""
    resource = coverage()
    # a no-break space and an ideographic space are ordinary characters of a FHIR string
    resource["class"][0]["name"] = "Gold\u00a0HMO \u3000 金"
    # a canonical may carry extensions like every primitive; HL7's schema had no _profile
    resource["meta"]["profile"] = [
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage"
    ]
    resource["meta"]["_profile"] = [
        {"extension": [{"url": "http://x.example/e", "valueCode": "a"}]}
    ]
    assert fhir_problems(resource) == []
    resource["class"][0]["name"] = "Gold\fHMO"  # a form feed is not (XML cannot carry it)
    assert fhir_problems(resource) == [
        'Coverage.class[0].name: "Gold\\fHMO" is not a valid FHIR string'
    ]


def test_not_an_object():
    problems = fhir_problems([coverage()])
    assert len(problems) == 1
    assert problems[0].startswith("$: ") and 'is not of type "object"' in problems[0]


# ------------------------------------------------------------------ the vendored files


def test_vendored_schema_is_the_documented_file():
    """fhir.schema.json.gz is the file README.md names, byte for byte once unzipped."""
    raw = gzip.decompress((fhir_validate.SCHEMA_DIR / "fhir.schema.json.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == (
        "73bc879b1476fea7e096fd71c5fb5967d8c48cc9ffc28706f66613f6a82af3cb"
    )
    schema = json.loads(raw)
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    fhir_versions = schema["definitions"]["CapabilityStatement"]["properties"]["fhirVersion"]
    assert "4.0.1" in fhir_versions["enum"]  # the 4.0.0 schema lacks it
    assert len(schema["discriminator"]["mapping"]) == 146


def test_supplement_holds_the_rules_the_schema_lacks():
    supplement = json.loads(fhir_validate.SUPPLEMENT.read_text(encoding="utf-8"))
    fm_status = ["active", "cancelled", "draft", "entered-in-error"]
    enums = supplement["requiredBindingEnums"]
    assert enums["Coverage"]["status"] == fm_status
    assert enums["Claim"]["status"] == fm_status
    assert "status" in supplement["requiredPrimitives"]["Coverage"]
    assert "url" in supplement["requiredPrimitives"]["Extension"]


def test_validator_is_compiled_once():
    first = fhir_validate._compiled()
    fhir_problems(coverage())
    fhir_problems(bundle())
    assert fhir_validate._compiled() is first


def test_throughput():
    """Hundreds of resources a test must cost little: a loose floor, far below what it does."""
    resources = [bundle(), coverage(), claim()] * 100
    fhir_problems(resources[0])  # compiled before the clock starts
    start = time.perf_counter()
    for resource in resources:
        assert fhir_problems(resource) == []
    elapsed = time.perf_counter() - start
    assert len(resources) / elapsed > 200, f"{len(resources) / elapsed:.0f} resources/s"


def test_input_is_not_modified():
    resource = bundle()
    resource["entry"][0]["resource"]["status"] = "bogus"
    before = copy.deepcopy(resource)
    assert fhir_problems(resource)
    assert resource == before
