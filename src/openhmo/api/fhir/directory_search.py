"""The directory's searches of people and places: Practitioner, PractitionerRole, Location
and HealthcareService, each one SQL query for the page and one COUNT.

Practitioners and roles are ordered by name (family, given, then row id: a stable order
for paging) along the partial indexes of network.models, so a page stops after its
rows; or, when searched `near` a point, by distance (then the order they were added),
where every match has to be measured anyway and the page and its total come from one
query. Locations are
ordered by id or distance; healthcare services by location and specialty.

Who is in a network is membership.in_network_clause, on the day of the request (its
set form, in_network_set_clause, where the whole result is counted). HealthcareService
lists only what in-network providers offer (it has no element to say "out of network");
PractitionerRole lists every individual provider and names, in its network-reference
extensions, the networks the provider is in today.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Select, and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session

from openhmo.api.fhir.directory_params import Query, one_near, reference_id, token
from openhmo.api.fhir.directory_sql import (
    INDIVIDUAL,
    NAME_ORDER,
    in_any_network,
    miles_from,
    nearest_first,
    paged,
    paged_with_total,
    strings,
    token_codes,
    token_in,
    within,
)
from openhmo.interop.fhir.common import NPI_SYSTEM, NUCC_SYSTEM
from openhmo.interop.fhir.directory import number_after, parse_service_id
from openhmo.interop.fhir.directory_codes import (
    ACCEPTING_SYSTEM,
    ROLE_SYSTEM,
    SERVICE_CATEGORY_SYSTEM,
    service_category,
    taxonomy_codes_of_role,
)
from openhmo.network.membership import in_network_clause, in_network_set_clause
from openhmo.network.models import Location, Network, Provider, ProviderLocation
from openhmo.network.taxonomy import taxonomy_table

_ACCEPTING_CODES = {"newpt": True, "nopt": False}
_BOOLEANS = {"true": True, "false": False}


def _ids(query: Query, name: str, resource_type: str, prefix: str) -> list[list[int]]:
    """Row ids named by each occurrence of a reference (or _id) parameter."""
    found = []
    for clause in query.all(name):
        ids = []
        for value in clause.values:
            fhir_id = reference_id(value, resource_type) if name != "_id" else value
            number = number_after(prefix, fhir_id) if fhir_id else None
            if number is not None:
                ids.append(number)
        found.append(ids)
    return found


def _by_id(session: Session, model, ids: list[int]) -> dict:
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def _upper(code: str) -> str:
    return code.strip().upper()


def _accepting(query: Query, matches) -> list:
    """`new-patient`: AcceptingPatientsCS newpt / nopt, or true / false without a system.

    existptonly / existptfam (existing patients only) match no one: we record only
    whether a provider takes new patients.
    """
    clauses = []
    for clause in query.all("new-patient"):
        flags = set()
        for value in clause.values:
            system, code = token(value)
            if system in (None, ACCEPTING_SYSTEM) and code in _ACCEPTING_CODES:
                flags.add(_ACCEPTING_CODES[code])
            elif system is None and code and code.lower() in _BOOLEANS:
                flags.add(_BOOLEANS[code.lower()])
        if len(flags) == 1:
            clauses.append(matches(flags.pop()))
        elif not flags:
            clauses.append(false())
    return clauses


def _network_keys(query: Query) -> list[list[str]]:
    found = []
    for clause in query.all("network"):
        keys = []
        for value in clause.values:
            fhir_id = reference_id(value, "Organization") or ""
            if fhir_id.startswith("network-"):
                keys.append(fhir_id.removeprefix("network-"))
        found.append(keys)
    return found


def network_filter(
    query: Query, day: date, known: Sequence[Network], *, whole: bool = False
) -> list:
    """`network`: in one of the named networks today (the set form when `whole`)."""
    names = {n.key for n in known}
    form = in_network_set_clause if whole else in_network_clause
    clauses = []
    for keys in _network_keys(query):
        wanted = [form(k, day) for k in keys if k in names]
        clauses.append(or_(*wanted) if wanted else false())
    return clauses


def search_practitioners(session: Session, query: Query) -> tuple[list[Provider], int | None]:
    where = [INDIVIDUAL]
    where += [Provider.npi.in_(c.values) for c in query.all("_id")]
    where += [token_in(Provider.npi, c, NPI_SYSTEM) for c in query.all("identifier")]
    where += strings(query, "name", [Provider.last_name, Provider.first_name])
    where += strings(query, "family", [Provider.last_name])
    where += strings(query, "given", [Provider.first_name])
    stmt = select(Provider).where(*where)
    rows, total = paged(session, stmt, NAME_ORDER, query, select(Provider.id).where(*where))
    return [row[0] for row in rows], total


def search_roles(
    session: Session, query: Query, day: date, known: Sequence[Network]
) -> tuple[list[tuple[Provider, float | None]], int | None]:
    """Individual providers matching the search, with their distance for `location.near`.

    Near a point, the nearest come first (providers at the same distance, such as those
    of one practice, in the order they were added): every provider within the distance
    is measured, then one query gives the page and the total.
    """
    where = [Provider.id.in_(ids) for ids in _ids(query, "_id", "PractitionerRole", "role-")]
    for clause in query.all("practitioner"):
        npis = [reference_id(v, "Practitioner") for v in clause.values]
        where.append(Provider.npi.in_([n for n in npis if n]))
    for ids in _ids(query, "organization", "Organization", "org-"):
        where.append(Provider.organization_id.in_(ids))
    for ids in _ids(query, "location", "Location", "loc-"):
        where.append(
            exists().where(
                ProviderLocation.provider_id == Provider.id, ProviderLocation.location_id.in_(ids)
            )
        )
    for clause in query.all("specialty"):
        where.append(token_in(Provider.taxonomy_code, clause, NUCC_SYSTEM, _upper))
    for clause in query.all("role"):
        codes = [c for r in token_codes(clause, ROLE_SYSTEM) for c in taxonomy_codes_of_role(r)]
        where.append(Provider.taxonomy_code.in_(codes) if codes else false())
    where += _accepting(query, lambda flag: Provider.accepting_new_patients == flag)
    point = one_near(query, "location.near")
    if point is None:
        page = select(Provider).where(INDIVIDUAL, *where, *network_filter(query, day, known))
        counted = select(Provider.id).where(
            INDIVIDUAL, *where, *network_filter(query, day, known, whole=True)
        )
        rows, total = paged(session, page, NAME_ORDER, query, counted)
        return [(row[0], None) for row in rows], total
    # Filter first, then keep each provider's nearest place: the database measures only
    # the places within the distance, and groups only the providers that qualify. With
    # other filters, the few providers left are looked up in the contracts one by one
    # (in_network_clause); with none, the network is read once (the set form).
    nearest = func.min(miles_from(point.latitude, point.longitude)).label("miles")

    def places(miles: float):
        return (
            select(ProviderLocation.provider_id)
            .join(Location, Location.id == ProviderLocation.location_id)
            .join(Provider, Provider.id == ProviderLocation.provider_id)
            .where(
                within(point.latitude, point.longitude, miles),
                INDIVIDUAL,
                *where,
                *network_filter(query, day, known, whole=not where),
            )
        )

    def measured(miles: float):
        return places(miles).add_columns(nearest).group_by(ProviderLocation.provider_id)

    order = (nearest, ProviderLocation.provider_id)
    rows, total = nearest_first(session, measured, places, point.miles, order, query)
    found = _by_id(session, Provider, [provider_id for provider_id, _ in rows])
    return [(found[provider_id], distance) for provider_id, distance in rows], total


def search_locations(
    session: Session, query: Query
) -> tuple[list[tuple[Location, float | None]], int | None]:
    where = [Location.id.in_(ids) for ids in _ids(query, "_id", "Location", "loc-")]
    where += strings(query, "name", [Location.name, Location.line1])
    where += strings(
        query, "address", [Location.line1, Location.city, Location.state, Location.zip_code]
    )
    where += strings(query, "address-city", [Location.city])
    where += strings(query, "address-state", [Location.state])
    where += strings(query, "address-postalcode", [Location.zip_code])
    for ids in _ids(query, "organization", "Organization", "org-"):
        where.append(Location.organization_id.in_(ids))
    point = one_near(query, "near")
    if point is None:
        counted = select(Location.id).where(*where)
        rows, total = paged(session, select(Location).where(*where), (Location.id,), query, counted)
        return [(row[0], None) for row in rows], total
    miles = miles_from(point.latitude, point.longitude).label("miles")
    stmt = select(Location.id, miles).where(
        *where, within(point.latitude, point.longitude, point.miles)
    )
    rows, total = paged_with_total(session, stmt, (miles, Location.id), query)
    found = _by_id(session, Location, [location_id for location_id, _ in rows])
    return [(found[location_id], distance) for location_id, distance in rows], total


def _service_codes(query: Query) -> list:
    clauses = []
    for clause in query.all("category"):
        wanted = set(token_codes(clause, SERVICE_CATEGORY_SYSTEM))
        codes = [c for c in taxonomy_table() if "*" in wanted or service_category(c) in wanted]
        clauses.append(Provider.taxonomy_code.in_(codes) if codes else false())
    return clauses


def search_services(
    session: Session, query: Query, day: date, known: Sequence[Network]
) -> tuple[list[tuple[int, str, bool]], int | None]:
    """(location id, taxonomy code, accepting new patients) of each service on the page."""
    accepting = func.max(case((Provider.accepting_new_patients.is_(True), 1), else_=0))
    where = [Provider.taxonomy_code.is_not(None)]
    for clause in query.all("_id"):
        pairs = [p for v in clause.values if (p := parse_service_id(v))]
        where.append(
            or_(
                *[
                    and_(ProviderLocation.location_id == loc, Provider.taxonomy_code == code)
                    for loc, code in pairs
                ]
            )
            if pairs
            else false()
        )
    for clause in query.all("specialty"):
        where.append(token_in(Provider.taxonomy_code, clause, NUCC_SYSTEM, _upper))
    where += _service_codes(query)
    for ids in _ids(query, "location", "Location", "loc-"):
        where.append(ProviderLocation.location_id.in_(ids))
    for ids in _ids(query, "organization", "Organization", "org-"):
        where.append(
            ProviderLocation.location_id.in_(
                select(Location.id).where(Location.organization_id.in_(ids))
            )
        )
    having = _accepting(query, lambda flag: accepting == (1 if flag else 0))

    def services(in_network) -> Select:
        stmt = (
            select(ProviderLocation.location_id, Provider.taxonomy_code, accepting)
            .join(Provider, Provider.id == ProviderLocation.provider_id)
            .where(*where, in_network)
            .group_by(ProviderLocation.location_id, Provider.taxonomy_code)
        )
        return stmt.having(and_(*having)) if having else stmt

    # Walked in the order of the places (their index), with the network looked up row by
    # row, the groups come one after another and a page stops early; a count stops at the
    # cap of rows before grouping. An accurate total groups them all, the network read
    # once (the set form).
    by_row = in_any_network(known, day)
    ceiling = (
        select(ProviderLocation.location_id)
        .join(Provider, Provider.id == ProviderLocation.provider_id)
        .where(*where, by_row)
    )
    order = (ProviderLocation.location_id, Provider.taxonomy_code)
    whole = services(in_any_network(known, day, whole=True))
    rows, total = paged(session, services(by_row), order, query, whole, ceiling=ceiling)
    return [(loc, code, bool(flag)) for loc, code, flag in rows], total
