"""SMART-style scopes: `context/Resource.action`, and what each role may be granted.

context is `patient` (a member's own data), `user` (what the signed-in person may see)
or `system` (a back-end client, bulk); Resource is a FHIR resource type, a staff API
area (Plan, Premium, PendedClaim, Referral) or `*`; action is `read`, `write` or `*`
(SMART App Launch 1.0 scopes). A token carries the scopes asked for that its account
allows; a call needs one scope that covers its resource and action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*)$")

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
    """A scope that is not SMART-style, or not one the account may have."""


@dataclass(frozen=True)
class Scope:
    context: str
    resource: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        match = _SCOPE.match(text)
        if match is None:
            raise ScopeError(
                f"scope {text!r} is not context/Resource.action "
                "(context patient, user or system; action read, write or *)"
            )
        return cls(*match.groups())

    def covers(self, other: Scope) -> bool:
        return (
            self.context == other.context
            and self.resource in ("*", other.resource)
            and self.action in ("*", other.action)
        )

    def __str__(self) -> str:
        return f"{self.context}/{self.resource}.{self.action}"


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
        if not any(a.covers(scope) for a in allowed_scopes):
            raise ScopeError(f"scope {scope} is not allowed for this account")
        granted.append(str(scope))
    return " ".join(granted)


def allows(scopes: str, resource: str, action: str) -> bool:
    """Whether a token's scopes cover `action` on `resource` in any context."""
    return any(
        s.resource in ("*", resource) and s.action in ("*", action) for s in parse_all(scopes)
    )


def role_scopes(role: str) -> str:
    return " ".join(ROLE_SCOPES[role])


def check_account_scopes(role: str, scopes: str) -> str:
    """Scopes for a new account: each must be within its role's (the default: all of them)."""
    if not scopes:
        return role_scopes(role)
    return grant(scopes, role_scopes(role))
