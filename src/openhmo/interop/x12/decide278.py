"""A 278 referral request decided with our database: the request becomes our referral.

`decide` finds the member (the subscriber by member number, a dependent by birth date
and first name in the family) and the providers (by NPI), and turns the request into a
referral through `referrals.service.request_referral` (source "x12-278"), approved at
once by the plan's rules or left for staff; the same request sent again is answered with
the referral it made. Our rules' refusals become the response's HCR*A3 or an AAA in the
loop at fault, pointing at the element they are about (a `response278.Decision`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.categories import ServiceCategory
from openhmo.enrollment.models import Member
from openhmo.interop.x12.envelope import Problem
from openhmo.interop.x12.loops import parse_date
from openhmo.interop.x12.request278 import Party, Request278
from openhmo.interop.x12.response278 import Decision
from openhmo.network.models import Provider
from openhmo.referrals.models import Referral
from openhmo.referrals.service import APPROVED, DENIED, ReferralError, request_referral

# UM03 (service type) of a referral request, as our service category. A specialty's own
# code (BL cardiac, BK orthopedic, ...) or none at all is a specialist visit.
CATEGORY_OF_SERVICE_TYPE = {
    **dict.fromkeys(("A9", "AC", "AD", "AE", "AF", "PT"), ServiceCategory.REHABILITATION),
    "33": ServiceCategory.CHIROPRACTIC,
    "62": ServiceCategory.ADVANCED_IMAGING,
    "4": ServiceCategory.IMAGING,
    "5": ServiceCategory.LAB,
    **dict.fromkeys(("2", "53"), ServiceCategory.OUTPATIENT_SURGERY),
    **dict.fromkeys(("MH", "A8", "CF", "CH"), ServiceCategory.MENTAL_HEALTH_OUTPATIENT),
    **dict.fromkeys(("BT", "BU", "BV"), ServiceCategory.OB_GYN_VISIT),
    "86": ServiceCategory.EMERGENCY_ROOM,
    "UC": ServiceCategory.URGENT_CARE,
    "BZ": ServiceCategory.PREVENTIVE,
}

# HCR03 (X12 code source 886) and AAA03 for our referral rules' refusals, by message id.
DENIALS = {
    "referral.refused.not_pcp": "0E",  # Provider is Not Primary Care Physician
    "referral.refused.specialist_not_in_network": "09",  # Out of Network
}
INVALID = {  # message id -> (loop, AAA03)
    "referral.refused.not_covered": ("member", "78"),
    "referral.refused.no_specialist": ("2000E", "15"),
    "referral.refused.unknown_specialty": ("provider", "45"),
    "referral.refused.no_diagnosis": ("2000E", "AF"),
    "referral.refused.invalid_diagnosis": ("2000E", "AF"),
    "referral.refused.no_visits": ("2000E", "33"),
    "referral.refused.dates": ("2000E", "57"),
}


def _category(request: Request278) -> ServiceCategory:
    service_type = request.um[3] if len(request.um) > 3 else ""
    return CATEGORY_OF_SERVICE_TYPE.get(service_type, ServiceCategory.SPECIALIST_VISIT)


def _aaa(where: str, code: str, problems: list[Problem], follow_up: str = "C") -> Decision:
    return Decision(aaa=(where, code, follow_up), problems=tuple(problems))


def _read_problems(request: Request278) -> Decision | None:
    """An AAA for a request whose member, event or provider loops are in error."""
    codes = {
        ("2010C", "NM1", 9): "72",
        ("2010C", "NM1", 8): "72",
        ("2010C", "NM1", 3): "73",
        ("2010C", "DMG", 2): "58",
        ("2010D", "NM1", 3): "65",
        ("2010D", "DMG", 2): "58",
        ("2000E", "HI", None): "AF",
        ("2000E", "DTP", None): "57",
        ("2000E", "SV1", None): "AG",
        ("provider", "NM1", 9): "43",
        ("provider", "PRV", None): "45",
    }
    for group in ("2010C", "2010D", "2000E", "provider"):
        problems = request.problems.get(group)
        if not problems:
            continue
        first = problems[0]
        code = codes.get((group, first.segment, first.element)) or codes.get(
            (group, first.segment, None), "15" if group != "2000E" else "33"
        )
        return _aaa(group, code, problems)
    return None


def _member(session: Session, request: Request278) -> Member | Decision:
    subscriber = request.subscriber
    sent = subscriber.get(9).strip().upper()
    if not sent:
        reason = "NM109: the subscriber's member identifier is missing"
        return _aaa("2010C", "72", [subscriber.at.problem(reason, "1")])
    member = session.scalar(select(Member).where(Member.member_number == sent))
    if member is None:
        reason = f"subscriber {sent!r} is not a member of this plan"
        return _aaa("2010C", "75", [subscriber.at.problem(reason, "7", sent)])
    if subscriber.birth is not None and subscriber.birth != member.birth_date:
        reason = f"DMG02 {subscriber.birth:%Y%m%d}: not the birth date of member {sent}"
        return _aaa("2010C", "71", [(subscriber.birth_at or subscriber.at).problem(reason, "7")])
    dependent = request.dependent
    if dependent is None:
        return member
    first = dependent.get(4).strip().upper()
    family = session.scalars(
        select(Member).where(Member.subscriber_id == member.subscriber_id).order_by(Member.id)
    ).all()
    matches = [
        m
        for m in family
        if m.id != member.id
        and (dependent.birth is None or m.birth_date == dependent.birth)
        and (not first or m.first_name.upper() == first)
    ]
    if len(matches) == 1 and (dependent.birth is not None or first):
        return matches[0]
    reason = f"dependent {first or '(no name)'} is not in the family of member {sent}"
    return _aaa("2010D", "77", [dependent.at.problem(reason, "7")])


def _provider(session: Session, party: Party, where: str) -> Provider | Decision:
    npi = party.npi
    if npi is None:
        reason = "NM108/NM109: the provider is identified by NPI (XX)"
        return _aaa(where, "43", [party.at.problem(reason, "1")])
    found = session.scalar(select(Provider).where(Provider.npi == npi))
    if found is None:
        reason = f"NPI {npi} is not a provider OpenHMO knows"
        return _aaa(where, "51", [party.at.problem(reason, "7", npi)])
    return found


def _dates(request: Request278, today: date) -> tuple[date, date | None]:
    for qualifier in ("AAH", "472"):
        if qualifier in request.dates:
            start, end, _ = request.dates[qualifier]
            return parse_date(start), parse_date(end) if end else None
    return today, None  # no date asked for: from the day the request is read


def _visits(request: Request278) -> int | Decision:
    where = request.event_at
    if request.visits is None or request.visits[0] not in ("VS", ""):
        reason = "HSD: a referral states the visits asked for (HSD01 VS, HSD02 the number)"
        return _aaa("2000E", "15", [where.problem(reason, "1")])
    _, quantity, at = request.visits
    try:
        visits = int(quantity)
    except ValueError:
        return _aaa(
            "2000E", "33", [at.problem(f"HSD02 {quantity!r}: visits are a whole number", "7")]
        )
    return visits


def _refusal(request: Request278, exc: ReferralError) -> Decision:
    """Our rules' refusal as the 278 says it, pointing at the element it is about."""
    message = exc.message_id or ""
    specialist = request.specialist
    event = request.event_at
    if message in DENIALS:
        at = (
            request.requester.at
            if message == "referral.refused.not_pcp"
            else (specialist.at if specialist else event)
        )
        return Decision("A3", reason_code=DENIALS[message], problems=(at.problem(str(exc), "7"),))
    if message == "referral.refused.not_needed":
        return Decision("NA", reason_code="0H", problems=(event.problem(str(exc), "7"),))
    where, code = INVALID.get(message, ("2000E", "33"))
    at = {
        "referral.refused.not_covered": request.dates.get("AAH", (0, 0, event))[2],
        "referral.refused.invalid_diagnosis": request.diagnoses_at or event,
        "referral.refused.no_diagnosis": request.diagnoses_at or event,
        "referral.refused.dates": request.dates.get("AAH", (0, 0, event))[2],
        "referral.refused.no_visits": request.visits[2] if request.visits else event,
        "referral.refused.unknown_specialty": (
            specialist.taxonomy_at or specialist.at if specialist else event
        ),
    }.get(message, event)
    if where == "member":
        where = "2010D" if request.dependent is not None else "2010C"
    if where == "provider" and not request.providers:
        where = "2000E"
    return _aaa(where, code, [at.problem(str(exc), "7")], "N" if code == "78" else "C")


def _answer(referral: Referral, member: Member) -> Decision:
    approved = referral.status == APPROVED
    return Decision(
        "A1" if approved else "A4",
        referral.referral_number,
        None if approved else "0W",  # Disposition pending review
        visits=referral.visits,
        valid_from=referral.valid_from,
        valid_to=referral.valid_to,
        member=(member.member_number, member.last_name, member.first_name),
        referral=referral,
    )


def decide(session: Session, request: Request278, *, actor: str, today: date) -> Decision:
    """Read the request against our members, providers and referral rules; store a referral."""
    found = _read_problems(request)
    if found is not None:
        return found
    member = _member(session, request)
    if isinstance(member, Decision):
        return member
    requester = _provider(session, request.requester, "2010B")
    if isinstance(requester, Decision):
        return requester
    ours = (member.member_number, member.last_name, member.first_name)
    um01, um02 = request.um[1], request.um[2]
    if um01 == "AR" or um02 != "I" or request.purpose != "13":
        # Admission reviews, renewals, revisions, appeals and cancellations are staff's.
        reason = f"UM01 {um01} / UM02 {um02} / BHT02 {request.purpose}: not decided electronically"
        return Decision("CT", member=ours, problems=(request.event_at.problem(reason, "7"),))
    specialist = None
    party = request.specialist
    if party is not None and party.npi is not None:
        specialist = _provider(session, party, "provider")
        if isinstance(specialist, Decision):
            return specialist
    prefix = party.taxonomy if party is not None and specialist is None else None
    visits = _visits(request)
    if isinstance(visits, Decision):
        return visits
    valid_from, valid_to = _dates(request, today)
    category = _category(request)
    diagnoses = [code for _, code in request.diagnoses]
    duplicate = session.scalar(
        select(Referral)
        .where(
            Referral.member_id == member.id,
            Referral.referring_provider_id == requester.id,
            Referral.specialist_provider_id == (specialist.id if specialist else None),
            Referral.category == category.value,
            Referral.visits == visits,
            Referral.valid_from == valid_from,
            Referral.source == "x12-278",
            Referral.status != DENIED,
        )
        .order_by(Referral.id)
    )
    if duplicate is not None and (valid_to is None or duplicate.valid_to == valid_to):
        return _answer(duplicate, member)  # the same request again: the same answer
    try:
        with session.begin_nested():
            referral = request_referral(
                session,
                member=member,
                referring_provider=requester,
                specialist=specialist,
                specialty_prefix=prefix,
                category=category,
                visits=visits,
                valid_from=valid_from,
                valid_to=valid_to,
                diagnosis_codes=diagnoses,
                actor=actor,
                source="x12-278",
            )
    except ReferralError as exc:
        refused = _refusal(request, exc)
        return replace(refused, member=ours) if refused.aaa is None else refused
    return _answer(referral, member)
