"""Referrals and prior authorizations: requesting, the plan's rules, staff decisions.

DOMAIN.md §1: in an HMO (and a POS plan) a specialist needs the PCP's referral, except
for the direct-access services. A referral is made by the member's own PCP on its first
day, to an in-network specialist or to a specialty (a NUCC taxonomy prefix), for a
number of visits in a validity window, with a diagnosis. The plan design's
`referrals` rules approve it at once (`decide_referral`, a pure function) or leave it
`requested` for staff with the reason. A prior authorization is always reviewed by
staff for now (the design has no auto-approval list yet).

States and transitions (anything else is refused):

    referral:           requested -> approved | denied      (rules or staff)
                        approved  -> expired                 (expire_referrals, past valid_to)
                        approved  -> exhausted               (mark_exhausted, visits used up)
    prior authorization: requested -> approved | denied
                        approved  -> expired

Every transition goes to the change history with who, when, why. Functions take a
session and leave committing to the caller, so one request is one transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from openhmo.adjudication.context import SCHEMAS, frame
from openhmo.categories import ServiceCategory
from openhmo.db.types import utcnow
from openhmo.enrollment.models import Member
from openhmo.enrollment.pcp import pcp_of
from openhmo.enrollment.service import (
    EnrollmentError,
    add_notice,
    coverage_plan,
    current_coverage,
)
from openhmo.history.record import record_change
from openhmo.network.membership import is_in_network
from openhmo.network.models import Provider
from openhmo.network.taxonomy import search_prefix, taxonomy_table
from openhmo.plans.design import OutOfNetwork, PlanDesign, ReferralRules
from openhmo.plans.store import design_of
from openhmo.reference.icd10 import is_billable, normalise
from openhmo.referrals.models import PriorAuthorization, Referral

REQUESTED = "requested"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
EXHAUSTED = "exhausted"

REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({APPROVED, DENIED}),
    APPROVED: frozenset({EXPIRED, EXHAUSTED}),
}
PRIOR_AUTH_TRANSITIONS: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({APPROVED, DENIED}),
    APPROVED: frozenset({EXPIRED}),
}

Source = Literal["cli", "api", "x12-278", "demo"]
SOURCES: tuple[str, ...] = ("cli", "api", "x12-278", "demo")

# Who the history names for what the plan's rules and the scheduled jobs decide.
RULES_ACTOR = "system:referral-rules"
EXPIRY_ACTOR = "system:expiry"
CLAIMS_ACTOR = "system:claims"

# CPT (five digits, or four and a letter for category II/III) and HCPCS level II.
_PROCEDURE = re.compile(r"^(?:[0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$")
_PREFIX = re.compile(r"^[0-9]{3}[0-9A-Z]{0,6}X?$")


class ReferralError(EnrollmentError):
    """A referral or prior authorization request, or a decision on one, the rules refuse.

    Like EnrollmentError: `reason` for staff and logs, `message_id` and `params` for the
    member's own text (`member_text(language)`); a list param holds message ids.
    """


# --- the rules, pure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the plan's rules decide on a new referral: approved at once, or staff review."""

    status: Literal["approved", "requested"]
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def window_days(valid_from: date, valid_to: date) -> int:
    """A referral's length as the rules measure it: valid_to - valid_from, in days."""
    return (valid_to - valid_from).days


def specialty_name(prefix: str) -> str:
    """The NUCC name of a taxonomy code or prefix ('207X' -> 'Orthopaedic Surgery')."""
    prefix = prefix.strip().upper()
    table = taxonomy_table()
    if prefix in table:
        return table[prefix].specialty
    found = [t for code, t in table.items() if code.startswith(prefix)]
    for names in ({t.specialty for t in found}, {t.classification for t in found}):
        if len(names) == 1:
            return names.pop()
    return prefix


def _overlaps(taxonomy: str, review: str) -> bool:
    """Whether a referral to `taxonomy` (a code or a prefix) reaches review prefix `review`.

    A classification-level code in the review list ('208600000X') stands for its whole
    classification; a referral to a broad prefix ('207') reaches everything under it.
    """
    taxonomy, review = taxonomy.strip().upper(), search_prefix(review)
    return taxonomy.startswith(review) or review.startswith(taxonomy)


def decide_referral(
    rules: ReferralRules,
    *,
    visits: int,
    valid_from: date,
    valid_to: date,
    taxonomies: Iterable[str],
) -> Decision:
    """Approve at once, or leave for staff with every reason (the plan's `referrals` rules).

    `taxonomies`: the specialist's taxonomy code and/or the referral's specialty prefix.
    """
    reasons = []
    if visits > rules.auto_approve_max_visits:
        reasons.append(f"more than {rules.auto_approve_max_visits} visits ({visits} asked)")
    days = window_days(valid_from, valid_to)
    if days > rules.auto_approve_max_days:
        reasons.append(f"valid for {days} days, more than {rules.auto_approve_max_days}")
    taxonomies = [t for t in taxonomies if t]
    for review in rules.review_specialties:
        if any(_overlaps(t, review) for t in taxonomies):
            name = specialty_name(search_prefix(review)).lower()
            reasons.append(f"{name} referrals are reviewed by staff")
    if reasons:
        return Decision(REQUESTED, tuple(reasons))
    return Decision(
        APPROVED,
        (
            f"auto-approved: {visits} visit(s) in {days} days, within the plan's "
            f"{rules.auto_approve_max_visits} visits and {rules.auto_approve_max_days} days",
        ),
    )


# --- shared checks -----------------------------------------------------------------------


def _plan_on(
    session: Session, member: Member, day: date, kind: Literal["referral", "prior_auth"]
) -> PlanDesign:
    coverage = current_coverage(session, member, day)
    if coverage is None:
        raise ReferralError(
            f"{member.name} ({member.member_number}) is not covered on {day}",
            f"{kind}.refused.not_covered",
            {"name": member.name, "date": day.isoformat()},
        )
    return design_of(coverage_plan(session, coverage))


def _in_network(session: Session, design: PlanDesign, provider: Provider, day: date) -> bool:
    if design.rules.out_of_network is OutOfNetwork.ANY_PROVIDER and not design.network:
        return True  # one tier for every provider: nobody is out of network
    return bool(design.network) and is_in_network(session, provider.id, design.network, day)


def _diagnoses(codes: Sequence[str], kind: Literal["referral", "prior_auth"]) -> list[str]:
    if isinstance(codes, str):
        codes = [codes]
    if not codes:
        raise ReferralError(
            f"a {'referral' if kind == 'referral' else 'prior authorization'} needs a diagnosis",
            f"{kind}.refused.no_diagnosis",
        )
    bad = [c for c in codes if not is_billable(c)]
    if bad:
        listed = ", ".join(bad)
        raise ReferralError(
            f"not a billable ICD-10-CM diagnosis code: {listed}",
            f"{kind}.refused.invalid_diagnosis",
            {"codes": listed},
        )
    return [normalise(c) for c in codes]


def _dates(valid_from: date, valid_to: date, kind: Literal["referral", "prior_auth"]) -> None:
    if valid_to < valid_from:
        raise ReferralError(
            f"valid_to {valid_to} is before valid_from {valid_from}",
            f"{kind}.refused.dates",
            {"valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat()},
        )


def _source(source: str) -> str:
    if source not in SOURCES:
        raise ReferralError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    return source


def _service(category: ServiceCategory) -> list[str]:
    """A member-text param naming the service: its catalogue message, translated when shown."""
    return [f"category.{category.value}"]


# --- referrals ---------------------------------------------------------------------------


def _referral_not_needed(design: PlanDesign, category: ServiceCategory) -> str | None:
    """Why this plan needs no referral for the category (None when it needs one)."""
    if not design.rules.referral_required:
        return f"{design.name} does not require referrals: no referral is needed for {category}"
    if category in design.referrals.direct_access:
        return f"no referral is needed for {category}: it is direct access under {design.name}"
    if category not in design.referrals.required_for:
        return f"no referral is needed for {category} under {design.name}"
    return None


def _check_prefix(prefix: str) -> str:
    prefix = prefix.strip().upper()
    if not _PREFIX.match(prefix) or not any(c.startswith(prefix) for c in taxonomy_table()):
        raise ReferralError(
            f"specialty {prefix!r} is not a NUCC provider taxonomy code or prefix",
            "referral.refused.unknown_specialty",
            {"specialty": prefix},
        )
    return prefix


def request_referral(
    session: Session,
    *,
    member: Member,
    referring_provider: Provider,
    specialist: Provider | None = None,
    specialty_prefix: str | None = None,
    category: ServiceCategory | str = ServiceCategory.SPECIALIST_VISIT,
    visits: int,
    valid_from: date,
    valid_to: date | None = None,
    diagnosis_codes: Sequence[str],
    actor: str,
    source: Source = "api",
) -> Referral:
    """A PCP's referral, checked, stored, and approved at once or left for staff.

    Refused (ReferralError, nothing stored) when the member is not covered on
    valid_from; no referral is needed (the plan needs none, the category is direct
    access or not in `required_for`); the referring provider is not the member's PCP
    on valid_from; neither a specialist nor a specialty is given; the specialist is not
    in the plan's network on valid_from; the specialty is not a taxonomy prefix; a
    diagnosis is missing or not billable; visits < 1; valid_to is before valid_from.
    valid_to defaults to valid_from + the plan's `default_valid_days`.
    """
    _source(source)
    category = ServiceCategory(category)
    design = _plan_on(session, member, valid_from, "referral")
    why_not = _referral_not_needed(design, category)
    if why_not:
        raise ReferralError(
            why_not,
            "referral.refused.not_needed",
            {"service": _service(category), "plan": design.name},
        )
    pcp = pcp_of(session, member, valid_from)
    if pcp is None or pcp.provider_id != referring_provider.id:
        raise ReferralError(
            f"{referring_provider.display_name} (NPI {referring_provider.npi}) is not "
            f"{member.name}'s PCP on {valid_from}: only the member's own PCP refers",
            "referral.refused.not_pcp",
            {
                "provider": referring_provider.display_name,
                "name": member.name,
                "date": valid_from.isoformat(),
            },
        )
    if specialist is None and not (specialty_prefix or "").strip():
        raise ReferralError(
            "a referral names a specialist or a specialty", "referral.refused.no_specialist"
        )
    if specialist is not None and not _in_network(session, design, specialist, valid_from):
        raise ReferralError(
            f"{specialist.display_name} (NPI {specialist.npi}) is not in the network of "
            f"{design.name} on {valid_from}",
            "referral.refused.specialist_not_in_network",
            {
                "specialist": specialist.display_name,
                "plan": design.name,
                "date": valid_from.isoformat(),
            },
        )
    prefix = _check_prefix(specialty_prefix) if (specialty_prefix or "").strip() else None
    diagnoses = _diagnoses(diagnosis_codes, "referral")
    if visits < 1:
        raise ReferralError(
            f"a referral is for at least one visit (got {visits})",
            "referral.refused.no_visits",
            {"visits": visits},
        )
    if valid_to is None:
        valid_to = valid_from + timedelta(days=design.referrals.default_valid_days)
    _dates(valid_from, valid_to, "referral")

    decision = decide_referral(
        design.referrals,
        visits=visits,
        valid_from=valid_from,
        valid_to=valid_to,
        taxonomies=[specialist.taxonomy_code if specialist else None, prefix],
    )
    referral = Referral(
        referral_number=f"pending-{uuid.uuid4().hex[:12]}",
        member_id=member.id,
        referring_provider_id=referring_provider.id,
        specialist_provider_id=specialist.id if specialist else None,
        specialty_prefix=prefix,
        category=category.value,
        diagnosis_codes=diagnoses,
        visits=visits,
        valid_from=valid_from,
        valid_to=valid_to,
        status=REQUESTED,
        status_reason="",
        source=source,
    )
    session.add(referral)
    session.flush()
    referral.referral_number = f"R{referral.id:09d}"
    to = specialist.display_name if specialist else specialty_name(prefix)
    record_change(
        session,
        actor=actor,
        entity="referral",
        entity_id=referral.referral_number,
        action="referral_requested",
        member_id=member.id,
        effective_date=valid_from,
        reason=f"referred by {referring_provider.display_name} to {to}",
        changes={
            "status": REQUESTED,
            "referring_npi": referring_provider.npi,
            "specialist_npi": specialist.npi if specialist else None,
            "specialty_prefix": prefix,
            "category": category.value,
            "visits": visits,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "diagnosis_codes": diagnoses,
            "source": source,
        },
    )
    if decision.status == APPROVED:
        _move(session, referral, APPROVED, RULES_ACTOR, decision.reason)
    else:
        referral.status_reason = decision.reason
        record_change(
            session,
            actor=RULES_ACTOR,
            entity="referral",
            entity_id=referral.referral_number,
            action="referral_sent_to_review",
            member_id=member.id,
            effective_date=valid_from,
            reason=decision.reason,
            changes={"status": REQUESTED},
        )
        add_notice(
            session, member, "referral.notice.pending", referral_number=referral.referral_number
        )
    session.flush()
    return referral


def _referral_to(session: Session, referral: Referral) -> str:
    if referral.specialist_provider_id is not None:
        return session.get(Provider, referral.specialist_provider_id).display_name
    return specialty_name(referral.specialty_prefix or "")


def _move(session: Session, referral: Referral, status: str, actor: str, reason: str) -> None:
    """Move a referral to `status`, record it, and tell the member of a decision."""
    before = referral.status
    if status not in REFERRAL_TRANSITIONS.get(before, frozenset()):
        raise ReferralError(
            f"referral {referral.referral_number} is {before}: it cannot become {status}"
        )
    referral.status = status
    referral.status_reason = reason
    if status in (APPROVED, DENIED):
        referral.decided_by = actor
        referral.decided_at = utcnow()
    record_change(
        session,
        actor=actor,
        entity="referral",
        entity_id=referral.referral_number,
        action=f"referral_{status}",
        member_id=referral.member_id,
        effective_date=referral.valid_from,
        reason=reason,
        changes={"status": [before, status]},
    )
    member = session.get(Member, referral.member_id)
    if status == APPROVED:
        add_notice(
            session,
            member,
            "referral.notice.approved",
            referral_number=referral.referral_number,
            specialist=_referral_to(session, referral),
            visits=referral.visits,
            valid_from=referral.valid_from.isoformat(),
            valid_to=referral.valid_to.isoformat(),
        )
    elif status == DENIED:
        add_notice(
            session,
            member,
            "referral.notice.denied",
            referral_number=referral.referral_number,
            reason=reason,
        )


def get_referral(session: Session, referral_number: str) -> Referral:
    referral = session.scalar(
        select(Referral).where(Referral.referral_number == referral_number.strip().upper())
    )
    if referral is None:
        raise ReferralError(f"no referral {referral_number}")
    return referral


def _staff_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReferralError(f"staff {what} with a reason")
    return reason


def approve_referral(
    session: Session, referral_number: str, *, actor: str, reason: str
) -> Referral:
    """Staff approve a referral waiting for review (only from `requested`)."""
    referral = get_referral(session, referral_number)
    _move(session, referral, APPROVED, actor, _staff_reason(reason, "approve"))
    session.flush()
    return referral


def deny_referral(session: Session, referral_number: str, *, actor: str, reason: str) -> Referral:
    """Staff deny a referral waiting for review (only from `requested`)."""
    referral = get_referral(session, referral_number)
    _move(session, referral, DENIED, actor, _staff_reason(reason, "deny"))
    session.flush()
    return referral


def expire_referrals(session: Session, as_of: date, *, actor: str = EXPIRY_ACTOR) -> list[Referral]:
    """Approved referrals whose window ended before `as_of` become `expired`."""
    due = list(
        session.scalars(
            select(Referral)
            .where(Referral.status == APPROVED, Referral.valid_to < as_of)
            .order_by(Referral.id)
        )
    )
    for referral in due:
        _move(session, referral, EXPIRED, actor, f"valid to {referral.valid_to}, expired {as_of}")
    session.flush()
    return due


def mark_exhausted(
    session: Session, referral_number: str, used: int, *, actor: str = CLAIMS_ACTOR
) -> Referral:
    """An approved referral whose `used` visits reach its visits becomes `exhausted`.

    The claims shell calls it with the visits counted against the referral; fewer
    visits, or a referral that is not `approved`, leave it as it is.
    """
    referral = get_referral(session, referral_number)
    if referral.status == APPROVED and used >= referral.visits:
        _move(
            session,
            referral,
            EXHAUSTED,
            actor,
            f"{used} of {referral.visits} visit(s) used",
        )
        session.flush()
    return referral


def referral_queue(session: Session) -> list[Referral]:
    """Referrals waiting for staff, oldest first."""
    return list(
        session.scalars(
            select(Referral)
            .where(Referral.status == REQUESTED)
            .order_by(Referral.created_at, Referral.id)
        )
    )


# --- prior authorizations ----------------------------------------------------------------


def request_prior_auth(
    session: Session,
    *,
    member: Member,
    requesting_provider: Provider,
    servicing_provider: Provider | None = None,
    category: ServiceCategory | str,
    procedure_codes: Sequence[str] = (),
    diagnosis_codes: Sequence[str],
    valid_from: date,
    valid_to: date,
    units: int | None = None,
    actor: str,
    source: Source = "api",
) -> PriorAuthorization:
    """A provider's request for prior authorization, checked and stored for staff review.

    Refused (ReferralError, nothing stored) when the member is not covered on
    valid_from; the plan does not require authorization for the category and the
    provider who will render the service (the servicing provider, else the requesting
    one) is in network on valid_from; a procedure code is not shaped like a CPT/HCPCS
    code; a diagnosis is missing or not billable; units < 1; valid_to is before
    valid_from. The plan design has no auto-approval list yet: every stored request
    waits for staff (`requested`).
    """
    _source(source)
    category = ServiceCategory(category)
    design = _plan_on(session, member, valid_from, "prior_auth")
    plan_year = design.plan_year_on(valid_from)
    needed = (
        design.needs_prior_authorization(plan_year, category)
        if plan_year is not None
        else category in design.prior_authorization
    )
    renders = servicing_provider or requesting_provider
    if not needed and _in_network(session, design, renders, valid_from):
        raise ReferralError(
            f"{design.name} does not require prior authorization for {category} from an "
            f"in-network provider: no prior authorization is needed",
            "prior_auth.refused.not_needed",
            {"service": _service(category), "plan": design.name},
        )
    if isinstance(procedure_codes, str):
        procedure_codes = [procedure_codes]
    procedures = [c.strip().upper() for c in procedure_codes]
    bad = [c for c in procedures if not _PROCEDURE.match(c)]
    if bad:
        listed = ", ".join(bad)
        raise ReferralError(
            f"not a CPT or HCPCS procedure code: {listed}",
            "prior_auth.refused.invalid_procedure",
            {"codes": listed},
        )
    diagnoses = _diagnoses(diagnosis_codes, "prior_auth")
    if units is not None and units < 1:
        raise ReferralError(
            f"a prior authorization is for at least one unit (got {units})",
            "prior_auth.refused.no_units",
            {"units": units},
        )
    _dates(valid_from, valid_to, "prior_auth")

    reason = (
        "waits for staff review: the plan has no automatic approval of prior authorizations"
        if needed
        else f"waits for staff review: {renders.display_name} is not in the network of "
        f"{design.name} on {valid_from}"
    )
    auth = PriorAuthorization(
        auth_number=f"pending-{uuid.uuid4().hex[:12]}",
        member_id=member.id,
        requesting_provider_id=requesting_provider.id,
        servicing_provider_id=servicing_provider.id if servicing_provider else None,
        category=category.value,
        procedure_codes=procedures,
        diagnosis_codes=diagnoses,
        valid_from=valid_from,
        valid_to=valid_to,
        units=units,
        status=REQUESTED,
        status_reason=reason,
        source=source,
    )
    session.add(auth)
    session.flush()
    auth.auth_number = f"PA{auth.id:09d}"
    record_change(
        session,
        actor=actor,
        entity="prior_authorization",
        entity_id=auth.auth_number,
        action="prior_auth_requested",
        member_id=member.id,
        effective_date=valid_from,
        reason=reason,
        changes={
            "status": REQUESTED,
            "requesting_npi": requesting_provider.npi,
            "servicing_npi": servicing_provider.npi if servicing_provider else None,
            "category": category.value,
            "procedure_codes": procedures,
            "diagnosis_codes": diagnoses,
            "units": units,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "source": source,
        },
    )
    add_notice(session, member, "prior_auth.notice.pending", auth_number=auth.auth_number)
    session.flush()
    return auth


def _move_auth(
    session: Session, auth: PriorAuthorization, status: str, actor: str, reason: str
) -> None:
    before = auth.status
    if status not in PRIOR_AUTH_TRANSITIONS.get(before, frozenset()):
        raise ReferralError(
            f"prior authorization {auth.auth_number} is {before}: it cannot become {status}"
        )
    auth.status = status
    auth.status_reason = reason
    if status in (APPROVED, DENIED):
        auth.decided_by = actor
        auth.decided_at = utcnow()
    record_change(
        session,
        actor=actor,
        entity="prior_authorization",
        entity_id=auth.auth_number,
        action=f"prior_auth_{status}",
        member_id=auth.member_id,
        effective_date=auth.valid_from,
        reason=reason,
        changes={"status": [before, status]},
    )
    if status in (APPROVED, DENIED):
        params: dict[str, object] = {"auth_number": auth.auth_number}
        if status == APPROVED:
            params |= {
                "valid_from": auth.valid_from.isoformat(),
                "valid_to": auth.valid_to.isoformat(),
            }
        else:
            params["reason"] = reason
        add_notice(
            session, session.get(Member, auth.member_id), f"prior_auth.notice.{status}", **params
        )


def get_prior_auth(session: Session, auth_number: str) -> PriorAuthorization:
    auth = session.scalar(
        select(PriorAuthorization).where(
            PriorAuthorization.auth_number == auth_number.strip().upper()
        )
    )
    if auth is None:
        raise ReferralError(f"no prior authorization {auth_number}")
    return auth


def approve_prior_auth(
    session: Session, auth_number: str, *, actor: str, reason: str
) -> PriorAuthorization:
    """Staff approve a prior authorization waiting for review (only from `requested`)."""
    auth = get_prior_auth(session, auth_number)
    _move_auth(session, auth, APPROVED, actor, _staff_reason(reason, "approve"))
    session.flush()
    return auth


def deny_prior_auth(
    session: Session, auth_number: str, *, actor: str, reason: str
) -> PriorAuthorization:
    """Staff deny a prior authorization waiting for review (only from `requested`)."""
    auth = get_prior_auth(session, auth_number)
    _move_auth(session, auth, DENIED, actor, _staff_reason(reason, "deny"))
    session.flush()
    return auth


def expire_prior_auths(
    session: Session, as_of: date, *, actor: str = EXPIRY_ACTOR
) -> list[PriorAuthorization]:
    """Approved prior authorizations whose window ended before `as_of` become `expired`."""
    due = list(
        session.scalars(
            select(PriorAuthorization)
            .where(PriorAuthorization.status == APPROVED, PriorAuthorization.valid_to < as_of)
            .order_by(PriorAuthorization.id)
        )
    )
    for auth in due:
        _move_auth(session, auth, EXPIRED, actor, f"valid to {auth.valid_to}, expired {as_of}")
    session.flush()
    return due


def prior_auth_queue(session: Session) -> list[PriorAuthorization]:
    """Prior authorizations waiting for staff, oldest first."""
    return list(
        session.scalars(
            select(PriorAuthorization)
            .where(PriorAuthorization.status == REQUESTED)
            .order_by(PriorAuthorization.created_at, PriorAuthorization.id)
        )
    )


# --- what adjudication reads ---------------------------------------------------------------


def engine_status(status: str) -> str:
    """A stored status as adjudication must see it.

    `expired` and `exhausted` are bookkeeping after the fact: the engine itself checks
    the dates and counts the visits (CO-287 for a visit beyond the referral's count), so
    a late claim for a date inside the window, or a family re-adjudicated after a void,
    still finds the approval. Both are given to the engine as `approved`.
    """
    return APPROVED if status in (EXPIRED, EXHAUSTED) else status


def context_tables(
    session: Session, member_ids: Iterable[int] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The engine's `referrals` and `prior_auths` context tables (adjudication/context.py).

    Denied requests are left out (they can never match); see `engine_status` for
    expired and exhausted ones.
    """
    referring = aliased(Provider)
    specialist = aliased(Provider)
    query = (
        select(Referral, referring.npi, specialist.npi)
        .join(referring, referring.id == Referral.referring_provider_id)
        .outerjoin(specialist, specialist.id == Referral.specialist_provider_id)
        .where(Referral.status != DENIED)
        .order_by(Referral.id)
    )
    auths = (
        select(PriorAuthorization)
        .where(PriorAuthorization.status != DENIED)
        .order_by(PriorAuthorization.id)
    )
    if member_ids is not None:
        ids = sorted(set(member_ids))
        query = query.where(Referral.member_id.in_(ids))
        auths = auths.where(PriorAuthorization.member_id.in_(ids))
    referrals = frame(
        (
            {
                "referral_number": r.referral_number,
                "member_id": r.member_id,
                "referring_npi": referring_npi,
                "specialist_npi": specialist_npi,
                "specialty_prefix": r.specialty_prefix,
                "category": r.category,
                "visits": r.visits,
                "valid_from": r.valid_from,
                "valid_to": r.valid_to,
                "status": engine_status(r.status),
            }
            for r, referring_npi, specialist_npi in session.execute(query)
        ),
        SCHEMAS["referrals"],
    )
    prior_auths = frame(
        (
            {
                "auth_number": a.auth_number,
                "member_id": a.member_id,
                "category": a.category,
                "procedure_codes": list(a.procedure_codes or []),
                "valid_from": a.valid_from,
                "valid_to": a.valid_to,
                "status": engine_status(a.status),
            }
            for a in session.scalars(auths)
        ),
        SCHEMAS["prior_auths"],
    )
    return referrals, prior_auths
