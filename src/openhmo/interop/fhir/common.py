"""What every FHIR resource we write shares: OperationOutcome, Bundles, codings, money."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from openhmo.reference.codes import carc_description, group_description

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
MEMBER_SYSTEM = "https://openhmo.org/fhir/sid/member-number"
CLAIM_SYSTEM = "https://openhmo.org/fhir/sid/claim-id"
REFERRAL_SYSTEM = "https://openhmo.org/fhir/sid/referral-number"
PLAN_SYSTEM = "https://openhmo.org/fhir/sid/plan-key"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9_SYSTEM = "http://hl7.org/fhir/sid/icd-9-cm"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC_SYSTEM = "https://x12.org/codes/remittance-advice-remark-codes"
PAYER_ID_SYSTEM = "https://openhmo.org/fhir/sid/payer-id"
GROUP_CODE_SYSTEM = "https://x12.org/codes/claim-adjustment-group-codes"
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
USD = "USD"

# OperationOutcome.issue.code (http://hl7.org/fhir/issue-type) for each HTTP status we send.
ISSUE_FOR_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
}


def operation_outcome(
    status: int,
    diagnostics: str,
    *,
    code: str | None = None,
    severity: str = "error",
    expression: list[str] | None = None,
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code or ISSUE_FOR_STATUS.get(status, "processing"),
        "diagnostics": diagnostics,
    }
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def money(cents: int | None) -> dict[str, Any]:
    """A FHIR Money from integer cents, as an exact Decimal (fhir_json writes it as a number)."""
    return {"value": Decimal(0 if cents is None else cents).scaleb(-2), "currency": USD}


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is no FHIR decimal")
        return orjson.Fragment(str(value))  # the digits as they are: 75.00 stays 75.00
    raise TypeError(f"{type(value).__name__} is not JSON")


def fhir_json(resource: dict[str, Any]) -> bytes:
    """A resource as FHIR JSON (UTF-8); Decimals are written as JSON numbers, digit for
    digit. orjson: eight times simplejson on a page of the directory (20 vs 160 µs)."""
    return orjson.dumps(resource, default=_exact, option=orjson.OPT_NON_STR_KEYS)


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


def cas_reason(adjustment: dict[str, Any]) -> dict[str, Any]:
    """An adjustment's reason: its CARC, group code and RARC, as the 835 would send them."""
    group, carc, rarc = adjustment["group"], adjustment["carc"], adjustment.get("rarc")
    codings = [
        coding(CARC_SYSTEM, carc, carc_description(carc) or None),
        coding(GROUP_CODE_SYSTEM, group, group_description(group) or None),
    ]
    if rarc:
        codings.append(coding(RARC_SYSTEM, rarc))
    return {"coding": codings, "text": f"{group}-{carc}" + (f" {rarc}" if rarc else "")}


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict:
    out = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        out["display"] = display
    return out


def searchset(
    base_url: str,
    resource_type: str,
    resources: list[dict[str, Any]],
    *,
    total: int,
    params: list[tuple[str, str]],
    count: int,
    offset: int,
    included: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A searchset Bundle of one page, with self/first/previous/next links."""
    base = f"{base_url.rstrip('/')}/{resource_type}"
    kept = [(k, v) for k, v in params if k not in ("_count", "_offset")]

    def link(relation: str, at: int) -> dict[str, str]:
        query = urlencode([*kept, ("_count", str(count)), ("_offset", str(at))])
        return {"relation": relation, "url": f"{base}?{query}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if offset + count < total:
        links.append(link("next", offset + count))
    entries = [
        {
            "fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    entries += [
        {
            "fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in included or []
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:  # FHIR JSON allows no empty arrays: a search that found nothing has no entry
        bundle["entry"] = entries
    return bundle
