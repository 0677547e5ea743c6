"""SMART scopes: `context/Resource.permissions`, and what each role may be granted.

context is `patient` (a member's own data), `user` (what the signed-in person may see)
or `system` (a back-end client, bulk); Resource is a FHIR resource type, a staff API
area (Plan, Premium, PendedClaim, Referral, ConnectedApp) or `*`. Permissions are
written either as SMART App Launch 1.0 has them, `read`, `write` or `*`, or as 2.0 has
them, the letters of `cruds` that apply, in that order (create, read, update, delete,
search): `.rs` is 1.0's `.read`, `.cud` its `.write`.

A token carries the scopes asked for that its account allows, written as they were
asked. A call needs a scope that covers its resource and its action: reading one
resource by id (r); searching (s); writing, which in the FHIR API is always creating
(c: a claim, a referral request, an eligibility request; staff taking a payment); or
staff deciding on what exists (u: approving or denying a pended line, a referral or an
authorization, ending a member's app). 2.0's finer scopes (`?category=...`) are
refused: nothing here narrows a search by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<resource>[A-Za-z]+|\*)"
    r"\.(?P<permissions>read|write|\*|(?=[cruds])c?r?u?d?s?)$"
)
# SMART 1.0's permissions as 2.0's letters.
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
# What each action of a route needs.
ACTIONS = {"read": "r", "search": "s", "write": "c", "update": "u"}

# The most each role may be granted (an account may be given less).
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "member": ("patient/*.read", "patient/CoverageEligibilityRequest.write"),
    "provider": (
        "user/*.read",
        "user/Claim.write",
        "user/ServiceRequest.write",
        "user/CoverageEligibilityRequest.write",
    ),
    "staff": ("user/*.*",),
    "system": ("system/*.read", "system/Claim.write", "system/CoverageEligibilityRequest.write"),
}


class ScopeError(ValueError):
    """A scope that is not a SMART scope, or not one the account may have."""


@dataclass(frozen=True)
class Scope:
    context: str
    resource: str
    permissions: str  # the letters of "cruds" it grants
    text: str  # as it was written (1.0 or 2.0)

    @classmethod
    def parse(cls, text: str) -> Scope:
        match = _SCOPE.match(text)
        if match is None:
            raise ScopeError(
                f"scope {text!r} is not context/Resource.permissions (context patient, user "
                "or system; permissions read, write or *, or the letters of cruds in that "
                "order, e.g. .rs)"
            )
        written = match["permissions"]
        return cls(match["context"], match["resource"], _V1.get(written, written), text)

    def allows(self, resource: str, action: str) -> bool:
        return self.resource in ("*", resource) and ACTIONS[action] in self.permissions

    def __str__(self) -> str:
        return self.text


def parse_all(text: str) -> list[Scope]:
    return [Scope.parse(part) for part in text.split() if part]


def grant(requested: str | None, allowed: str) -> str:
    """The scopes a token gets: those asked for that `allowed` covers (all if none asked).

    Asking for a scope the account may not have is an error (RFC 6749 invalid_scope),
    not a quiet narrowing, so a client learns at once that it will not get it.
    """
    allowed_scopes = parse_all(allowed)
    if not requested:
        return " ".join(str(s) for s in allowed_scopes)
    # SMART's launch and identity scopes ask for no data: accepted, not carried.
    wanted = [p for p in requested.split() if p not in ("openid", "fhirUser", "offline_access")]
    granted = []
    for scope in parse_all(" ".join(wanted)):
        # What the account's scopes allow together: `.cr` of a resource is allowed by a
        # `.read` of every resource and a `.write` of that one.
        letters = {
            letter
            for a in allowed_scopes
            if a.context == scope.context and a.resource in ("*", scope.resource)
            for letter in a.permissions
        }
        if not set(scope.permissions) <= letters:
            raise ScopeError(f"scope {scope} is not allowed for this account")
        granted.append(str(scope))
    return " ".join(granted)


# Asked on every call, with the few scope strings tokens carry.
@lru_cache(maxsize=4096)
def allows(scopes: str, resource: str, action: str) -> bool:
    """Whether a token's scopes allow `action` (read, search, write) on `resource`."""
    return any(s.allows(resource, action) for s in parse_all(scopes))


def role_scopes(role: str) -> str:
    return " ".join(ROLE_SCOPES[role])


def check_account_scopes(role: str, scopes: str) -> str:
    """Scopes for a new account: each must be within its role's (the default: all of them)."""
    if not scopes:
        return role_scopes(role)
    return grant(scopes, role_scopes(role))
