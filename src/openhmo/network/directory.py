"""The provider directory: find providers by specialty, distance, language, availability.

`search` answers what a member asks a plan's directory: "a Spanish-speaking family
doctor within 10 miles of 02108 who takes new patients". Distance is the great-circle
miles from the ZIP centroid to each provider location; the database first keeps only
locations inside a latitude/longitude box around the ZIP (cheap, uses plain columns),
then the exact haversine distance decides and orders the result. Each provider
appears once, at its nearest location.

Specialty is text ("dermatology", "OB/GYN") or a taxonomy code or prefix ("207Q",
"208000000X"). Text matches the provider's specialty and, where the text names a
specialty OpenHMO knows (specialty_names.csv), that specialty's taxonomy codes.
"""

from __future__ import annotations

import math
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from openhmo.network.membership import in_network_clause
from openhmo.network.models import Location, Provider, ProviderLanguage, ProviderLocation
from openhmo.network.taxonomy import UnknownTaxonomy, search_prefix, taxonomy_for_specialty
from openhmo.reference.geo import distance_miles, lookup_zip

_TAXONOMY_PREFIX = re.compile(r"^[0-9]{3}[0-9A-Z]{0,6}X?$")
MILES_PER_DEGREE_LATITUDE = 69.0


@dataclass(frozen=True)
class DirectoryEntry:
    provider: Provider
    location: Location | None
    distance_miles: float | None
    in_network: bool | None


def _specialty_clause(specialty: str):
    text = specialty.strip()
    if _TAXONOMY_PREFIX.match(text.upper()):
        return Provider.taxonomy_code.like(f"{text.upper()}%")
    clauses = [func.lower(Provider.specialty).like(f"%{text.lower()}%")]
    # Text that names a known specialty also finds providers listed only by taxonomy code.
    with suppress(UnknownTaxonomy):
        code = taxonomy_for_specialty(text)
        clauses.append(Provider.taxonomy_code.like(f"{search_prefix(code)}%"))
    return or_(*clauses)


def _box(lat: float, lon: float, miles: float):
    """A latitude/longitude box that holds every point within `miles` of (lat, lon)."""
    dlat = miles / MILES_PER_DEGREE_LATITUDE
    # A degree of longitude shrinks with the cosine of the latitude; near the poles the
    # box simply spans all longitudes.
    cos = math.cos(math.radians(min(abs(lat) + dlat, 90.0)))
    dlon = 360.0 if cos < 0.01 else miles / (MILES_PER_DEGREE_LATITUDE * cos)
    return and_(
        Location.latitude.between(lat - dlat, lat + dlat),
        Location.longitude.between(lon - dlon, lon + dlon),
    )


def search(
    session: Session,
    *,
    network_key: str | None = None,
    on: date | None = None,
    specialty: str | None = None,
    near_zip: str | None = None,
    within_miles: float | None = None,
    language: str | None = None,
    accepting_new_patients: bool | None = None,
    pcp_only: bool = False,
    include_out_of_network: bool = False,
    limit: int = 50,
) -> list[DirectoryEntry]:
    """Providers matching every filter given, nearest first (by name without a ZIP).

    With `network_key`, only providers in that network on `on` (default today) are
    returned, unless `include_out_of_network`, which returns everyone with the
    in-network flag set. `within_miles` needs `near_zip` (UnknownZip if unknown); a
    search near a ZIP leaves out providers with no location on the map.
    """
    if within_miles is not None and near_zip is None:
        raise ValueError("within_miles needs near_zip: the distance is from a ZIP code")
    if within_miles is not None and within_miles < 0:
        raise ValueError(f"within_miles must not be negative ({within_miles})")
    on = on or date.today()
    in_network = in_network_clause(network_key, on) if network_key else false()
    stmt = (
        select(Provider, Location, ProviderLocation.is_primary, in_network.label("in_network"))
        .outerjoin(ProviderLocation, ProviderLocation.provider_id == Provider.id)
        .outerjoin(Location, Location.id == ProviderLocation.location_id)
    )
    if network_key and not include_out_of_network:
        stmt = stmt.where(in_network)
    if specialty:
        stmt = stmt.where(_specialty_clause(specialty))
    if language:
        stmt = stmt.where(
            exists(
                select(ProviderLanguage.provider_id).where(
                    ProviderLanguage.provider_id == Provider.id,
                    func.lower(ProviderLanguage.language) == language.strip().lower(),
                )
            )
        )
    if accepting_new_patients is not None:
        stmt = stmt.where(Provider.accepting_new_patients == accepting_new_patients)
    if pcp_only:
        stmt = stmt.where(Provider.pcp_eligible.is_(True))
    origin = None
    if near_zip is not None:
        z = lookup_zip(near_zip)
        origin = (z.lat, z.lon)
        stmt = stmt.where(Location.latitude.is_not(None), Location.longitude.is_not(None))
        if within_miles is not None:
            stmt = stmt.where(_box(z.lat, z.lon, within_miles))
    stmt = stmt.options(selectinload(Provider.languages)).order_by(Provider.id, Location.id)

    best: dict[int, DirectoryEntry] = {}
    for provider, location, is_primary, flag in session.execute(stmt):
        distance = None
        if origin is not None and location is not None:
            distance = distance_miles(origin[0], origin[1], location.latitude, location.longitude)
            if within_miles is not None and distance > within_miles:
                continue
        entry = DirectoryEntry(provider, location, distance, bool(flag) if network_key else None)
        held = best.get(provider.id)
        if held is None:
            best[provider.id] = entry
        elif distance is not None and held.distance_miles is not None:
            if distance < held.distance_miles:
                best[provider.id] = entry
        elif is_primary:
            # Without a ZIP to measure from, the provider's primary location is shown.
            best[provider.id] = entry
    entries = list(best.values())
    if origin is not None:
        entries.sort(key=lambda e: (e.distance_miles, _name_key(e.provider)))
    else:
        entries.sort(key=lambda e: _name_key(e.provider))
    return entries[:limit]


def _name_key(provider: Provider) -> tuple[str, str, str]:
    return (
        (provider.last_name or provider.organization_name or "").lower(),
        (provider.first_name or "").lower(),
        provider.npi,
    )
