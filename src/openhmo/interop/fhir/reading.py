"""Reading FHIR resources that callers send: structure, wrappers, references, identifiers.

Pure functions (no I/O): the API shell hands in the parsed JSON, and gets back the
resource to map, or a `FhirInputError` naming the element at fault as a FHIRPath
(`Claim.item[0].productOrService`), which the shell answers as a 400 OperationOutcome.

A request may send the resource itself, a Bundle whose first entry is the resource (the
other entries being what it references: Patient, Coverage, Practitioner...), or a
Parameters whose `resource` parameter is either (the $submit operations' input). The
structure is checked with fhir.resources' R4B models (R4B's financial, workflow and
directory resources are R4's); the codes and values we need are then checked where
they are mapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from openhmo.interop.fhir.common import (
    CPT_SYSTEM,
    HCPCS_SYSTEM,
    ICD9_SYSTEM,
    ICD10_SYSTEM,
    MEMBER_SYSTEM,
    NPI_SYSTEM,
    POS_SYSTEM,
    USD,
)

MAX_PROBLEMS = 10
_MEMBER_SYSTEMS = (MEMBER_SYSTEM,)
_NPI_SYSTEMS = (NPI_SYSTEM, "urn:oid:2.16.840.1.113883.4.6")
# The code systems we read codes in: ours (common.py) and their other names in use.
PROCEDURE_SYSTEMS = (
    CPT_SYSTEM,
    "urn:oid:2.16.840.1.113883.6.12",
    HCPCS_SYSTEM,
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "urn:oid:2.16.840.1.113883.6.285",
)
# WHO ICD-10 codes are read as ICD-10-CM; whether one is billable is the engine's to judge.
ICD10_SYSTEMS = (ICD10_SYSTEM, "urn:oid:2.16.840.1.113883.6.90", "http://hl7.org/fhir/sid/icd-10")
ICD9_SYSTEMS = (ICD9_SYSTEM, "urn:oid:2.16.840.1.113883.6.103")
REVENUE_SYSTEMS = (
    "https://www.nubc.org/CodeSystem/RevenueCodes",
    "urn:oid:2.16.840.1.113883.6.301.3",
    "http://terminology.hl7.org/CodeSystem/ex-revenue-center",
)
_POS_SYSTEMS = {POS_SYSTEM.lower(), POS_SYSTEM.lower() + ".html", "urn:oid:2.16.840.1.113883.6.50"}
# A literal reference: [base/]Type/id[/_history/version]
_LITERAL = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


class FhirInputError(ValueError):
    """What a caller sent that cannot be read: HTTP status, message, FHIRPaths at fault."""

    def __init__(
        self, message: str, expression: list[str] | str, *, status: int = 400, code: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = [expression] if isinstance(expression, str) else list(expression)
        self.status = status
        self.code = code


def parse_json(raw: bytes) -> Any:
    """The request body as JSON, decimals exact; text PostgreSQL cannot store is refused."""
    try:
        body = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirInputError(f"the body is not JSON: {exc}", "request") from None
    _check_text(body, "")
    return body


def _check_text(node: Any, path: str) -> None:
    # A NUL or an unpaired surrogate would fail only when PostgreSQL stores it (a 500).
    if isinstance(node, str):
        if "\x00" in node or any(0xD800 <= ord(c) <= 0xDFFF for c in node):
            raise FhirInputError("text may not hold NUL or unpaired surrogates", path or "request")
    elif isinstance(node, dict):
        for key, value in node.items():
            _check_text(key, path)
            _check_text(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_text(value, f"{path}[{i}]")


def fhir_path(root: str, loc: tuple | list) -> str:
    """A FHIRPath from a pydantic error location: ('item', 0, 'sequence') -> item[0].sequence."""
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("__root__",):
            out += f".{part}"
    return out


def check_structure(resource: Any, root: str) -> None:
    """Refuse what is not a valid R4 resource of its declared type, naming each element."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirInputError("a FHIR resource is a JSON object with a resourceType", root)
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError):
        raise FhirInputError(
            f"{resource['resourceType']!r} is not a FHIR R4 resource type", f"{root}.resourceType"
        ) from None
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        problems = exc.errors()[:MAX_PROBLEMS]
        paths = [fhir_path(root, p["loc"]) for p in problems]
        message = "; ".join(f"{path}: {p['msg']}" for path, p in zip(paths, problems, strict=True))
        raise FhirInputError(message, paths) from None


@dataclass
class Request:
    """The resource to act on, where it sits in the body, and what it can reference."""

    resource: dict[str, Any]
    root: str  # FHIRPath of the resource in the body: "Claim", "Bundle.entry[0].resource"
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (fullUrl, resource)

    def resolve(self, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        """The resource a Reference points to, if the request carries it (contained or bundled)."""
        if not ref or not isinstance(ref.get("reference"), str):
            return None
        target = ref["reference"]
        if target.startswith("#"):
            return next(
                (c for c in self.resource.get("contained", []) if c.get("id") == target[1:]), None
            )
        for full_url, resource in self.entries:
            typed = f"{resource.get('resourceType')}/{resource.get('id')}"
            if target in (full_url, typed) or full_url.endswith("/" + target):
                return resource
        return None


def unwrap(body: Any, resource_type: str) -> Request:
    """The `resource_type` a request sends: itself, first in a Bundle, or in Parameters."""
    root = resource_type
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        check_structure(body, "Parameters")
        found = [
            (i, p["resource"])
            for i, p in enumerate(body.get("parameter", []))
            if p.get("name") == "resource" and "resource" in p
        ]
        if len(found) != 1:
            raise FhirInputError(
                "Parameters carries one parameter 'resource' holding the request", "Parameters"
            )
        body, root = found[0][1], f"Parameters.parameter[{found[0][0]}].resource"
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        bundle_root = "Bundle" if root == resource_type else root
        check_structure(body, bundle_root)
        entries = body.get("entry") or []
        first = entries[0].get("resource") if entries else None
        if not isinstance(first, dict) or first.get("resourceType") != resource_type:
            raise FhirInputError(
                f"the Bundle's first entry must be the {resource_type}", f"{bundle_root}.entry[0]"
            )
        carried = [(e.get("fullUrl", ""), e["resource"]) for e in entries if "resource" in e]
        return Request(first, f"{bundle_root}.entry[0].resource", carried)
    if not isinstance(body, dict) or body.get("resourceType") != resource_type:
        kind = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise FhirInputError(
            f"expected a {resource_type} (or a Bundle or Parameters holding one), not {kind!r}",
            f"{root}.resourceType" if isinstance(body, dict) else root,
        )
    check_structure(body, root)
    return Request(body, root)


def identifier_value(identifiers: Any, systems: tuple[str, ...]) -> str | None:
    """The value of the first Identifier (or list of them) in one of `systems`."""
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for ident in identifiers or []:
        if ident.get("system") in systems and str(ident.get("value", "")).strip():
            return str(ident["value"]).strip()
    return None


def literal_id(ref: dict[str, Any] | None, resource_type: str) -> str | None:
    """The id in a literal reference to `resource_type` ("Patient/X" -> "X"), else None."""
    target = (ref or {}).get("reference")
    if not isinstance(target, str) or target.startswith(("#", "urn:")):
        return None
    match = _LITERAL.match(target)
    if match is None or match.group(1) != resource_type:
        return None
    return match.group(2)


@dataclass(frozen=True)
class Person:
    """Who a request names as the patient: member number, birth date, and where from."""

    member_number: str | None
    birth_date: str | None  # as sent (YYYY, YYYY-MM or YYYY-MM-DD)
    display: str | None  # a name to echo when the person is not one of ours


def person(request: Request, ref: dict[str, Any] | None) -> Person:
    """The member a Patient reference names: by identifier, the Patient it points to, or its id.

    The member number is looked for in our member-number system on the reference's own
    identifier, then on the Patient resource the request carries; failing both, the id of
    a literal reference (`Patient/OHM000000001-00`: our Patient ids are member numbers).
    """
    ref = ref or {}
    patient = request.resolve(ref)
    number = identifier_value(ref.get("identifier"), _MEMBER_SYSTEMS)
    if number is None and patient is not None:
        number = identifier_value(patient.get("identifier"), _MEMBER_SYSTEMS)
    if number is None:
        number = literal_id(ref, "Patient")
    birth = patient.get("birthDate") if patient is not None else None
    display = ref.get("display")
    if display is None and patient is not None:
        names = patient.get("name") or [{}]
        parts = [*names[0].get("given", []), names[0].get("family", "")]
        display = names[0].get("text") or " ".join(p for p in parts if p) or None
    return Person(number.upper() if number else None, birth, display)


def npi(request: Request, ref: dict[str, Any] | None, path: str) -> str | None:
    """The NPI a reference to a provider carries, or None; a malformed NPI is refused.

    Looked for on the reference's identifier, then on the Practitioner, Organization or
    PractitionerRole it points to in the request; failing both, the id of a literal
    `Practitioner/<NPI>` reference (our Practitioner ids are NPIs).
    """
    ref = ref or {}
    value = identifier_value(ref.get("identifier"), _NPI_SYSTEMS)
    where = f"{path}.identifier.value"
    if value is None:
        target = request.resolve(ref)
        if target is not None:
            value = identifier_value(target.get("identifier"), _NPI_SYSTEMS)
            where = f"{path}.reference"
    if value is None:
        candidate = literal_id(ref, "Practitioner")
        if candidate is not None and candidate.isdigit() and len(candidate) == 10:
            value = candidate
    if value is not None and not (value.isdigit() and len(value) == 10):
        raise FhirInputError(f"an NPI is 10 digits, not {value!r}", where)
    return value


def codes(concept: Any, systems: tuple[str, ...]) -> list[str]:
    """The codes of a CodeableConcept in any of `systems`, in order."""
    if not isinstance(concept, dict):
        return []
    return [
        str(c["code"]).strip()
        for c in concept.get("coding", [])
        if c.get("system") in systems and str(c.get("code", "")).strip()
    ]


def place_of_service(concept: Any) -> str | None:
    """The CMS place of service code of a CodeableConcept (its system's spellings vary)."""
    if not isinstance(concept, dict):
        return None
    for c in concept.get("coding", []):
        if str(c.get("system", "")).lower().rstrip("/") in _POS_SYSTEMS and c.get("code"):
            return str(c["code"]).strip()
    return None


def service_day(value: Any, path: str) -> date:
    """The day of a FHIR date or dateTime; a year or a month alone is refused."""
    text = str(value)
    if len(text) < 10:
        raise FhirInputError(f"a date of service needs a day, not {text!r}", path)
    return date.fromisoformat(text[:10])


def amount(value: Any, path: str) -> Decimal | None:
    """A Money's value, exact; amounts are in USD."""
    if not isinstance(value, dict) or value.get("value") is None:
        return None
    if value.get("currency", USD) != USD:
        raise FhirInputError(f"amounts are in USD, not {value['currency']!r}", f"{path}.currency")
    return Decimal(str(value["value"]))
