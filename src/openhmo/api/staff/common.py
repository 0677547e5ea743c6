"""What the staff API's modules share: who may call, error documents, bounded inputs.

Every error is problem JSON (api/errors.py writes it): `{"status", "title", "where"}`.
The OpenAPI document says so for every 4xx of every route ("4XX"), and names the
statuses a route gives on purpose (404, 409, ...), so a client generated from it, or
schemathesis, knows each answer's shape.

Inputs are bounded to what the database can hold on SQLite and PostgreSQL alike: an
id past a 32-bit INTEGER, a NUL character or an unpaired surrogate in a text would be
a server error on PostgreSQL, so they are refused as bad requests before any query.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.access.visibility import Caller
from openhmo.api.deps import require
from openhmo.api.errors import ApiError
from openhmo.enrollment.models import Member

STAFF = ("staff",)
PROBLEM_JSON = "application/problem+json"
MAX_ID = 2**31 - 1  # INTEGER primary keys and line numbers
MAX_CENTS = 10**12  # ten billion dollars: no premium, payment or claim line comes near it


class Problem(BaseModel):
    """An error (RFC 9457 problem details, as api/errors.py writes them)."""

    status: int = Field(description="the HTTP status")
    title: str = Field(description="what went wrong")
    where: list[str] | None = Field(
        default=None, description="the parameters or body fields at fault"
    )


_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is problem JSON."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


def errors(**statuses: str) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route: every 4xx, and the ones named (`_404=...`)."""
    out: dict[int | str, dict[str, Any]] = {
        "4XX": problem("a bad request (400: a parameter or the body is not valid)"),
        401: problem("no bearer token, or one that is not valid"),
        403: problem("the caller is not staff, or the token's scopes do not allow this"),
    }
    for name, description in statuses.items():
        out[int(name.lstrip("_"))] = problem(description)
    return out


def staff(area: str, action: str):
    """The dependency of a staff route: a staff caller whose scopes allow `action` on `area`."""
    return Depends(require(area, action, roles=STAFF))


def actor(caller: Caller) -> str:
    """Who the change history names for a change made through the API."""
    return f"api:{caller.username}"


def _storable(value: str) -> str:
    # PostgreSQL's text and JSONB hold neither NUL nor unpaired surrogates.
    if "\x00" in value:
        raise ValueError("text may not hold NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode") from None
    return value


def _not_blank(value: str) -> str:
    # Python's idea of white space (the services strip) is wider than the pattern's.
    if not value.strip():
        raise ValueError("the text is blank")
    return value


Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000, pattern=r"\S"),
    AfterValidator(_storable),
    AfterValidator(_not_blank),
    Field(
        description="why: shown in the change history (and to the member, for a denial)",
        examples=["priced at the 99214 rate"],
    ),
]


def short_text(max_length: int, description: str) -> Any:
    return Annotated[
        str,
        StringConstraints(min_length=1, max_length=max_length, pattern=r"\S"),
        AfterValidator(_storable),
        AfterValidator(_not_blank),
        Field(description=description),
    ]


ClaimId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9]{1,20}$",
        description="the claim id, e.g. C000000001",
        examples=["C000000001"],
    ),
]
LineNumber = Annotated[
    int, Path(ge=1, le=MAX_ID, description="the line's number (1, 2, ...)", examples=[1])
]
MemberNumber = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9-]{1,20}$",
        description="a member number, e.g. OHM000000001-00",
        examples=["OHM000000001-00"],
    ),
]
CoverageId = Annotated[int, Path(ge=1, le=MAX_ID, description="the coverage's id", examples=[1])]


class Out(BaseModel):
    """A response model: read from ORM objects and dataclasses by attribute."""

    model_config = ConfigDict(from_attributes=True)


class In(BaseModel):
    """A request body: unknown fields are refused, not silently dropped.

    Amounts are declared strict: "80.00" or 80.0 in an `*_cents` field is refused, not
    taken as 80 cents.
    """

    model_config = ConfigDict(extra="forbid")


def member_by_number(session: Session, member_number: str) -> Member:
    """The member a staff route names by number, or a 404 naming the number."""
    number = member_number.strip().upper()
    member = session.scalar(select(Member).where(Member.member_number == number))
    if member is None:
        raise ApiError(404, f"there is no member {number}", expression=["member_number"])
    return member
