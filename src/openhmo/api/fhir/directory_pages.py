"""Turning a page of directory rows into resources: what each builder needs, in a few
queries per page (never per row), and the resources a search `_include`s.

meta.lastUpdated comes from what the database records: a provider's or organization's
creation and its change history; a role's also from its contracts (their creation,
changes, and the days they started or ended, up to today); a location's from when its
row was written or changed (location.updated_at); a HealthcareService's from its place
and the roles of every provider of its specialty there (in the network or not, so it is
never older than what it shows). The payer comes from configuration, so the payer
Organization carries no lastUpdated rather than an invented one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from openhmo.api.fhir.directory_sql import as_utc, changed_at, newest
from openhmo.history.models import ChangeRecord
from openhmo.interop.fhir import directory as fhir
from openhmo.interop.fhir import directory_orgs as orgs
from openhmo.network.membership import in_network_clause
from openhmo.network.models import (
    Contract,
    Location,
    Network,
    Organization,
    Provider,
    ProviderLanguage,
    ProviderLocation,
)


def languages_of(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(ProviderLanguage.provider_id, ProviderLanguage.language)
        .where(ProviderLanguage.provider_id.in_(ids))
        .order_by(ProviderLanguage.provider_id, ProviderLanguage.language)
    )
    for provider_id, language in rows:
        out.setdefault(provider_id, []).append(language)
    return out


def locations_of(session: Session, ids: Sequence[int]) -> dict[int, list[Location]]:
    """Each provider's locations, primary first."""
    out: dict[int, list[Location]] = {}
    rows = session.execute(
        select(ProviderLocation.provider_id, Location)
        .join(Location, Location.id == ProviderLocation.location_id)
        .where(ProviderLocation.provider_id.in_(ids))
        .order_by(ProviderLocation.provider_id, ProviderLocation.is_primary.desc(), Location.id)
    )
    for provider_id, place in rows:
        out.setdefault(provider_id, []).append(place)
    return out


def networks_of(
    session: Session, ids: Sequence[int], day: date, known: Sequence[Network]
) -> dict[int, list[Network]]:
    """The networks each provider is in on `day`, by membership.in_network_clause."""
    if not ids or not known:
        return {}
    by_id = {n.id: n for n in known}
    parts = [
        select(Provider.id, literal(n.id)).where(
            Provider.id.in_(ids), in_network_clause(n.key, day)
        )
        for n in known
    ]
    out: dict[int, list[Network]] = {}
    for provider_id, network_id in session.execute(union_all(*parts)):
        out.setdefault(provider_id, []).append(by_id[network_id])
    for found in out.values():
        found.sort(key=lambda n: n.key)
    return out


def practitioner_updates(session: Session, providers: Sequence[Provider]) -> dict[int, datetime]:
    changes = changed_at(session, "provider", [p.npi for p in providers])
    return {p.id: newest(p.created_at, changes.get(p.npi)) for p in providers}


def service_updates(
    session: Session,
    places: dict[int, Location],
    services: Sequence[tuple[int, str]],
    day: date,
) -> dict[tuple[int, str], datetime | None]:
    """When each (location, specialty) service last changed: its place, or any role of a
    provider of that specialty there (the providers, their changes and contracts)."""
    wanted = set(services)
    # The columns the two update functions read, not whole providers: a busy place's
    # specialty may have hundreds.
    rows = session.execute(
        select(
            Provider.id,
            Provider.npi,
            Provider.created_at,
            Provider.organization_id,
            Provider.taxonomy_code,
            ProviderLocation.location_id,
        )
        .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
        .where(
            ProviderLocation.location_id.in_(sorted({loc for loc, _ in wanted})),
            Provider.taxonomy_code.in_(sorted({code for _, code in wanted})),
        )
    ).all()
    rows = [r for r in rows if (r.location_id, r.taxonomy_code) in wanted]
    providers = list({r.id: r for r in rows}.values())
    roles = role_updates(session, providers, day, practitioner_updates(session, providers))
    out = {(loc, code): as_utc(places[loc].updated_at) for loc, code in wanted}
    for r in rows:
        key = (r.location_id, r.taxonomy_code)
        out[key] = newest(out[key], roles.get(r.id))
    return out


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def role_updates(
    session: Session, providers: Sequence[Provider], day: date, base: dict[int, datetime]
) -> dict[int, datetime]:
    """A role changes with its provider and with the contracts that put it in networks."""
    ids = [p.id for p in providers]
    org_ids = [p.organization_id for p in providers if p.organization_id is not None]
    edited = (
        select(func.max(ChangeRecord.occurred_at))
        .where(
            ChangeRecord.entity == "contract",
            ChangeRecord.entity_id == cast(Contract.id, String),
        )
        .scalar_subquery()
    )
    contracts = session.execute(
        select(
            Contract.provider_id,
            Contract.organization_id,
            Contract.created_at,
            edited.label("edited"),
            Contract.effective_from,
            Contract.effective_to,
        ).where(or_(Contract.provider_id.in_(ids), Contract.organization_id.in_(org_ids)))
    ).all()
    out = dict(base)
    for p in providers:
        times = [out.get(p.id)]
        for c in contracts:
            if c.provider_id != p.id and (
                c.organization_id is None or c.organization_id != p.organization_id
            ):
                continue
            times += [c.created_at, c.edited]
            if c.effective_from <= day:
                times.append(_midnight(c.effective_from))
            if c.effective_to is not None and c.effective_to < day:
                times.append(_midnight(c.effective_to + timedelta(days=1)))
        out[p.id] = newest(*times)
    return out


def practitioners(session: Session, providers: Sequence[Provider]) -> list[dict[str, Any]]:
    ids = [p.id for p in providers]
    languages = languages_of(session, ids)
    updated = practitioner_updates(session, providers)
    return [
        fhir.practitioner(p, languages=languages.get(p.id, []), updated=updated[p.id])
        for p in providers
    ]


def roles(
    session: Session,
    providers: Sequence[Provider],
    day: date,
    known: Sequence[Network],
    include: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The roles of `providers`, and the resources `include` asks for (each once)."""
    ids = [p.id for p in providers]
    places = locations_of(session, ids)
    networks = networks_of(session, ids, day, known)
    updated = role_updates(session, providers, day, practitioner_updates(session, providers))
    found = [
        fhir.practitioner_role(
            p,
            locations=places.get(p.id, []),
            networks=networks.get(p.id, []),
            updated=updated[p.id],
        )
        for p in providers
    ]
    included: list[dict[str, Any]] = []
    include = set(include)
    if "PractitionerRole:practitioner" in include:
        included += practitioners(session, providers)
    if "PractitionerRole:organization" in include:
        org_ids = sorted({p.organization_id for p in providers if p.organization_id})
        included += organizations(session, org_ids)
    if "PractitionerRole:location" in include:
        unique = {place.id: place for found_ in places.values() for place in found_}
        included += [fhir.location(unique[k], updated=unique[k].updated_at) for k in sorted(unique)]
    if "PractitionerRole:network" in include:
        unique_networks = {n.key: n for found_ in networks.values() for n in found_}
        included += network_organizations(
            session, [unique_networks[k] for k in sorted(unique_networks)]
        )
    return found, included


def organizations(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Provider organizations by id, in that order, with their locations' addresses."""
    if not ids:
        return []
    rows = {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}
    places: dict[int, list[Location]] = {}
    for place in session.scalars(
        select(Location).where(Location.organization_id.in_(ids)).order_by(Location.id)
    ):
        places.setdefault(place.organization_id, []).append(place)
    changes = changed_at(session, "organization", ids)
    return [
        orgs.provider_organization(
            rows[i],
            places=places.get(i, []),
            updated=newest(rows[i].created_at, changes.get(str(i))),
        )
        for i in ids
        if i in rows
    ]


def network_organizations(session: Session, networks: Sequence[Network]) -> list[dict[str, Any]]:
    changes = changed_at(session, "network", [n.key for n in networks])
    return [orgs.network_organization(n, updated=as_utc(changes.get(n.key))) for n in networks]
