"""The provider directory as Da Vinci PDex Plan-Net (STU 1.1) resources: who and where.

Practitioner, PractitionerRole, Location and HealthcareService from our network rows
(openhmo.network.models); organizations, networks and plans are in directory_orgs.py.
Pure functions: the API shell loads the rows (and what they link to) and passes them in;
nothing here touches a relationship that would load more.

Ids: Practitioner = NPI, PractitionerRole = "role-<provider.id>", Location = "loc-<id>",
HealthcareService = "hcs-<location.id>-<taxonomy code>" (one per place and specialty).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from openhmo.interop.fhir.common import NPI_SYSTEM, NUCC_SYSTEM, coding, reference
from openhmo.interop.fhir.directory_codes import (
    ACCEPTING,
    ACCEPTING_SYSTEM,
    CATEGORY_DISPLAY,
    LANGUAGE_CODES,
    LANGUAGE_SYSTEM,
    LOCATION_DISTANCE,
    NETWORK_REFERENCE,
    NEWPATIENTS,
    PROFILE,
    ROLE_SYSTEM,
    SERVICE_CATEGORY_SYSTEM,
    UCUM,
    role_code,
    service_category,
    taxonomy_of,
)
from openhmo.network.models import Location, Network, Provider

# --- ids ----------------------------------------------------------------------------------


PAYER_ID = "payer"


def organization_id(organization_id_: int) -> str:
    return f"org-{organization_id_}"


def network_id(network_key: str) -> str:
    return f"network-{network_key}"


def role_id(provider_id: int) -> str:
    return f"role-{provider_id}"


def location_id(location_id_: int) -> str:
    return f"loc-{location_id_}"


def service_id(location_id_: int, taxonomy_code: str) -> str:
    return f"hcs-{location_id_}-{taxonomy_code}"


def number_after(prefix: str, fhir_id: str) -> int | None:
    """The row id in "role-12" (prefix "role-"), or None when the id is not one of ours."""
    if not fhir_id.startswith(prefix):
        return None
    rest = fhir_id[len(prefix) :]
    if not rest.isascii() or not rest.isdigit() or len(rest) > 18:
        return None
    return int(rest)


def parse_service_id(fhir_id: str) -> tuple[int, str] | None:
    """(location id, taxonomy code) of "hcs-<location id>-<code>", or None."""
    number, _, code = fhir_id.removeprefix("hcs-").partition("-")
    if not fhir_id.startswith("hcs-") or not code or len(code) > 10:
        return None
    location = number_after("", number)
    return None if location is None else (location, code)


# --- shared pieces -------------------------------------------------------------------------


def last_updated(when: datetime | None) -> str | None:
    if when is None:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def meta(profile: str | None, when: datetime | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if when is not None:
        out["lastUpdated"] = last_updated(when)
    if profile:
        out["profile"] = [PROFILE + profile]
    return out


def specialty(code: str) -> dict[str, Any]:
    """A NUCC taxonomy code as a CodeableConcept (display from the shipped code set)."""
    known = taxonomy_of(code)
    out: dict[str, Any] = {
        "coding": [coding(NUCC_SYSTEM, code, known.display_name if known else None)]
    }
    if known:
        out["text"] = known.specialty
    return out


def new_patients(accepting: bool) -> dict[str, Any]:
    code, display = ACCEPTING[accepting]
    return {
        "url": NEWPATIENTS,
        "extension": [
            {
                "url": "acceptingPatients",
                "valueCodeableConcept": {"coding": [coding(ACCEPTING_SYSTEM, code, display)]},
            }
        ],
    }


def network_reference(network: Network) -> dict[str, Any]:
    return {
        "url": NETWORK_REFERENCE,
        "valueReference": reference("Organization", network_id(network.key), network.name),
    }


def _phone(location: Location | None) -> list[dict[str, Any]]:
    if location is None or not location.phone:
        return []
    return [{"system": "phone", "value": location.phone, "use": "work"}]


def address(location: Location) -> dict[str, Any]:
    out: dict[str, Any] = {
        "use": "work",
        "type": "physical",
        "line": [line for line in (location.line1, location.line2) if line],
        "city": location.city,
        "state": location.state,
        "postalCode": location.zip_code,
        "country": "US",
    }
    return {k: v for k, v in out.items() if v}


def distance_extension(miles: float) -> dict[str, Any]:
    """Bundle.entry.search.extension: how far a `near` search found this entry."""
    return {
        "url": LOCATION_DISTANCE,
        "valueDistance": {
            "value": round(miles, 3),
            "unit": "mi",
            "system": UCUM,
            "code": "[mi_i]",
        },
    }


# --- resources -----------------------------------------------------------------------------


def practitioner(
    provider: Provider, *, languages: Sequence[str], updated: datetime | None
) -> dict[str, Any]:
    """plannet-Practitioner of an individual provider (id = NPI)."""
    name: dict[str, Any] = {"use": "official", "text": provider.display_name}
    if provider.last_name:
        name["family"] = provider.last_name
    if provider.first_name:
        name["given"] = [provider.first_name]
    if provider.credential:
        name["suffix"] = [provider.credential]
    out: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": provider.npi,
        "meta": meta("Practitioner", updated),
        "identifier": [{"use": "official", "system": NPI_SYSTEM, "value": provider.npi}],
        "active": True,
        "name": [name],
    }
    gender = {"M": "male", "F": "female"}.get(provider.sex or "")
    if gender:
        out["gender"] = gender
    if provider.taxonomy_code:
        out["qualification"] = [{"code": specialty(provider.taxonomy_code)}]
    if languages:
        out["communication"] = [_language(lang) for lang in languages]
    return out


def _language(name: str) -> dict[str, Any]:
    code = LANGUAGE_CODES.get(name)
    if code is None:
        return {"text": name}
    return {"coding": [coding(LANGUAGE_SYSTEM, code, name)], "text": name}


def practitioner_role(
    provider: Provider,
    *,
    locations: Sequence[Location],
    networks: Sequence[Network],
    updated: datetime | None,
) -> dict[str, Any]:
    """plannet-PractitionerRole: the provider's specialty, places and networks today.

    `networks` are the networks the provider is in today (membership.in_network_clause);
    `locations` the provider's places, primary first.
    """
    extensions = [new_patients(provider.accepting_new_patients)]
    extensions += [network_reference(n) for n in networks]
    code, display = role_code(provider.taxonomy_code)
    out: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": role_id(provider.id),
        "meta": meta("PractitionerRole", updated),
        "extension": extensions,
        "active": True,
        "practitioner": reference("Practitioner", provider.npi, provider.display_name),
        "code": [{"coding": [coding(ROLE_SYSTEM, code, display)]}],
    }
    if provider.organization_id is not None:
        out["organization"] = reference("Organization", organization_id(provider.organization_id))
    if provider.taxonomy_code:
        out["specialty"] = [specialty(provider.taxonomy_code)]
    if locations:
        out["location"] = [reference("Location", location_id(loc.id)) for loc in locations]
    telecom = _phone(locations[0] if locations else None)
    if telecom:
        out["telecom"] = telecom
    return out


def location(place: Location, *, updated: datetime | None) -> dict[str, Any]:
    """plannet-Location (US Core Location): the address, its phone and map position."""
    out: dict[str, Any] = {
        "resourceType": "Location",
        "id": location_id(place.id),
        "meta": meta("Location", updated),
        "status": "active",
        "name": place.name or ", ".join(p for p in (place.line1, place.city) if p),
        "address": address(place),
    }
    telecom = _phone(place)
    if telecom:
        out["telecom"] = telecom
    if place.latitude is not None and place.longitude is not None:
        out["position"] = {"longitude": place.longitude, "latitude": place.latitude}
    if place.organization_id is not None:
        out["managingOrganization"] = reference(
            "Organization", organization_id(place.organization_id)
        )
    return out


def healthcare_service(
    place: Location, taxonomy_code: str, *, accepting: bool, updated: datetime | None
) -> dict[str, Any]:
    """plannet-HealthcareService: one specialty offered at one place by in-network providers.

    `accepting`: whether any of them takes new patients.
    """
    category = service_category(taxonomy_code)
    known = taxonomy_of(taxonomy_code)
    what = known.specialty if known else taxonomy_code
    where = place.name or ", ".join(p for p in (place.line1, place.city) if p)
    out: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": service_id(place.id, taxonomy_code),
        "meta": meta("HealthcareService", updated),
        "extension": [new_patients(accepting)],
        "active": True,
        "category": [
            {"coding": [coding(SERVICE_CATEGORY_SYSTEM, category, CATEGORY_DISPLAY[category])]}
        ],
        "specialty": [specialty(taxonomy_code)],
        "location": [reference("Location", location_id(place.id))],
        "name": f"{what} at {where}",
    }
    if place.organization_id is not None:
        out["providedBy"] = reference("Organization", organization_id(place.organization_id))
    telecom = _phone(place)
    if telecom:
        out["telecom"] = telecom
    return out
