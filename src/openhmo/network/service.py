"""Writing the provider network: organizations, providers, networks, fee schedules, contracts.

Every write validates its input (NPI check digit, taxonomy, ZIP, dates), records the
change with actor and reason, and leaves committing to the caller. The `save_*`
functions are idempotent (they find the record by its identity and update it) and
say whether they added, updated or left it unchanged, which the importers count; the
`add_*` functions are the same calls returning just the record.

Identities: a provider is its NPI; an organization its NPI, else its TIN, else
(source, external id); a network and a fee schedule their key; a contract its network,
party and source (or effective date, when it has no source).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from openhmo.history.record import record_change
from openhmo.network.medicare import MedicareFeeError, find_locality
from openhmo.network.models import (
    Contract,
    FeeSchedule,
    FeeScheduleRate,
    Location,
    Network,
    Organization,
    Provider,
    ProviderLanguage,
    ProviderLocation,
)
from openhmo.network.npi import InvalidNpi, validate_npi
from openhmo.network.pricing import METHODS, FeeScheduleSnapshot, Rate, RateKey
from openhmo.network.taxonomy import UnknownTaxonomy, lookup_taxonomy, roles_of
from openhmo.reference.geo import UnknownZip, lookup_zip, normalise_zip

T = TypeVar("T")
Action = Literal["added", "updated", "unchanged"]
ARRANGEMENTS = ("ffs", "capitation", "bundle")
ENTITY_TYPES = ("individual", "organization")
_NETWORK_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class NetworkDataError(ValueError):
    """Input the network refuses; `field` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownNetwork(NetworkDataError):
    pass


@dataclass(frozen=True)
class Saved(Generic[T]):
    record: T
    action: Action
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LocationInfo:
    line1: str
    city: str
    state: str
    zip_code: str
    line2: str | None = None
    name: str | None = None
    phone: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class ProviderInfo:
    """What we know of a provider. None means "not known here": the stored value stays,
    or for a new provider is derived (specialty and roles from the taxonomy)."""

    npi: str
    entity_type: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization_name: str | None = None
    credential: str | None = None
    sex: str | None = None
    taxonomy_code: str | None = None
    specialty: str | None = None
    pcp_eligible: bool | None = None
    pediatrics: bool | None = None
    ob_gyn: bool | None = None
    accepting_new_patients: bool | None = None
    panel_capacity: int | None = None
    organization_id: int | None = None
    languages: Sequence[str] | None = None
    locations: Sequence[LocationInfo] | None = None
    source: str | None = None
    external_id: str | None = None


def _clean(text: str | None) -> str | None:
    text = " ".join(str(text).split()) if text is not None else None
    return text or None


def _apply(record: object, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set the values that differ; the changes as {field: [old, new]}."""
    changes = {}
    for name, value in values.items():
        old = getattr(record, name)
        if old != value:
            changes[name] = [old, value]
            setattr(record, name, value)
    return changes


def _plain(value: Any) -> Any:
    # The history is JSON; a percent stays exact as text rather than becoming a float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _record(
    session: Session, saved: Saved, entity: str, entity_id: object, actor: str, reason: str
) -> None:
    if saved.action != "unchanged":
        record_change(
            session,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=f"{entity}_{saved.action}",
            changes=_plain(saved.changes),
            reason=reason,
        )


# --- networks ---------------------------------------------------------------------------


def network_key_for(name: str) -> str:
    """A network key from a name: 'ACME Choice Provider Group' -> 'acme-choice-provider-group'."""
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].rstrip("-")
    if not key:
        raise NetworkDataError(f"network name {name!r} gives no key", field="network")
    return key


def save_network(
    session: Session, key: str, name: str | None = None, *, actor: str, reason: str = ""
) -> Saved[Network]:
    if not _NETWORK_KEY.match(key):
        raise NetworkDataError(
            f"network key {key!r} must be 1-64 lowercase letters, digits, '.', '_' or '-'",
            field="network",
        )
    network = session.scalar(select(Network).where(Network.key == key))
    if network is None:
        network = Network(key=key, name=name or key)
        session.add(network)
        session.flush()
        saved = Saved(network, "added", {"key": key, "name": network.name})
    else:
        changes = _apply(network, {"name": name}) if name else {}
        saved = Saved(network, "updated" if changes else "unchanged", changes)
    _record(session, saved, "network", key, actor, reason)
    return saved


def ensure_network(
    session: Session, key: str, name: str | None = None, *, actor: str, reason: str = ""
) -> Network:
    return save_network(session, key, name, actor=actor, reason=reason).record


def get_network(session: Session, key: str) -> Network:
    network = session.scalar(select(Network).where(Network.key == key))
    if network is None:
        raise UnknownNetwork(f"there is no network {key!r}", field="network")
    return network


# --- organizations ----------------------------------------------------------------------


def normalise_tin(tin: str) -> str:
    """An EIN as NN-NNNNNNN; refuses anything that is not nine digits."""
    digits = re.sub(r"[\s-]", "", str(tin))
    if not (digits.isdigit() and len(digits) == 9):
        raise NetworkDataError(f"TIN {tin!r} is not nine digits", field="tin")
    return f"{digits[:2]}-{digits[2:]}"


def save_organization(
    session: Session,
    *,
    name: str,
    tin: str | None = None,
    npi: str | None = None,
    kind: str = "group",
    taxonomy_code: str | None = None,
    source: str = "",
    external_id: str | None = None,
    actor: str,
    reason: str = "",
) -> Saved[Organization]:
    name = _clean(name) or ""
    if not name:
        raise NetworkDataError("organization name is missing", field="name")
    try:
        npi = validate_npi(npi) if npi else None
    except InvalidNpi as exc:
        raise NetworkDataError(str(exc), field="npi") from None
    tin = normalise_tin(tin) if tin else None
    if taxonomy_code:
        taxonomy_code = _known_taxonomy(taxonomy_code)
    org = None
    if npi:
        org = session.scalar(select(Organization).where(Organization.npi == npi))
    if org is None and tin:
        org = session.scalar(
            select(Organization).where(Organization.tin == tin).order_by(Organization.id).limit(1)
        )
    if org is None and external_id:
        org = session.scalar(
            select(Organization).where(
                Organization.source == source, Organization.external_id == external_id
            )
        )
    values = {
        "name": name,
        "tin": tin,
        "npi": npi,
        "kind": kind,
        "taxonomy_code": taxonomy_code,
        "external_id": external_id,
    }
    if org is None:
        org = Organization(source=source, **values)
        session.add(org)
        session.flush()
        saved = Saved(org, "added", {k: v for k, v in values.items() if v is not None})
    else:
        # What this source does not know (None) does not erase what another source said.
        changes = _apply(org, {k: v for k, v in values.items() if v is not None})
        saved = Saved(org, "updated" if changes else "unchanged", changes)
    _record(session, saved, "organization", org.id, actor, reason)
    return saved


def add_organization(
    session: Session,
    *,
    name: str,
    tin: str | None = None,
    npi: str | None = None,
    kind: str = "group",
    taxonomy_code: str | None = None,
    source: str = "",
    external_id: str | None = None,
    actor: str,
    reason: str = "",
) -> Organization:
    return save_organization(
        session,
        name=name,
        tin=tin,
        npi=npi,
        kind=kind,
        taxonomy_code=taxonomy_code,
        source=source,
        external_id=external_id,
        actor=actor,
        reason=reason,
    ).record


# --- providers --------------------------------------------------------------------------


def _known_taxonomy(code: str) -> str:
    try:
        return lookup_taxonomy(code).code
    except UnknownTaxonomy as exc:
        raise NetworkDataError(str(exc), field="taxonomy_code") from None


def _check_name(info: ProviderInfo, existing: Provider | None) -> None:
    """A provider needs a name; one already stored keeps its name when `info` has none."""
    entity_type = info.entity_type or (existing.entity_type if existing else "individual")
    if entity_type == "individual" and not (
        _clean(info.last_name)
        or (existing and existing.entity_type == "individual" and existing.last_name)
    ):
        raise NetworkDataError(f"provider {info.npi} has no last name", field="last_name")
    if entity_type == "organization" and not (
        _clean(info.organization_name) or (existing and existing.organization_name)
    ):
        raise NetworkDataError(
            f"provider {info.npi} has no organization name", field="organization_name"
        )


def _check_provider(info: ProviderInfo) -> ProviderInfo:
    try:
        npi = validate_npi(info.npi)
    except InvalidNpi as exc:
        raise NetworkDataError(str(exc), field="npi") from None
    if info.entity_type is not None and info.entity_type not in ENTITY_TYPES:
        raise NetworkDataError(
            f"entity type {info.entity_type!r} is not one of {', '.join(ENTITY_TYPES)}",
            field="entity_type",
        )
    if info.sex is not None and info.sex not in ("F", "M", "U"):
        raise NetworkDataError(f"sex {info.sex!r} is not F, M or U", field="sex")
    if info.panel_capacity is not None and info.panel_capacity < 0:
        raise NetworkDataError(
            f"panel capacity {info.panel_capacity} is negative", field="panel_capacity"
        )
    taxonomy = _known_taxonomy(info.taxonomy_code) if info.taxonomy_code else None
    return replace(info, npi=npi, taxonomy_code=taxonomy)


def _geocode(loc: LocationInfo) -> dict[str, Any]:
    """A location's row values, with county and (when not given) the ZIP centroid."""
    try:
        zip_code = normalise_zip(loc.zip_code)
        known = lookup_zip(zip_code)
    except UnknownZip as exc:
        if loc.latitude is None or loc.longitude is None:
            raise NetworkDataError(
                f"{exc}; the location cannot be placed on the map", field="zip_code"
            ) from None
        known, zip_code = None, re.sub(r"\D", "", loc.zip_code)[:5]
    if not _clean(loc.line1) or not _clean(loc.city):
        raise NetworkDataError("the address has no street line or no city", field="address")
    state = (_clean(loc.state) or "").upper()
    if len(state) != 2:
        raise NetworkDataError(f"state {loc.state!r} is not a two-letter code", field="state")
    return {
        "line1": _clean(loc.line1),
        "line2": _clean(loc.line2),
        "city": _clean(loc.city),
        "state": state,
        "zip_code": zip_code,
        "name": _clean(loc.name),
        "phone": _clean(loc.phone),
        "county_fips": known.county_fips if known else None,
        "latitude": loc.latitude if loc.latitude is not None else known.lat,
        "longitude": loc.longitude if loc.longitude is not None else known.lon,
    }


def _find_or_add_location(
    session: Session, values: dict[str, Any], organization_id: int | None
) -> Location:
    # Providers of one practice share its address: one Location row per address.
    same = [
        Location.line1 == values["line1"],
        Location.city == values["city"],
        Location.state == values["state"],
        Location.zip_code == values["zip_code"],
        Location.line2.is_(None) if values["line2"] is None else Location.line2 == values["line2"],
        Location.organization_id.is_(None)
        if organization_id is None
        else Location.organization_id == organization_id,
    ]
    location = session.scalar(select(Location).where(*same).order_by(Location.id).limit(1))
    if location is None:
        location = Location(organization_id=organization_id, **values)
        session.add(location)
        session.flush()
    else:
        _apply(location, {k: v for k, v in values.items() if v is not None})
    return location


def _derived(info: ProviderInfo) -> dict[str, Any]:
    roles = roles_of(info.taxonomy_code)
    derived = {
        "specialty": info.specialty
        if info.specialty is not None
        else (lookup_taxonomy(info.taxonomy_code).specialty if info.taxonomy_code else ""),
        "pcp_eligible": roles.pcp_eligible if info.pcp_eligible is None else info.pcp_eligible,
        "pediatrics": roles.pediatric if info.pediatrics is None else info.pediatrics,
        "ob_gyn": roles.ob_gyn if info.ob_gyn is None else info.ob_gyn,
    }
    derived["specialty"] = derived["specialty"][:120]
    return derived


def save_provider(
    session: Session, info: ProviderInfo, *, actor: str, reason: str = "", require_name: bool = True
) -> Saved[Provider]:
    """Add the provider of `info.npi`, or update it with what `info` knows.

    `require_name=False` admits a provider known only by NPI (a rate file names no one).
    """
    info = _check_provider(info)
    provider = session.scalar(select(Provider).where(Provider.npi == info.npi))
    if require_name:
        _check_name(info, provider)
    geocoded = [_geocode(loc) for loc in info.locations] if info.locations is not None else None
    texts = ("first_name", "last_name", "organization_name", "credential")
    others = (
        "entity_type",
        "sex",
        "taxonomy_code",
        "accepting_new_patients",
        "panel_capacity",
        "organization_id",
        "source",
        "external_id",
    )
    # An empty name is an unknown one; it never erases a name another source gave.
    values = {n: v for n in texts if (v := _clean(getattr(info, n))) is not None}
    values.update({n: v for n in others if (v := getattr(info, n)) is not None})
    taxonomy_changed = provider is None or (
        info.taxonomy_code is not None and info.taxonomy_code != provider.taxonomy_code
    )
    if taxonomy_changed or info.specialty is not None:
        derived = _derived(info)
        values["specialty"] = derived["specialty"]
    if taxonomy_changed:
        values.update({k: derived[k] for k in ("pcp_eligible", "pediatrics", "ob_gyn")})
    values.update(
        {
            k: getattr(info, k)
            for k in ("pcp_eligible", "pediatrics", "ob_gyn")
            if getattr(info, k) is not None
        }
    )
    if provider is None:
        values.setdefault("entity_type", "individual")
        provider = Provider(npi=info.npi, **values)
        session.add(provider)
        session.flush()
        action: Action = "added"
        changes = {"npi": info.npi, **values}
    else:
        changes = _apply(provider, values)
        action = "updated" if changes else "unchanged"
    if info.languages is not None:
        wanted = sorted({_clean(lang).title() for lang in info.languages if _clean(lang)})
        have = sorted(pl.language for pl in provider.languages)
        if wanted != have:
            provider.languages = [ProviderLanguage(language=lang) for lang in wanted]
            changes["languages"] = [have, wanted]
    if geocoded is not None:
        org_id = provider.organization_id
        wanted_ids = []
        for values_ in geocoded:
            location_id = _find_or_add_location(session, values_, org_id).id
            if location_id not in wanted_ids:
                wanted_ids.append(location_id)
        have_ids = [
            pl.location_id for pl in sorted(provider.locations, key=lambda pl: not pl.is_primary)
        ]
        if wanted_ids != have_ids:
            provider.locations = [
                ProviderLocation(location_id=lid, is_primary=(i == 0))
                for i, lid in enumerate(wanted_ids)
            ]
            changes["locations"] = [have_ids, wanted_ids]
    if changes and action == "unchanged":
        action = "updated"
    session.flush()
    saved = Saved(provider, action, changes)
    _record(session, saved, "provider", provider.npi, actor, reason)
    return saved


def add_provider(
    session: Session,
    *,
    npi: str,
    entity_type: str = "individual",
    first_name: str | None = None,
    last_name: str | None = None,
    organization_name: str | None = None,
    credential: str | None = None,
    sex: str | None = None,
    taxonomy_code: str | None = None,
    specialty: str | None = None,
    pcp_eligible: bool | None = None,
    pediatrics: bool | None = None,
    ob_gyn: bool | None = None,
    accepting_new_patients: bool = True,
    panel_capacity: int | None = None,
    organization: Organization | None = None,
    languages: Sequence[str] = (),
    locations: Sequence[LocationInfo] = (),
    source: str = "",
    external_id: str | None = None,
    actor: str,
    reason: str = "",
) -> Provider:
    """A provider, validated; specialty and PCP/pediatric/OB-GYN roles from the taxonomy
    unless given; locations placed at the ZIP centroid unless latitude/longitude are given."""
    info = ProviderInfo(
        npi=npi,
        entity_type=entity_type,
        first_name=first_name,
        last_name=last_name,
        organization_name=organization_name,
        credential=credential,
        sex=sex,
        taxonomy_code=taxonomy_code,
        specialty=specialty,
        pcp_eligible=pcp_eligible,
        pediatrics=pediatrics,
        ob_gyn=ob_gyn,
        accepting_new_patients=accepting_new_patients,
        panel_capacity=panel_capacity,
        organization_id=organization.id if organization else None,
        languages=languages,
        locations=locations,
        source=source,
        external_id=external_id,
    )
    return save_provider(session, info, actor=actor, reason=reason).record


def get_provider(session: Session, npi: str) -> Provider | None:
    return session.scalar(select(Provider).where(Provider.npi == str(npi).strip()))


# --- fee schedules ----------------------------------------------------------------------


def save_fee_schedule(
    session: Session,
    *,
    key: str,
    name: str,
    method: str,
    percent: Decimal | None = None,
    medicare_locality: str | None = None,
    medicare_year: int | None = None,
    rates: Mapping[RateKey, Rate] | None = None,
    actor: str,
    reason: str = "",
) -> Saved[FeeSchedule]:
    """A fee schedule; `rates` (when given) replace the schedule's per-code amounts."""
    if method not in METHODS:
        raise NetworkDataError(
            f"method {method!r} is not one of {', '.join(METHODS)}", field="method"
        )
    if not key or len(key) > 64:
        raise NetworkDataError(f"fee schedule key {key!r} must be 1-64 characters", field="key")
    if method == "percent_of_medicare":
        if percent is None or Decimal(percent) <= 0:
            raise NetworkDataError("percent of Medicare needs a positive percent", field="percent")
        if not medicare_locality:
            raise NetworkDataError(
                "percent of Medicare needs a Medicare locality (e.g. MA-01)",
                field="medicare_locality",
            )
        try:
            medicare_locality = find_locality(medicare_locality).key
        except MedicareFeeError as exc:
            raise NetworkDataError(str(exc), field="medicare_locality") from None
        medicare_year = medicare_year or 2022
    values = {
        "name": name,
        "method": method,
        "percent": Decimal(percent) if percent is not None else None,
        "medicare_locality": medicare_locality,
        "medicare_year": medicare_year,
    }
    schedule = session.scalar(select(FeeSchedule).where(FeeSchedule.key == key))
    if schedule is None:
        schedule = FeeSchedule(key=key, **values)
        session.add(schedule)
        action: Action = "added"
        changes = {k: v for k, v in values.items() if v is not None}
    else:
        changes = _apply(schedule, values)
        action = "updated" if changes else "unchanged"
    if rates is not None:
        for k in rates:
            if (
                not k.procedure_code
                or len(k.procedure_code) > 12
                or len(k.modifier) > 2
                or len(k.place_of_service) > 2
                or len(k.billing_class) > 16
            ):
                raise NetworkDataError(
                    f"rate key {k} does not fit: code 1-12 characters, "
                    "modifier and place of service 2",
                    field="rates",
                )
        wanted = {
            (
                k.procedure_code,
                k.modifier,
                k.billing_class,
                k.place_of_service,
                r.unit,
                r.amount_cents,
            )
            for k, r in rates.items()
        }
        have = {
            (
                r.procedure_code,
                r.modifier,
                r.billing_class,
                r.place_of_service,
                r.unit,
                r.amount_cents,
            )
            for r in schedule.rates
        }
        if wanted != have:
            schedule.rates = [
                FeeScheduleRate(
                    procedure_code=c,
                    modifier=m,
                    billing_class=b,
                    place_of_service=p,
                    unit=u,
                    amount_cents=a,
                )
                for c, m, b, p, u, a in sorted(wanted)
            ]
            changes["rates"] = {"added": len(wanted - have), "removed": len(have - wanted)}
            action = "added" if action == "added" else "updated"
    session.flush()
    saved = Saved(schedule, action, changes)
    _record(session, saved, "fee_schedule", key, actor, reason)
    return saved


def add_fee_schedule(
    session: Session,
    *,
    key: str,
    name: str,
    method: str,
    percent: Decimal | None = None,
    medicare_locality: str | None = None,
    medicare_year: int | None = None,
    rates: Mapping[RateKey, Rate] | None = None,
    actor: str,
    reason: str = "",
) -> FeeSchedule:
    return save_fee_schedule(
        session,
        key=key,
        name=name,
        method=method,
        percent=percent,
        medicare_locality=medicare_locality,
        medicare_year=medicare_year,
        rates=rates,
        actor=actor,
        reason=reason,
    ).record


def fee_schedule_snapshot(session: Session, fee_schedule_id: int) -> FeeScheduleSnapshot:
    """The schedule as plain data for pricing.allowed_amount."""
    schedule = session.get(FeeSchedule, fee_schedule_id)
    if schedule is None:
        raise NetworkDataError(f"there is no fee schedule #{fee_schedule_id}", field="fee_schedule")
    return FeeScheduleSnapshot(
        key=schedule.key,
        method=schedule.method,
        percent=schedule.percent,
        medicare_locality=schedule.medicare_locality,
        medicare_year=schedule.medicare_year or 2022,
        rates={
            RateKey(r.procedure_code, r.modifier, r.billing_class, r.place_of_service): Rate(
                r.amount_cents, r.unit
            )
            for r in schedule.rates
        },
    )


# --- contracts --------------------------------------------------------------------------


def save_contract(
    session: Session,
    *,
    network_key: str,
    provider: Provider | None = None,
    organization: Organization | None = None,
    fee_schedule_key: str | None = None,
    effective_from: date,
    effective_to: date | None = None,
    arrangement: str = "ffs",
    source: str = "",
    actor: str,
    reason: str = "",
) -> Saved[Contract]:
    """Put a provider or an organization in a network from `effective_from` (inclusive)
    to `effective_to` (inclusive; None: open-ended)."""
    if (provider is None) == (organization is None):
        raise NetworkDataError(
            "a contract names a provider or an organization (one of them)", field="party"
        )
    if effective_to is not None and effective_to < effective_from:
        raise NetworkDataError(
            f"the contract ends ({effective_to}) before it starts ({effective_from})",
            field="effective_to",
        )
    if arrangement not in ARRANGEMENTS:
        raise NetworkDataError(
            f"arrangement {arrangement!r} is not one of {', '.join(ARRANGEMENTS)}",
            field="arrangement",
        )
    network = get_network(session, network_key)
    schedule_id = None
    if fee_schedule_key:
        schedule_id = session.scalar(
            select(FeeSchedule.id).where(FeeSchedule.key == fee_schedule_key)
        )
        if schedule_id is None:
            raise NetworkDataError(
                f"there is no fee schedule {fee_schedule_key!r}", field="fee_schedule"
            )
    party = (
        (Contract.provider_id == provider.id)
        if provider
        else (Contract.organization_id == organization.id)
    )
    same = Contract.source == source if source else Contract.effective_from == effective_from
    contract = session.scalar(
        select(Contract)
        .where(Contract.network_id == network.id, party, same)
        .order_by(Contract.id)
        .limit(1)
    )
    values = {
        "fee_schedule_id": schedule_id,
        "effective_from": effective_from,
        "effective_to": effective_to,
        "arrangement": arrangement,
        "source": source,
    }
    if contract is None:
        contract = Contract(
            network_id=network.id,
            provider_id=provider.id if provider else None,
            organization_id=organization.id if organization else None,
            **values,
        )
        session.add(contract)
        session.flush()
        who = {"provider": provider.npi} if provider else {"organization": organization.name}
        saved = Saved(contract, "added", {"network": network_key, **who, **values})
    else:
        changes = _apply(contract, values)
        saved = Saved(contract, "updated" if changes else "unchanged", changes)
    _record(session, saved, "contract", contract.id, actor, reason)
    return saved


def add_contract(
    session: Session,
    network_key: str,
    *,
    provider: Provider | None = None,
    organization: Organization | None = None,
    fee_schedule_key: str | None = None,
    effective_from: date,
    effective_to: date | None = None,
    arrangement: str = "ffs",
    source: str = "",
    actor: str,
    reason: str = "",
) -> Contract:
    return save_contract(
        session,
        network_key=network_key,
        provider=provider,
        organization=organization,
        fee_schedule_key=fee_schedule_key,
        effective_from=effective_from,
        effective_to=effective_to,
        arrangement=arrangement,
        source=source,
        actor=actor,
        reason=reason,
    ).record


def contracts_for(
    session: Session, provider_id: int, network_key: str, day: date
) -> list[Contract]:
    """The provider's contracts in the network in effect on `day`, the one that governs first:
    the provider's own before its organization's, then the latest to start, then the newest."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        return []
    party = Contract.provider_id == provider.id
    if provider.organization_id is not None:
        party = or_(party, Contract.organization_id == provider.organization_id)
    own_first = case((Contract.provider_id == provider.id, 0), else_=1)
    return list(
        session.scalars(
            select(Contract)
            .join(Network, Network.id == Contract.network_id)
            .where(
                Network.key == network_key,
                party,
                Contract.effective_from <= day,
                or_(Contract.effective_to.is_(None), Contract.effective_to >= day),
            )
            .order_by(own_first, Contract.effective_from.desc(), Contract.id.desc())
        )
    )


def contract_for(
    session: Session, provider_id: int, network_key: str, day: date
) -> Contract | None:
    found = contracts_for(session, provider_id, network_key, day)
    return found[0] if found else None
