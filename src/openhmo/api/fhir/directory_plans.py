"""The directory's searches of who runs what: Organization (the payer, the networks and
the provider organizations, in that order) and InsurancePlan (by plan key)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import false, func, not_, or_, select, true
from sqlalchemy.orm import Session, selectinload

from openhmo.api.fhir import directory_pages as pages
from openhmo.api.fhir.directory_params import Clause, Query, reference_id, token
from openhmo.api.fhir.directory_sql import changed_at, newest, strings, token_codes, token_in
from openhmo.config import PlanIdentity
from openhmo.interop.fhir import directory_orgs as orgs
from openhmo.interop.fhir.common import NPI_SYSTEM, PLAN_SYSTEM, TIN_SYSTEM
from openhmo.interop.fhir.directory import PAYER_ID, number_after
from openhmo.network.models import Network, Organization
from openhmo.network.taxonomy import taxonomy_table
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of


def _text_matches(text: str, clause: Clause) -> bool:
    """FHIR string search on one value in Python (for the payer, which has no row)."""
    for value in clause.values:
        if clause.modifier == "exact" and text == value:
            return True
        if clause.modifier == "contains" and value.strip().lower() in text.lower():
            return True
        if clause.modifier is None and text.lower().startswith(value.strip().lower()):
            return True
    return False


def _types(query: Query) -> list[set[str]]:
    return [set(token_codes(c, orgs.ORG_TYPE_SYSTEM)) for c in query.all("type")]


def _partof(query: Query) -> list[set[str]]:
    return [{reference_id(v, "Organization") for v in c.values} for c in query.all("partof")]


def _payer_matches(query: Query, identity: PlanIdentity) -> bool:
    known = {orgs.PAYER_SYSTEM: identity.payer_id, TIN_SYSTEM: identity.ein}
    for clause in query.all("identifier"):
        if not any(
            code is not None
            and any(s in (None, system) and code == v for system, v in known.items())
            for s, code in map(token, clause.values)
        ):
            return False
    return (
        all(PAYER_ID in c.values for c in query.all("_id"))
        and all(_text_matches(identity.name, c) for c in query.all("name"))
        and all(t & {"payer", "*"} for t in _types(query))
        and not _partof(query)
    )


def _network_where(query: Query) -> list:
    where = []
    for clause in query.all("_id"):
        keys = [v.removeprefix("network-") for v in clause.values if v.startswith("network-")]
        where.append(Network.key.in_(keys))
    where += [token_in(Network.key, c, orgs.NETWORK_SYSTEM) for c in query.all("identifier")]
    where += strings(query, "name", [Network.name])
    where += [true() if t & {"ntwk", "*"} else false() for t in _types(query)]
    where += [true() if PAYER_ID in p else false() for p in _partof(query)]
    return where


def _facility_codes() -> list[str]:
    return sorted(
        code for code, t in taxonomy_table().items() if t.grouping in orgs.FACILITY_GROUPINGS
    )


def _organization_where(query: Query) -> list:
    where = []
    for clause in query.all("_id"):
        where.append(
            Organization.id.in_(
                [n for v in clause.values if (n := number_after("org-", v)) is not None]
            )
        )
    where += [token_in(Organization.npi, c, NPI_SYSTEM) for c in query.all("identifier")]
    where += strings(query, "name", [Organization.name])
    facility = or_(
        Organization.kind.in_(("facility", "hospital")),
        func.coalesce(Organization.taxonomy_code, "").in_(_facility_codes()),
    )
    for wanted in _types(query):
        if "*" in wanted or {"fac", "prvgrp"} <= wanted:
            continue
        where.append(
            facility if "fac" in wanted else not_(facility) if "prvgrp" in wanted else false()
        )
    where += [false() for _ in _partof(query)]
    return where


def search_organizations(
    session: Session, query: Query, identity: PlanIdentity
) -> tuple[list[dict[str, Any]], int]:
    """The payer, then networks (by key), then provider organizations (by name)."""
    payer = 1 if _payer_matches(query, identity) else 0
    network_stmt = select(Network).where(*_network_where(query))
    networks_total = session.scalar(
        select(func.count()).select_from(network_stmt.with_only_columns(Network.id).subquery())
    )
    org_stmt = select(Organization.id).where(*_organization_where(query))
    orgs_total = session.scalar(select(func.count()).select_from(org_stmt.subquery()))
    found: list[dict[str, Any]] = []
    start, end = query.offset, query.offset + query.count
    if start < payer and end > 0:
        found.append(orgs.payer_organization(identity))
    first, last = max(0, start - payer), max(0, end - payer)
    if last > first and first < networks_total:
        picked = session.scalars(
            network_stmt.order_by(Network.key).offset(first).limit(last - first)
        ).all()
        found += pages.network_organizations(session, picked)
    first, last = max(0, first - networks_total), max(0, last - networks_total)
    if last > first and first < orgs_total:
        ids = session.scalars(
            org_stmt.order_by(func.lower(Organization.name), Organization.id)
            .offset(first)
            .limit(last - first)
        ).all()
        found += pages.organizations(session, ids)
    return found, payer + networks_total + orgs_total


def _owner(query: Query, name: str) -> list:
    return [
        true() if PAYER_ID in {reference_id(v, "Organization") for v in c.values} else false()
        for c in query.all(name)
    ]


def search_plans(session: Session, query: Query, day: date) -> tuple[list[dict[str, Any]], int]:
    where = [Plan.years.any()]
    where += [Plan.plan_key.in_(c.values) for c in query.all("_id")]
    for clause in query.all("identifier"):
        keys = token_codes(clause, PLAN_SYSTEM)
        bare = [code for s, code in map(token, clause.values) if s is None and code]
        where.append(or_(Plan.plan_key.in_(keys), Plan.hios_plan_id.in_(bare)))
    where += strings(query, "name", [Plan.name])
    for clause in query.all("type"):
        kinds = [
            k
            for c in token_codes(clause, orgs.PRODUCT_TYPE_SYSTEM)
            for k in orgs.product_type_codes(c)
        ]
        where.append(Plan.plan_type.in_(kinds))
    for clause in query.all("network"):
        ids = [reference_id(v, "Organization") or "" for v in clause.values]
        where.append(
            Plan.network_key.in_(
                [i.removeprefix("network-") for i in ids if i.startswith("network-")]
            )
        )
    where += _owner(query, "owned-by") + _owner(query, "administered-by")
    stmt = select(Plan).where(*where).options(selectinload(Plan.years))
    rows = []
    if query.count:
        rows = session.scalars(
            stmt.order_by(Plan.plan_key).offset(query.offset).limit(query.count)
        ).all()
    total = session.scalar(
        select(func.count()).select_from(stmt.with_only_columns(Plan.id).subquery())
    )
    return plans(session, rows, day), total or 0


def plans(session: Session, rows: Sequence[Plan], day: date) -> list[dict[str, Any]]:
    changes = changed_at(session, "plan", [p.plan_key for p in rows])
    return [
        orgs.insurance_plan(
            p, design_of(p), today=day, updated=newest(p.created_at, changes.get(p.plan_key))
        )
        for p in rows
    ]
