"""SQL pieces every directory search shares: string and token matching, distance, paging.

Searches are written so that the database does the filtering, ordering and paging with
its indexes, and only one page of rows comes back to Python; the total is one COUNT
(skipped when the page itself shows it, e.g. a first page that is not full) that stops
at COUNT_CAP matches unless the client asks for `_total=accurate`: counting the 90,000
members of a network costs several times what finding a page of them does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, Select, and_, false, func, literal_column, or_, select
from sqlalchemy.orm import Session

from openhmo.api.fhir.directory_params import Clause, Query, token
from openhmo.history.models import ChangeRecord
from openhmo.network.membership import in_network_clause, in_network_set_clause
from openhmo.network.models import Location, Network, Provider

EARTH_RADIUS_MILES = 3958.7613
MILES_PER_DEGREE_LATITUDE = 69.0
# A count past this many matches is left out of Bundle.total unless _total=accurate.
COUNT_CAP = 1000


# A literal, not a bound value, so that the partial indexes on individuals (network.models)
# serve every plan PostgreSQL makes, generic ones included.
INDIVIDUAL = Provider.entity_type == literal_column("'individual'")
NAME_ORDER = (func.lower(Provider.last_name), func.lower(Provider.first_name), Provider.id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def starts_with(column, value: str) -> ColumnElement[bool]:
    """lower(column) starts with `value`, lower-cased: a range of the lower(column) index
    (whatever the collation), and LIKE for the exact rule."""
    folded = value.lower()
    if not folded:
        return column.is_not(None)
    lowered = func.lower(column)
    after = folded[:-1] + chr(ord(folded[-1]) + 1)
    return and_(
        lowered >= folded,
        lowered < after,
        lowered.like(f"{_escape_like(folded)}%", escape="\\"),
    )


def string_match(columns: Sequence, clause: Clause) -> ColumnElement[bool]:
    """FHIR string search on any of `columns`: starts-with, case-insensitive by default;
    `:exact` is equality, `:contains` anywhere in the text."""
    alternatives = []
    for value in clause.values:
        for column in columns:
            if clause.modifier == "exact":
                alternatives.append(column == value)
            elif clause.modifier == "contains":
                pattern = f"%{_escape_like(value.lower())}%"
                alternatives.append(func.lower(column).like(pattern, escape="\\"))
            else:
                alternatives.append(starts_with(column, value))
    return or_(*alternatives)


def strings(query: Query, name: str, columns: Sequence) -> list[ColumnElement[bool]]:
    return [string_match(columns, clause) for clause in query.all(name)]


def token_codes(clause: Clause, system: str) -> list[str]:
    """The codes of `clause` that belong to `system` (or name no system); a code of
    another system, or '|code' (explicitly no system), matches nothing."""
    codes = []
    for value in clause.values:
        sys_, code = token(value)
        if sys_ is None or sys_ == system:
            if code is not None:
                codes.append(code)
            elif sys_ == system:
                codes.append("*")  # "system|": any code of the system
    return codes


def token_in(column, clause: Clause, system: str, transform=lambda c: c) -> ColumnElement[bool]:
    codes = token_codes(clause, system)
    if "*" in codes:
        return column.is_not(None)
    values = [v for c in codes if (v := transform(c)) is not None]
    return column.in_(values) if values else false()


def miles_from(latitude: float, longitude: float) -> ColumnElement[float]:
    """Great-circle miles from a point to each Location (haversine, as reference.geo)."""
    dlat = func.radians(Location.latitude - latitude) / 2
    dlon = func.radians(Location.longitude - longitude) / 2
    a = func.sin(dlat) * func.sin(dlat) + math.cos(math.radians(latitude)) * func.cos(
        func.radians(Location.latitude)
    ) * func.sin(dlon) * func.sin(dlon)
    return 2 * EARTH_RADIUS_MILES * func.asin(func.sqrt(a))


def within(latitude: float, longitude: float, miles: float) -> ColumnElement[bool]:
    """Locations within `miles`: a latitude/longitude box the index can use, then the
    exact distance."""
    dlat = miles / MILES_PER_DEGREE_LATITUDE
    cos = math.cos(math.radians(min(abs(latitude) + dlat, 90.0)))
    dlon = 360.0 if cos < 0.01 else miles / (MILES_PER_DEGREE_LATITUDE * cos)
    return and_(
        Location.latitude.between(latitude - dlat, latitude + dlat),
        Location.longitude.between(longitude - dlon, longitude + dlon),
        miles_from(latitude, longitude) <= miles,
    )


def in_any_network(
    networks: Iterable[Network], day: date, *, whole: bool = False
) -> ColumnElement[bool]:
    """In at least one of `networks` on `day`: membership.in_network_clause each, or its
    set form (in_network_set_clause) when most providers are tested (`whole`)."""
    form = in_network_set_clause if whole else in_network_clause
    clauses = [form(n.key, day) for n in networks]
    return or_(*clauses) if clauses else false()


def _count(session: Session, stmt: Select, query: Query) -> int | None:
    """How many rows `stmt` has: None when not asked for (_total=none), or when there are
    more than COUNT_CAP and the client did not ask for an accurate count."""
    if not query.counted:
        return None
    matches = stmt.order_by(None)
    if not query.exact:
        matches = matches.limit(COUNT_CAP + 1)
    found = session.scalar(select(func.count()).select_from(matches.subquery())) or 0
    return None if found > COUNT_CAP and not query.exact else found


def _under_cap(session: Session, rows: Select) -> int | None:
    """How many distinct values the first column of `rows` has (rows before grouping:
    the matches are those values), or None past COUNT_CAP rows, which are not all read."""
    ceiling = rows.order_by(None).limit(COUNT_CAP + 1).subquery()
    found, matches = session.execute(
        select(func.count(), func.count(ceiling.c[0].distinct()))
    ).one()
    return None if found > COUNT_CAP else matches


def paged(
    session: Session,
    stmt: Select,
    order: Sequence,
    query: Query,
    counted: Select,
    *,
    ceiling: Select | None = None,
) -> tuple[list, int | None]:
    """One page of `stmt` in `order`, and how many rows it has (counted in full in the
    form `counted`, the same search written to be cheapest to count whole); no COUNT
    when the page shows the total, or when the client asked for none (_total=none).
    `ceiling`, when given, is the search before grouping (a row per matching row of the
    groups): more than COUNT_CAP of those and the total is left out without grouping them
    all (FHIR allows it), though the groups may be fewer."""
    rows = []
    if query.count:
        rows = session.execute(stmt.order_by(*order).limit(query.count).offset(query.offset)).all()
    if query.count and (0 < len(rows) < query.count or (query.offset == 0 and not rows)):
        return rows, query.offset + len(rows)
    uncapped = ceiling is None or not query.counted or query.exact
    if not uncapped and _under_cap(session, ceiling) is None:
        return rows, None
    # A count that stops at the cap walks the page's own form, which stops early too; the
    # form made for counting everything (hashed sets) first reads every contract.
    return rows, _count(session, counted if query.exact else stmt, query)


def paged_with_total(
    session: Session, stmt: Select, order: Sequence, query: Query
) -> tuple[list, int | None]:
    """One page and the total from one query (COUNT(*) OVER ()), for searches that visit
    every match anyway to order them (by distance, by group); no COUNT of its own unless
    the page is past the end."""
    rows = []
    if query.count and not query.counted:
        rows = session.execute(stmt.order_by(*order).limit(query.count).offset(query.offset))
        return [tuple(row) for row in rows], None
    if query.count:
        windowed = stmt.add_columns(func.count().over())
        rows = session.execute(
            windowed.order_by(*order).limit(query.count).offset(query.offset)
        ).all()
    if rows:
        return [tuple(row[:-1]) for row in rows], rows[0][-1]
    return [], _count(session, stmt, query)


def nearest_first(
    session: Session,
    measured: Callable[[float], Select],
    places: Callable[[float], Select],
    miles: float,
    order: Sequence,
    query: Query,
) -> tuple[list, int | None]:
    """One page of a search ordered by distance, and its total.

    `measured(r)` is the search within r miles, one row per match with its distance;
    `places(r)` the same matches before grouping (a row per match and place), which can
    be counted without measuring them all. The page is looked for in a circle of a
    sixteenth of the distance first, then an eighth, a quarter, a half: the nearest n
    matches within a circle are the nearest n of all, and a city fills a small circle, so
    only its few places are measured and sorted instead of the thousands within the
    distance (each circle costs about a quarter of the next). The total is then
    counted as `paged` counts (up to COUNT_CAP unless _total=accurate), the cap checked on
    the places (more than COUNT_CAP places may still be fewer matches: then the total is
    left out, which FHIR allows, rather than measuring everything). When not even half
    the distance holds the page, all of it is measured, and the total comes with it
    (paged_with_total).
    """
    wanted = query.offset + query.count if query.count else 0
    for share in (1 / 16, 1 / 8, 1 / 4, 1 / 2) if wanted else ():
        rows = session.execute(measured(miles * share).order_by(*order).limit(wanted)).all()
        if len(rows) == wanted:
            page = [tuple(row) for row in rows[query.offset :]]
            if not query.counted:
                return page, None
            if query.exact:
                whole = measured(miles).order_by(None).subquery()
                return page, session.scalar(select(func.count()).select_from(whole)) or 0
            return page, _under_cap(session, places(miles))
    return paged_with_total(session, measured(miles), order, query)


def as_utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def newest(*times: datetime | None) -> datetime | None:
    known = [t for t in (as_utc(t) for t in times) if t is not None]
    return max(known) if known else None


def changed_at(session: Session, entity: str, keys: Iterable[object]) -> dict[str, datetime]:
    """When each record last changed, by the change history (entity, entity_id)."""
    keys = sorted({str(k) for k in keys})
    if not keys:
        return {}
    rows = session.execute(
        select(ChangeRecord.entity_id, func.max(ChangeRecord.occurred_at))
        .where(ChangeRecord.entity == entity, ChangeRecord.entity_id.in_(keys))
        .group_by(ChangeRecord.entity_id)
    ).all()
    return {key: as_utc(when) for key, when in rows}


def networks(session: Session) -> list[Network]:
    return list(session.scalars(select(Network).order_by(Network.key)))
