"""Claims in: validated as an 837 would carry them, stored once per submission.

What intake refuses (a `pydantic.ValidationError` whose `loc` names the field, e.g.
`lines.0.charge`, or a `ClaimError` with `field`) is what no payer could even read: a
malformed date, NPI, code or amount, a missing field, a replacement that names no claim
of the same member and billing provider. What is well formed but wrong is accepted and
denied by the engine with a CARC the provider sees (docs/adjudication.md §3 step 1):
an NPI whose check digit fails (CO-16 N290), a principal diagnosis that is not a
billable ICD-10-CM code (CO-16 M76), a duplicate (OA-18), a late claim (CO-29).

Money: a line's `charge` is in **dollars**, as the 837 carries it (SV102 / SV203): a
Decimal, a number or a text such as "125.00" or "$1,250.00", more than zero, at most
two decimal places (a fraction of a cent is refused, never rounded). It is stored as
integer cents (`ClaimLineIn.charge_cents`).

Idempotency: `idempotency_key` is the submitter's own id of the submission; by default
billing NPI + CLM01 (patient control number) + frequency code (+ the claim replaced,
for 7 and 8). A submission whose key is already stored returns the stored claim and
changes nothing; the same key with different content is refused.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import bindparam, false, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openhmo.claims.models import Claim, ClaimLine
from openhmo.db.types import utcnow
from openhmo.enrollment.models import Member
from openhmo.history.record import record_change, record_changes
from openhmo.money import MoneyError, format_money, parse_money

_PROCEDURE = re.compile(r"^(?:[0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$")  # CPT, CPT II/III, HCPCS II
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_REVENUE = re.compile(r"^[0-9]{4}$")
_POS = re.compile(r"^[0-9]{2}$")
_NPI = re.compile(r"^[0-9]{10}$")
# ICD-10-CM: a letter, two characters, then up to four more (the dot is optional).
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
# ICD-9-CM: three digits and up to two more, V and four, or E and up to four.
_ICD9 = re.compile(r"^(?:[0-9]{3}[0-9]{0,2}|V[0-9]{2}[0-9]{0,2}|E[0-9]{3}[0-9]?)$")
# Services from this day on are coded in ICD-10-CM (45 CFR 162.1002).
ICD10_FROM = date(2015, 10, 1)
MAX_UNITS = Decimal("999999999.999")


class ClaimError(ValueError):
    """A claim, or an action on one, that the claims rules refuse; `field` names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _npi(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _NPI.match(text):
        raise ValueError(f"an NPI is 10 digits, not {text!r}")
    return text


def _pos(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().zfill(2)
    if not _POS.match(text):
        raise ValueError(f"a place of service is two digits, not {value!r}")
    return text


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class ClaimLineIn(BaseModel):
    """One service line: SV1 (professional) or SV2 (institutional) with its DTP*472."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")

    line_number: int | None = Field(default=None, ge=1, le=999)
    service_date: date
    revenue_code: str | None = None
    procedure_code: str | None = Field(default=None, validate_default=True)
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: Decimal = Decimal(1)
    charge: Decimal
    place_of_service: str | None = None
    rendering_npi: str | None = None
    drug_tier: str | None = Field(default=None, max_length=24)

    _blank = field_validator(
        "procedure_code", "revenue_code", "place_of_service", "rendering_npi", mode="before"
    )(_blank_to_none)

    @field_validator("procedure_code")
    @classmethod
    def _procedure(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if "revenue_code" in info.data and info.data["revenue_code"] is None:
                raise ValueError("a line needs a procedure code (or a revenue code)")
            return None
        value = value.upper()
        if not _PROCEDURE.match(value):
            raise ValueError(f"{value!r} is not a CPT or HCPCS code (e.g. 99213, J1100)")
        return value

    @field_validator("modifiers", mode="before")
    @classmethod
    def _modifiers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [m for m in re.split(r"[,:\s]+", value) if m]
        if isinstance(value, list):
            out = []
            for m in value:
                text = str(m).strip().upper()
                if not _MODIFIER.match(text):
                    raise ValueError(f"a modifier is two letters or digits, not {m!r}")
                out.append(text)
            return out
        return value

    @field_validator("revenue_code", mode="before")
    @classmethod
    def _revenue(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().zfill(4)
        if not _REVENUE.match(text):
            raise ValueError(f"a revenue code is four digits, not {value!r}")
        return text

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("units must be a number")
        try:
            units = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"units must be a number, not {value!r}") from None
        if not units.is_finite() or units <= 0 or units > MAX_UNITS:
            raise ValueError(f"units must be more than 0 and at most {MAX_UNITS}, not {value}")
        if units != units.quantize(Decimal("0.001")):
            raise ValueError(f"units have at most three decimal places, not {value}")
        return units.quantize(Decimal("0.001"))

    @field_validator("charge", mode="before")
    @classmethod
    def _charge(cls, value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            raise ValueError("the charge is an amount in dollars, e.g. 125.00")
        try:
            if isinstance(value, float):
                value = Decimal(repr(value))
            cents = parse_money(value if isinstance(value, Decimal) else str(value))
        except (MoneyError, InvalidOperation) as exc:
            raise ValueError(f"the charge is an amount in dollars: {exc}") from None
        if cents <= 0:
            raise ValueError(f"the charge must be more than $0.00, not {format_money(cents)}")
        return Decimal(cents) / 100

    _place = field_validator("place_of_service", mode="before")(_pos)
    _rendering = field_validator("rendering_npi", mode="before")(_npi)

    @property
    def charge_cents(self) -> int:
        return int(self.charge * 100)


class ClaimIn(BaseModel):
    """One claim (CLM loop) of an 837P or 837I."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")

    patient_control_number: str = Field(min_length=1, max_length=38)  # CLM01
    member_number: str = Field(min_length=1, max_length=20)
    billing_npi: str
    rendering_npi: str | None = None
    claim_type: Literal["professional", "institutional"] = "professional"
    frequency_code: Literal["1", "7", "8"] = "1"
    replaces_claim_id: str | None = Field(default=None, max_length=20, validate_default=True)
    place_of_service: str | None = None
    # An 837's HI qualifier ABK/ABF (ICD-10-CM) or BK/BF (ICD-9-CM, services before ICD10_FROM).
    diagnosis_code_set: Literal["ICD-10-CM", "ICD-9-CM"] = "ICD-10-CM"
    diagnosis_codes: list[str] = Field(min_length=1, max_length=12)
    referral_number: str | None = Field(default=None, max_length=20)
    prior_auth_number: str | None = Field(default=None, max_length=20)
    emergency: bool = False
    lines: list[ClaimLineIn] = Field(min_length=1, max_length=999)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    source: str = Field(default="api", max_length=40)
    submitter: str = Field(default="", max_length=120)

    _blank = field_validator(
        "rendering_npi",
        "replaces_claim_id",
        "place_of_service",
        "referral_number",
        "prior_auth_number",
        "idempotency_key",
        mode="before",
    )(_blank_to_none)
    _billing = field_validator("billing_npi", mode="before")(_npi)
    _rendering = field_validator("rendering_npi", mode="before")(_npi)
    _place = field_validator("place_of_service", mode="before")(_pos)

    @field_validator("frequency_code", mode="before")
    @classmethod
    def _frequency(cls, value: Any) -> Any:
        return str(value).strip() if isinstance(value, int | str) else value

    @field_validator("referral_number", "prior_auth_number", "member_number")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("replaces_claim_id")
    @classmethod
    def _replaces(cls, value: str | None, info: ValidationInfo) -> str | None:
        frequency = info.data.get("frequency_code")
        if frequency in ("7", "8") and not value:
            what = "replacement" if frequency == "7" else "void"
            raise ValueError(f"a {what} (frequency {frequency}) must name the claim it replaces")
        if frequency == "1" and value:
            raise ValueError(
                "an original claim (frequency 1) replaces nothing; use frequency 7 "
                "(replacement) or 8 (void)"
            )
        return value.upper() if value else value

    @field_validator("diagnosis_codes", mode="before")
    @classmethod
    def _diagnoses(cls, value: Any, info: ValidationInfo) -> Any:
        icd9 = info.data.get("diagnosis_code_set") == "ICD-9-CM"
        pattern, example = (
            (_ICD9, "ICD-9-CM code (e.g. 034.0)")
            if icd9
            else (_ICD10, "ICD-10-CM code (e.g. I20.9)")
        )
        if isinstance(value, str):
            value = [c for c in re.split(r"[,\s]+", value) if c]
        if isinstance(value, list):
            out = []
            for i, code in enumerate(value):
                text = str(code).replace(".", "").strip().upper()
                if not pattern.match(text):
                    raise ValueError(f"diagnosis {i + 1} {code!r} is not an {example}")
                out.append(text)
            return out
        return value

    @model_validator(mode="after")
    def _code_set_for_dates(self) -> ClaimIn:
        if self.diagnosis_code_set == "ICD-9-CM":
            late = [ln.service_date for ln in self.lines if ln.service_date >= ICD10_FROM]
            if late:
                raise ValueError(
                    f"ICD-9-CM diagnoses are for services before {ICD10_FROM.isoformat()}; "
                    f"this claim has a service on {min(late).isoformat()}: code it in ICD-10-CM"
                )
        return self

    @field_validator("lines")
    @classmethod
    def _numbers(cls, lines: list[ClaimLineIn]) -> list[ClaimLineIn]:
        numbers = [ln.line_number for ln in lines]
        given = [n for n in numbers if n is not None]
        if given and len(given) != len(numbers):
            raise ValueError("give every line a line_number, or none")
        if len(set(given)) != len(given):
            raise ValueError(f"line numbers repeat: {sorted(given)}")
        return lines

    def numbered_lines(self) -> list[tuple[int, ClaimLineIn]]:
        return [(ln.line_number or i, ln) for i, ln in enumerate(self.lines, start=1)]

    @property
    def key(self) -> str:
        """The idempotency key: given, or billing NPI + CLM01 + frequency (+ claim replaced)."""
        if self.idempotency_key:
            return self.idempotency_key
        parts = [self.billing_npi, self.patient_control_number, self.frequency_code]
        if self.replaces_claim_id:
            parts.append(self.replaces_claim_id)
        return ":".join(parts)

    @property
    def digest(self) -> str:
        """SHA-256 of the claim's content (who sent it and the key left out)."""
        left_out = {"idempotency_key", "source", "submitter"}
        if self.diagnosis_code_set == "ICD-10-CM":
            left_out.add("diagnosis_code_set")  # so digests stored before the field still match
        content = self.model_dump_json(exclude=left_out)
        return hashlib.sha256(content.encode()).hexdigest()

    @property
    def total_charge_cents(self) -> int:
        return sum(ln.charge_cents for ln in self.lines)


def _utc(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClaimError(f"{field} must carry a time zone (got {moment.isoformat()})", field)
    return moment.astimezone(UTC)


def _existing(session: Session, claim_in: ClaimIn) -> Claim | None:
    claim = session.scalar(select(Claim).where(Claim.idempotency_key == claim_in.key))
    if claim is not None and claim.content_digest != claim_in.digest:
        raise ClaimError(
            f"idempotency_key {claim_in.key!r} was already used for claim {claim.claim_id}, "
            "with different content: a corrected claim is a replacement (frequency 7) "
            "naming that claim",
            "idempotency_key",
        )
    return claim


def _check_replacement(session: Session, claim_in: ClaimIn) -> None:
    """A replacement or void names a claim of the same member and billing provider."""
    number = claim_in.replaces_claim_id
    what = "replacement" if claim_in.frequency_code == "7" else "void"
    original = session.scalar(select(Claim).where(Claim.claim_id == number))
    if original is None:
        raise ClaimError(
            f"replaces_claim_id: there is no claim {number} to {what}", "replaces_claim_id"
        )
    if original.member_number != claim_in.member_number:
        raise ClaimError(
            f"replaces_claim_id: claim {number} is of member {original.member_number}, "
            f"not {claim_in.member_number}",
            "replaces_claim_id",
        )
    if original.billing_npi != claim_in.billing_npi:
        raise ClaimError(
            f"replaces_claim_id: claim {number} was billed by NPI {original.billing_npi}, "
            f"not {claim_in.billing_npi}",
            "replaces_claim_id",
        )
    if original.frequency_code == "8":
        raise ClaimError(
            f"replaces_claim_id: claim {number} is itself a void; nothing can replace it",
            "replaces_claim_id",
        )
    later = session.scalar(
        select(Claim.claim_id).where(Claim.replaces_claim_id == number).order_by(Claim.id).limit(1)
    )
    if later is not None:
        raise ClaimError(
            f"replaces_claim_id: claim {number} was already replaced or voided by claim "
            f"{later}; a {what} names the latest claim",
            "replaces_claim_id",
        )


def sqlite_write_lock(session: Session) -> bool:
    """On SQLite, take the database's write lock now; False (nothing done) elsewhere.

    A write that changes nothing (an UPDATE of no row): Python's sqlite3 driver opens
    the transaction (deferred BEGIN) at a transaction's first write, and SQLite takes
    the write lock for it, waiting up to the driver's busy timeout for the writer before.
    Called before the transaction reads anything, every later read sees the latest
    committed data and no one else can write until the transaction ends.
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    session.execute(
        update(Claim)
        .where(false())
        .values(status=Claim.status)
        .execution_options(synchronize_session=False)
    )
    return True


def _store(session: Session, claim: Claim) -> None:
    session.add(claim)
    session.flush()
    claim.claim_id = f"C{claim.id:09d}"
    session.flush()


def _rows(
    claim_in: ClaimIn, member: Member | None, received_at: datetime, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The claim's row and its lines' rows, as stored."""
    claim = {
        "claim_id": f"pending-{uuid.uuid4().hex[:12]}",
        "patient_control_number": claim_in.patient_control_number,
        "member_number": claim_in.member_number,
        "member_id": member.id if member else None,
        "family_id": member.subscriber_id if member else None,
        "billing_npi": claim_in.billing_npi,
        "rendering_npi": claim_in.rendering_npi,
        "claim_type": claim_in.claim_type,
        "frequency_code": claim_in.frequency_code,
        "replaces_claim_id": claim_in.replaces_claim_id,
        "place_of_service": claim_in.place_of_service,
        "diagnosis_code_set": claim_in.diagnosis_code_set,
        "diagnosis_codes": list(claim_in.diagnosis_codes),
        "referral_number": claim_in.referral_number,
        "prior_auth_number": claim_in.prior_auth_number,
        "emergency": claim_in.emergency,
        "received_at": received_at,
        "total_charge_cents": claim_in.total_charge_cents,
        "source": claim_in.source,
        "submitter": claim_in.submitter or actor,
        "idempotency_key": claim_in.key,
        "content_digest": claim_in.digest,
    }
    lines = [
        {
            "line_number": number,
            "service_date": line.service_date,
            "procedure_code": line.procedure_code,
            "modifiers": list(line.modifiers),
            "revenue_code": line.revenue_code,
            "units": line.units,
            "charge_cents": line.charge_cents,
            "place_of_service": line.place_of_service,
            "rendering_npi": line.rendering_npi,
            "drug_tier": line.drug_tier,
        }
        for number, line in claim_in.numbered_lines()
    ]
    return claim, lines


def _new_claim(
    claim_in: ClaimIn, member: Member | None, received_at: datetime, actor: str
) -> Claim:
    claim, lines = _rows(claim_in, member, received_at, actor)
    return Claim(**claim, lines=[ClaimLine(**line) for line in lines])


def _received(session: Session, claim: Claim, claim_in: ClaimIn, actor: str) -> None:
    record_change(session, **_received_change(claim, claim_in, actor))


def _received_change(claim: Claim, claim_in: ClaimIn, actor: str) -> dict[str, Any]:
    return dict(
        actor=actor,
        entity="claim",
        entity_id=claim.claim_id,
        action="claim_received",
        member_id=claim.member_id,
        effective_date=min(line.service_date for line in claim_in.lines),
        changes={
            "patient_control_number": claim.patient_control_number,
            "member_number": claim.member_number,
            "billing_npi": claim.billing_npi,
            "frequency_code": claim.frequency_code,
            "replaces_claim_id": claim.replaces_claim_id,
            "lines": len(claim_in.lines),
            "total_charge_cents": claim.total_charge_cents,
            "received_at": claim.received_at.isoformat(),
            "source": claim.source,
        },
        reason=f"received from {claim.source}",
    )


def submit_claim(
    session: Session, claim_in: ClaimIn, *, received_at: datetime, actor: str
) -> Claim:
    """Store a claim as received, or return the stored one for a resubmission of it.

    The caller commits. The claim gets its control number ("C" and the zero-padded id),
    status `received`, and a history entry; adjudicate it with
    `openhmo.claims.service.adjudicate_claim`. Two submissions of one key at once leave
    one claim: on PostgreSQL the loser of the unique index gets the winner's claim (a
    savepoint around the insert); on SQLite the write lock is taken before the look-up.
    """
    received_at = _utc(received_at, "received_at")
    # SQLite: the write lock before looking for the key, so no one can store it between
    # the look and the insert.
    sqlite = sqlite_write_lock(session)
    found = _existing(session, claim_in)
    if found is not None:
        return found
    if claim_in.frequency_code in ("7", "8"):
        _check_replacement(session, claim_in)
    member = session.scalar(select(Member).where(Member.member_number == claim_in.member_number))
    claim = _new_claim(claim_in, member, received_at, actor)
    if sqlite:
        _store(session, claim)
    else:
        try:
            with session.begin_nested():
                _store(session, claim)
        except IntegrityError:
            # Someone stored the same submission first: it is theirs we return.
            found = _existing(session, claim_in)
            if found is None:
                raise
            return found
    _received(session, claim, claim_in, actor)
    return claim


def submit_claims(
    session: Session, items: list[tuple[ClaimIn, datetime]], *, actor: str
) -> list[Claim]:
    """Store many claims in a few statements (a file of them, a clearinghouse batch).

    The same rules as `submit_claim`, checked for the whole batch at once: a claim whose
    key is stored already returns the stored claim. The caller commits; a concurrent
    submission of the same key makes the flush fail, and the caller retries the batch
    with `submit_claim`, one by one.
    """
    sqlite_write_lock(session)
    items = [(claim_in, _utc(received, "received_at")) for claim_in, received in items]
    keys = [claim_in.key for claim_in, _ in items]
    stored = {
        c.idempotency_key: c
        for c in session.scalars(select(Claim).where(Claim.idempotency_key.in_(keys)))
    }
    numbers = sorted({claim_in.member_number for claim_in, _ in items})
    members = {
        m.member_number: m
        for m in session.scalars(select(Member).where(Member.member_number.in_(numbers)))
    }
    out: list[Claim | int] = []
    fresh: list[tuple[dict, list[dict], ClaimIn]] = []
    seen: dict[str, int] = {}
    for claim_in, received in items:
        found = stored.get(claim_in.key)
        if found is not None:
            if found.content_digest != claim_in.digest:
                _existing(session, claim_in)  # raises: the key names other content
            out.append(found)
            continue
        if claim_in.key in seen:  # twice in this batch: one claim
            out.append(seen[claim_in.key])
            continue
        if claim_in.frequency_code in ("7", "8"):
            _check_replacement(session, claim_in)
        row, lines = _rows(claim_in, members.get(claim_in.member_number), received, actor)
        row.update(status="received", created_at=utcnow())
        seen[claim_in.key] = len(fresh)
        out.append(len(fresh))
        fresh.append((row, lines, claim_in))
    if fresh:
        # Core statements: a batch of thousands of claims is a few statements, not an
        # ORM unit of work per claim.
        table = Claim.__table__
        ids = dict(
            session.execute(
                insert(table).returning(table.c.idempotency_key, table.c.id),
                [row for row, _, _ in fresh],
            ).all()
        )
        session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(claim_id=bindparam("_cid")),
            [
                {"_id": ids[row["idempotency_key"]], "_cid": f"C{ids[row['idempotency_key']]:09d}"}
                for row, _, _ in fresh
            ],
        )
        session.execute(
            insert(ClaimLine.__table__),
            [
                {**line, "claim_id": ids[row["idempotency_key"]]}
                for row, lines, _ in fresh
                for line in lines
            ],
        )
        loaded = {
            c.id: c
            for c in session.scalars(select(Claim).where(Claim.id.in_(sorted(ids.values()))))
        }
        record_changes(
            session,
            [
                _received_change(loaded[ids[row["idempotency_key"]]], claim_in, actor)
                for row, _, claim_in in fresh
            ],
        )
        claims = [loaded[ids[row["idempotency_key"]]] for row, _, _ in fresh]
    else:
        claims = []
    return [c if isinstance(c, Claim) else claims[c] for c in out]
