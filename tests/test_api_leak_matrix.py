"""Every role against every endpoint: nothing leaks.

The world (api_support.seed_world) has two families and three provider offices. The
matrix says, for each of nine callers (anonymous, three members, three provider offices,
staff, a clearinghouse), what each endpoint must answer: which patients' records a read
or a search may show (the rules of docs/api.md), which calls are refused (401 without a
token, 403 without the role or scope), and that a record the caller may not see is a 404
exactly like a record that does not exist. A last test checks that the matrix names
every route the application serves, so a new endpoint cannot be added without its row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from api_support import client, fhir_claim, fhir_eligibility, seed_world, serve
from openhmo.api.app import create_app
from openhmo.db import make_engine, session_factory
from openhmo.enrollment.models import Member, MemberCoverage
from openhmo.interop.fhir.common import fhir_json

ROLES = ("anonymous", "ada", "sam", "lee", "welby", "casey", "heart", "staff", "clearinghouse")
MEMBERS = ("ada", "sam", "kid", "lee")
EVERYONE = frozenset(MEMBERS)

# Whose records each caller may see (docs/api.md): a subscriber herself and her minor
# child, not her adult spouse; a provider office the patients it treats or is PCP of.
SEES = {
    "anonymous": frozenset(),
    "ada": frozenset({"ada", "kid"}),
    "sam": frozenset({"sam"}),
    "lee": frozenset({"lee"}),
    "welby": frozenset({"ada", "sam", "kid"}),  # their PCP; billed their visits
    "casey": frozenset({"lee"}),  # Lee's PCP
    "heart": frozenset({"ada"}),  # referred Ada; billed her visit
    "staff": EVERYONE,
    "clearinghouse": EVERYONE,
}
# Which claims a provider office sees: only those it billed (minimum necessary).
BILLED = {
    "welby": {("ada", 0), ("sam", 0), ("kid", 0)},
    "casey": {("lee", 0)},
    "heart": {("ada", 1)},
}
MEMBER_READS = ("Patient", "Coverage", "ExplanationOfBenefit", "ClaimResponse", "ServiceRequest")
DIRECTORY = (
    "Practitioner",
    "PractitionerRole",
    "Location",
    "HealthcareService",
    "Organization",
    "InsurancePlan",
)


@dataclass
class Ids:
    numbers: dict[str, str]  # member -> member number
    coverages: dict[str, str]  # member -> Coverage id
    claims: dict[tuple[str, int], str]  # (member, n) -> claim id
    referral: str  # Ada's referral to Heart


@pytest.fixture(scope="module")
def matrix(module_engine):
    world = seed_world(module_engine)
    numbers = {"ada": world.ada, "sam": world.sam, "kid": world.kid, "lee": world.lee}
    with session_factory(module_engine)() as s:
        rows = s.execute(
            select(Member.member_number, MemberCoverage.coverage_id).join(
                MemberCoverage, MemberCoverage.member_id == Member.id
            )
        ).all()
    by_number = {n: f"{c}-{n}" for n, c in rows}
    ids = Ids(
        numbers=numbers,
        coverages={m: by_number[numbers[m]] for m in MEMBERS},
        claims={(m, i): claim for m in MEMBERS for i, claim in enumerate(world.claims[numbers[m]])},
        referral=world.referral,
    )
    with serve(module_engine) as base:
        clients = {role: client(base, None if role == "anonymous" else role) for role in ROLES}
        yield clients, ids, world
        for http in clients.values():
            http.close()


def _claim_visible(role: str, key: tuple[str, int]) -> bool:
    if role in BILLED:
        return key in BILLED[role]
    return key[0] in SEES[role]


def _refused(role: str, answer: httpx.Response) -> str | None:
    """A problem if an anonymous call was not 401 with an OperationOutcome."""
    if role == "anonymous" and answer.status_code != 401:
        return f"anonymous got {answer.status_code}, not 401"
    return None


def _ids(bundle: dict) -> set[str]:
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    }


@pytest.mark.parametrize("role", ROLES)
def test_reads_of_one_record_show_only_what_the_caller_may_see(matrix, role):
    clients, ids, _ = matrix
    http = clients[role]
    cases: list[tuple[str, bool]] = []
    for m in MEMBERS:
        cases.append((f"/fhir/Patient/{ids.numbers[m]}", m in SEES[role]))
        cases.append((f"/fhir/Coverage/{ids.coverages[m]}", m in SEES[role]))
    for key, claim in ids.claims.items():
        visible = _claim_visible(role, key)
        cases.append((f"/fhir/ExplanationOfBenefit/{claim}", visible))
        cases.append((f"/fhir/ClaimResponse/{claim}", visible))
    cases.append((f"/fhir/ServiceRequest/{ids.referral}", "ada" in SEES[role]))
    problems = []
    for path, visible in cases:
        answer = http.get(path)
        body = answer.json()
        expected = 401 if role == "anonymous" else 200 if visible else 404
        if answer.status_code != expected:
            problems.append(f"{path}: {answer.status_code}, expected {expected}")
        elif expected != 200 and body.get("resourceType") != "OperationOutcome":
            problems.append(f"{path}: a {expected} without an OperationOutcome")
    # A record one may not see answers exactly as one that does not exist.
    if role not in ("anonymous", "staff", "clearinghouse"):
        hidden = next(p for p, v in cases if not v and p.startswith("/fhir/Patient/"))
        unknown = http.get("/fhir/Patient/OHM999999999-00")
        seen = http.get(hidden)
        if (unknown.status_code, _issue(unknown)) != (seen.status_code, _issue(seen)):
            problems.append(f"{hidden} answers unlike an unknown patient: {seen.text}")
    assert not problems, "\n".join(problems)


def _issue(answer: httpx.Response) -> str:
    issue = answer.json()["issue"][0]
    return issue["code"]


@pytest.mark.parametrize("role", ROLES)
def test_searches_return_exactly_what_the_caller_may_see(matrix, role):
    clients, ids, _ = matrix
    http = clients[role]
    expected = {
        "Patient": {ids.numbers[m] for m in SEES[role]},
        "Coverage": {ids.coverages[m] for m in SEES[role]},
        "ExplanationOfBenefit": {c for k, c in ids.claims.items() if _claim_visible(role, k)},
        "ClaimResponse": {c for k, c in ids.claims.items() if _claim_visible(role, k)},
        "ServiceRequest": {ids.referral} if "ada" in SEES[role] else set(),
    }
    problems = []
    for resource_type in MEMBER_READS:
        answer = http.get(f"/fhir/{resource_type}", params={"_count": 100})
        problem = _refused(role, answer)
        if role == "anonymous":
            if problem:
                problems.append(f"{resource_type}: {problem}")
            continue
        if answer.status_code != 200:
            problems.append(f"{resource_type}: {answer.status_code} {answer.text[:200]}")
            continue
        got = _ids(answer.json())
        if got != expected[resource_type]:
            problems.append(
                f"{resource_type}: got {sorted(got)}, expected {sorted(expected[resource_type])}"
            )
        # Asking by patient for someone else's records finds nothing.
        for m in MEMBERS:
            if m in SEES[role] or resource_type == "Patient":
                continue
            other = http.get(
                f"/fhir/{resource_type}", params={"patient": f"Patient/{ids.numbers[m]}"}
            )
            if other.status_code != 200 or _ids(other.json()):
                problems.append(
                    f"{resource_type}?patient={m}: {other.status_code} "
                    f"{sorted(_ids(other.json())) if other.status_code == 200 else ''}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_the_directory_and_the_capability_statement_are_public(matrix, role):
    clients, _, _ = matrix
    http = clients[role]
    problems = []
    for path in ("/fhir/metadata", "/fhir/.well-known/smart-configuration"):
        if http.get(path).status_code != 200:
            problems.append(path)
    for resource_type in DIRECTORY:
        answer = http.get(f"/fhir/{resource_type}", params={"_count": 5})
        if answer.status_code != 200:
            problems.append(f"{resource_type}: {answer.status_code}")
            continue
        first = answer.json().get("entry", [{}])[0].get("resource")
        if first is None:
            problems.append(f"{resource_type}: the directory is empty")
            continue
        one = http.get(f"/fhir/{resource_type}/{first['id']}")
        if one.status_code != 200:
            problems.append(f"{resource_type}/{first['id']}: {one.status_code}")
    assert not problems, "\n".join(problems)


STAFF_READS = (
    "/fhir/AuditEvent",
    "/fhir/AuditEvent/{event}",
    "/staff/plans",
    "/staff/plans/{plan}",
    "/staff/plans/{plan}/premiums",
    "/staff/coverages/{coverage}/billing",
    "/staff/members/{member}/billing",
    "/staff/claims/pended",
    "/staff/claims/{claim}",
    "/staff/referrals",
    "/staff/referrals/{referral}",
    "/staff/prior-authorizations",
    "/staff/prior-authorizations/{auth}",
    "/staff/members/{member}/apps",
)
# Sent with empty bodies: staff get past the door (then a 400/404/422 for the body),
# everyone else is stopped at it; nothing is written either way.
STAFF_WRITES = (
    "/staff/coverages/{coverage}/payments",
    "/staff/claims/{claim}/lines/{line}/approve",
    "/staff/claims/{claim}/lines/{line}/deny",
    "/staff/referrals/{referral}/approve",
    "/staff/referrals/{referral}/deny",
    "/staff/prior-authorizations/{auth}/approve",
    "/staff/prior-authorizations/{auth}/deny",
    "/staff/members/{member}/apps/{grant}/end",
)


@pytest.mark.parametrize("role", ROLES)
def test_the_audit_and_the_staff_api_are_for_staff_only(matrix, role):
    clients, ids, _ = matrix
    http = clients[role]
    values = {
        "event": "phi-1",
        "plan": "openhmo-silver-hmo",
        "coverage": ids.coverages["ada"].split("-")[0],
        "member": ids.numbers["ada"],
        "claim": ids.claims[("ada", 0)],
        "line": "1",
        "referral": ids.referral,
        "auth": "PA000000001",
        "grant": "1",
    }
    calls = [("GET", p) for p in STAFF_READS] + [("POST", p) for p in STAFF_WRITES]
    problems = []
    for method, template in calls:
        path = template.format(**values)
        answer = http.request(method, path, json={} if method == "POST" else None)
        status = answer.status_code
        if role == "anonymous":
            ok = status == 401
        elif role == "staff":
            ok = status not in (401, 403) and status < 500
        else:
            ok = status == 403
        if not ok:
            problems.append(f"{method} {path}: {status}")
    assert not problems, "\n".join(problems)


# Who may write what: claims from those who bill (an office for its own claims) and
# clearinghouses; eligibility questions from anyone signed in, a member only about
# their own family; referrals from PCP offices and staff.
CLAIM_SUBMIT = {
    "anonymous": 401,
    "ada": 403,
    "sam": 403,
    "lee": 403,
    "welby": 200,
    "casey": 403,
    "heart": 403,
    "staff": 200,
    "clearinghouse": 200,
}
REFERRAL_CREATE = {
    "anonymous": 401,
    "ada": 403,
    "sam": 403,
    "lee": 403,
    "welby": 201,
    # Refused: as someone the office may not see (422 on subject) or, once it may (Heart
    # sees Sam after Welby referred him there), for referring as another PCP (403).
    "casey": (403, 422),
    "heart": (403, 422),
    "staff": 201,
    "clearinghouse": 403,
}


@pytest.mark.parametrize("role", ROLES)
def test_writes_are_allowed_only_to_whom_they_belong(matrix, role):
    clients, ids, world = matrix
    http = clients[role]
    headers = {"Content-Type": "application/fhir+json"}
    problems = []
    # Welby's claim for Kid: only Welby's office, staff and a clearinghouse may send it.
    claim = fhir_claim(ids.numbers["kid"], world.welby_npi, f"matrix-{role}")
    answer = http.post("/fhir/Claim/$submit", content=fhir_json(claim), headers=headers)
    if answer.status_code != CLAIM_SUBMIT[role]:
        problems.append(f"Claim/$submit: {answer.status_code}, expected {CLAIM_SUBMIT[role]}")
    # A referral of Sam by Welby (his PCP) to Heart.
    referral = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{ids.numbers['sam']}"},
        "requester": {"reference": f"Practitioner/{world.welby_npi}"},
        "performer": [{"reference": f"Practitioner/{world.heart_npi}"}],
        "reasonCode": [
            {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]}
        ],
        "quantityQuantity": {"value": 2},
        "occurrencePeriod": {"start": "2026-06-22", "end": "2026-09-22"},
        "authoredOn": "2026-06-22",
    }
    answer = http.post("/fhir/ServiceRequest", content=fhir_json(referral), headers=headers)
    if answer.status_code not in _statuses(REFERRAL_CREATE[role]):
        problems.append(
            f"ServiceRequest: {answer.status_code}, expected "
            f"{REFERRAL_CREATE[role]}: {answer.text[:300]}"
        )
    # Eligibility: is Kid covered? Providers and clearinghouses must know the birth date;
    # a member may ask about themself and their minor children only.
    birth = None if role in ("ada", "sam", "lee") else "2016-03-01"
    request = fhir_eligibility(ids.numbers["kid"], birth, purposes=("validation",))
    answer = http.post(
        "/fhir/CoverageEligibilityRequest/$submit", content=fhir_json(request), headers=headers
    )
    if role == "anonymous":
        if answer.status_code != 401:
            problems.append(f"eligibility: {answer.status_code}, expected 401")
    elif answer.status_code != 200:
        problems.append(f"eligibility: {answer.status_code} {answer.text[:300]}")
    else:
        body = answer.json()
        answered = body.get("outcome") == "complete" and "insurance" in body
        allowed = role in ("ada", "staff", "clearinghouse", "welby", "casey", "heart")
        if answered != allowed:
            problems.append(f"eligibility about Kid answered={answered}, expected {allowed}")
    assert not problems, "\n".join(problems)


def _statuses(expected: int | tuple[int, ...]) -> tuple[int, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_matrix_covers_every_route_the_application_serves():
    """The routes of the OpenAPI document against the calls the tests above make."""
    app = create_app(make_engine("sqlite://"), key="k" * 40)
    served = {
        (method.upper(), _template(path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        # tests/test_api_auth.py; tests/test_api_smart_launch.py (apps a member connects)
        if not path.startswith("/auth/")
    }
    covered = {
        ("GET", "/fhir/metadata"),
        ("GET", "/fhir/.well-known/smart-configuration"),
        ("POST", "/fhir/Claim/$submit"),
        ("POST", "/fhir/ServiceRequest"),
        ("POST", "/fhir/CoverageEligibilityRequest/$submit"),
    }
    for resource_type in MEMBER_READS + DIRECTORY:
        covered |= {("GET", f"/fhir/{resource_type}"), ("GET", f"/fhir/{resource_type}/{{}}")}
    covered |= {("GET", _template(p)) for p in STAFF_READS}
    covered |= {("POST", _template(p)) for p in STAFF_WRITES}
    missing = sorted(served - covered)
    assert not missing, f"routes with no row in the leak matrix: {missing}"
