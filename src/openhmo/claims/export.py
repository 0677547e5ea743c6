"""The database's claims and context as batch inputs: claim lines for Parquet, a Context.

Batch adjudication, Spark and what-if runs read files; this shell writes what the
database holds into them. Every member whose data goes out is audited (one access
record per member, bulk-inserted), as every read of personal health data is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl
from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from openhmo.adjudication.context import Context, claim_lines
from openhmo.claims.context_db import build_context, claim_line_rows, line_row
from openhmo.claims.models import Claim, ClaimLine
from openhmo.history.models import PhiAccess

CHUNK = 5_000


def claims_of(
    session: Session,
    *,
    year: int | None = None,
    between: tuple[date, date] | None = None,
    family_ids: Iterable[int] | None = None,
) -> pl.DataFrame:
    """Claim lines (CLAIM_LINES) of every claim with a line of service in calendar
    `year` or `between` two dates (all if neither), of `family_ids` only if given; in
    claim order."""
    query = select(Claim).order_by(Claim.id)
    if year is not None:
        between = (date(year, 1, 1), date(year, 12, 31))
    if between is not None:
        query = query.where(
            exists().where(
                ClaimLine.claim_id == Claim.id,
                ClaimLine.service_date >= between[0],
                ClaimLine.service_date <= between[1],
            )
        )
    if family_ids is not None:
        query = query.where(Claim.family_id.in_(sorted(set(family_ids))))
    parts, chunk = [], []
    for claim in session.scalars(query).yield_per(CHUNK):
        chunk.append(claim)
        if len(chunk) == CHUNK:
            parts.append(_lines(session, chunk))
            chunk = []
    parts.append(_lines(session, chunk))
    return pl.concat(parts)


def _lines(session: Session, claims: list[Claim]) -> pl.DataFrame:
    return claim_lines(line_row(c, line) for c, line in claim_line_rows(session, claims))


def context_of(
    session: Session,
    *,
    actor: str,
    purpose: str,
    family_ids: Iterable[int] | None = None,
    codes: Iterable[str] | None = None,
) -> Context:
    """The engine's context of `family_ids` (every family if None), audited per member;
    with QPAs for `codes` (the procedure and revenue codes of the claims to decide)."""
    context = build_context(
        session, None if family_ids is None else sorted(set(family_ids)), qpa_codes=codes
    )
    members = context.eligibility["member_id"].unique().sort().to_list()
    what = "eligibility, PCP, referrals, authorizations and accumulators for a batch run"
    for i in range(0, len(members), CHUNK):
        session.execute(
            insert(PhiAccess),
            [
                {"actor": actor, "member_id": m, "purpose": purpose, "what": what}
                for m in members[i : i + CHUNK]
            ],
        )
    return context


def codes_of(claims: pl.DataFrame | pl.LazyFrame) -> set[str]:
    """The codes a line is priced by (procedure, else revenue code), for `context_of`."""
    codes = claims.lazy().select(pl.coalesce("procedure_code", "revenue_code").unique())
    return set(codes.collect().to_series().drop_nulls().to_list())
