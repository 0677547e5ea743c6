"""Import a Transparency-in-Coverage in-network rates file as contracts and fee schedules.

What the file says, and what becomes of it:

- provider_references: each provider group (a TIN and its NPIs) becomes an Organization
  (found by TIN, or by NPI when the "TIN" is an NPI) and its NPIs Providers, created with
  nothing but the NPI when unknown. An NPI that fails the check digit (as many sample
  NPIs do, e.g. 1111111111) is rejected with its JSON path; the group's other members
  are still imported.
- network_name: the network(s) of the group, keyed by name ("ACME Choice Provider
  Group" -> "acme-choice-provider-group"), unless one network is given for the whole file.
- in_network: the rates of every provider_group_id go into one fee schedule per (file,
  provider group): "negotiated" and "fee schedule" prices are per-code amounts (per unit),
  "per diem" prices are per day; a "bundle" arrangement gives case rates (the bundle's
  billing code, once per case). "percentage" (of billed charges) and "derived" prices
  are reported, not imported: a fee schedule holds amounts. A second, different price
  for the same code, modifier, billing class and place of service is reported as a
  conflict and the first one kept.
- capitation: a contract with arrangement "capitation" and no fee-for-service rates.
- Contracts run from the file's last_updated_on to the latest expiration_date of the
  group's prices (9999-12-31 or none: open-ended), one per network, party and arrangement.

The whole file is read into memory (fine for the CMS samples and per-provider files;
multi-gigabyte payer files need a streaming reader).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.money import MoneyError, format_money, parse_money
from openhmo.network.importers.report import ImportFileError, ImportReport, read_json
from openhmo.network.models import Organization, Provider
from openhmo.network.npi import InvalidNpi, validate_npi
from openhmo.network.pricing import Rate, RateKey
from openhmo.network.service import (
    NetworkDataError,
    ProviderInfo,
    network_key_for,
    normalise_tin,
    save_contract,
    save_fee_schedule,
    save_network,
    save_organization,
    save_provider,
)

AMOUNT_TYPES = {"negotiated": "per_unit", "fee schedule": "per_unit", "per diem": "per_diem"}
NOT_AMOUNTS = {
    "percentage": "a percentage of billed charges cannot be stored as a fee schedule amount",
    "derived": "a derived price is for internal accounting, not the rate the plan pays",
}
BILLING_CLASSES = {"professional": "professional", "institutional": "institutional", "both": ""}
ALL_PLACES = "CSTM-00"  # the schema's "every place of service"
OPEN_ENDED = date(9999, 12, 31)


@dataclass
class _Group:
    """A provider_group_id of the file: who is in it and what it is paid."""

    group_id: str
    networks: list[str]
    network_names: dict[str, str]
    parties: list[tuple[str, Organization | Provider]] = field(default_factory=list)
    rates: dict[RateKey, tuple[Rate, str]] = field(default_factory=dict)
    arrangements: set[str] = field(default_factory=set)
    expirations: list[date | None] = field(default_factory=list)


def _schedule_key(file: Path, group_id: str) -> str:
    suffix = f"-g{group_id}"
    base = "tic-" + re.sub(r"[^a-z0-9]+", "-", file.stem.lower()).strip("-")
    if len(base) + len(suffix) > 64:
        digest = hashlib.sha1(base.encode()).hexdigest()[:8]
        base = f"{base[: 64 - len(suffix) - 9]}-{digest}"
    return base + suffix


def _date(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise NetworkDataError(f"{value!r} is not a date (YYYY-MM-DD)", field=path) from None


class _Importer:
    def __init__(
        self, session: Session, file: Path, network_key: str | None, actor: str, reason: str
    ) -> None:
        self.session, self.file, self.actor = session, file, actor
        self.network_key = network_key
        self.reason = reason or f"Transparency-in-Coverage in-network rates import of {file.name}"
        self.report = ImportReport(source=file.name)
        self.source = f"tic:{file.name}"
        self.groups: dict[str, _Group] = {}

    def where(self, path: str) -> str:
        return f"{self.file.name} {path}"

    # --- provider references ---

    def references(self, refs: list[Any]) -> None:
        for i, ref in enumerate(refs):
            path = f"provider_references[{i}]"
            if not isinstance(ref, dict) or ref.get("provider_group_id") is None:
                self.report.reject(self.where(path), "provider_group_id", "missing")
                continue
            if ref.get("location"):
                self.report.reject(
                    self.where(path),
                    "location",
                    f"remote provider reference {ref['location']} is not fetched",
                )
                continue
            gid = str(ref["provider_group_id"])
            names = ref.get("network_name") or []
            try:
                networks = (
                    [self.network_key]
                    if self.network_key
                    else [network_key_for(str(n)) for n in names]
                )
            except NetworkDataError as exc:
                self.report.reject(self.where(path), "network_name", str(exc))
                continue
            if not networks:
                self.report.reject(
                    self.where(path),
                    "network_name",
                    "no network name, and no network was given for the file",
                )
                continue
            titles = {} if self.network_key else {network_key_for(str(n)): str(n) for n in names}
            group = self.groups.setdefault(gid, _Group(gid, networks, titles))
            for j, entry in enumerate(ref.get("provider_groups") or []):
                self.provider_group(group, entry, f"{path}.provider_groups[{j}]")

    def provider_group(self, group: _Group, entry: Any, path: str) -> None:
        tin = entry.get("tin") if isinstance(entry, dict) else None
        if not isinstance(tin, dict) or not tin.get("value"):
            self.report.reject(self.where(path), "tin", "missing")
            return
        kind, value = str(tin.get("type", "ein")).lower(), str(tin["value"]).strip()
        org: Organization | None = None
        with self.report.record(self.session, self.where(f"{path}.tin.value")) as c:
            if kind == "npi":
                saved = save_organization(
                    self.session,
                    name=tin.get("business_name") or f"NPI {value}",
                    npi=value,
                    source=self.source,
                    actor=self.actor,
                    reason=self.reason,
                )
            elif kind == "ein":
                saved = save_organization(
                    self.session,
                    name=tin.get("business_name") or f"TIN {normalise_tin(value)}",
                    tin=value,
                    source=self.source,
                    actor=self.actor,
                    reason=self.reason,
                )
            else:
                raise NetworkDataError(f"TIN type {kind!r} is not ein or npi", field="tin.type")
            c.count(saved, "organization")
            org = saved.record
        if org is None:
            return
        label = f"tin={org.tin or org.npi}"
        group.parties.append((label, org))
        for k, npi in enumerate(entry.get("npi") or []):
            npi_path = f"{path}.npi[{k}]"
            try:
                npi = validate_npi(npi)
            except InvalidNpi as exc:
                self.report.reject(self.where(npi_path), "npi", str(exc))
                continue
            with self.report.record(self.session, self.where(npi_path)) as c:
                known = self.session.scalar(select(Provider).where(Provider.npi == npi))
                if known is None:
                    saved = save_provider(
                        self.session,
                        ProviderInfo(
                            npi=npi,
                            entity_type="organization" if npi[0] == "2" else "individual",
                            organization_id=org.id,
                            source=self.source,
                        ),
                        actor=self.actor,
                        reason=self.reason,
                        require_name=False,
                    )
                    c.count(saved, "provider")
                    known = saved.record
                elif known.organization_id is None:
                    c.count(
                        save_provider(
                            self.session,
                            ProviderInfo(npi=npi, organization_id=org.id),
                            actor=self.actor,
                            reason=self.reason,
                            require_name=False,
                        ),
                        "provider",
                    )
                else:
                    c.unchanged["provider"] += 1
                group.parties.append((f"{label}/npi={npi}", known))

    # --- in-network rates ---

    def items(self, items: list[Any]) -> None:
        for i, item in enumerate(items):
            path = f"in_network[{i}]"
            if not isinstance(item, dict):
                self.report.reject(self.where(path), None, "not a JSON object")
                continue
            arrangement = str(item.get("negotiation_arrangement", "")).lower()
            code = str(item.get("billing_code") or "").strip().upper()
            if arrangement not in ("ffs", "bundle", "capitation"):
                self.report.reject(
                    self.where(path),
                    "negotiation_arrangement",
                    f"{arrangement!r} is not ffs, bundle or capitation",
                )
                continue
            if not code or len(code) > 12:
                self.report.reject(
                    self.where(path),
                    "billing_code",
                    f"{code!r} is not a billing code of 1-12 characters",
                )
                continue
            if arrangement == "bundle" and item.get("bundled_codes"):
                covered = ", ".join(str(b.get("billing_code")) for b in item["bundled_codes"])
                self.report.note(
                    f"{path}: bundle {code} covers {covered}; its case rate is stored under {code}"
                )
            for m, rate in enumerate(item.get("negotiated_rates") or []):
                self.negotiated_rate(arrangement, code, rate, f"{path}.negotiated_rates[{m}]")

    def negotiated_rate(self, arrangement: str, code: str, rate: Any, path: str) -> None:
        if not isinstance(rate, dict):
            self.report.reject(self.where(path), None, "not a JSON object")
            return
        if rate.get("provider_groups"):
            self.report.reject(
                self.where(path),
                "provider_groups",
                "inline provider groups (schema 1.x) are not supported; use provider_references",
            )
            return
        groups = []
        for gid in rate.get("provider_references") or []:
            if str(gid) not in self.groups:
                self.report.reject(
                    self.where(path),
                    "provider_references",
                    f"provider group {gid} is not in provider_references",
                )
            else:
                groups.append(self.groups[str(gid)])
        for n, price in enumerate(rate.get("negotiated_prices") or []):
            price_path = f"{path}.negotiated_prices[{n}]"
            try:
                expires, found = self.price(arrangement, code, price)
            except NetworkDataError as exc:
                self.report.reject(self.where(price_path), exc.field, str(exc))
                continue
            for group in groups:
                group.arrangements.add(arrangement)
                group.expirations.append(expires)
                if arrangement == "capitation":
                    continue
                self.add_rates(group, found, price_path)
        if arrangement == "capitation":
            self.report.note(
                f"{path}: capitation amounts are not recorded; the contract is "
                "marked capitation and pays no fee-for-service rates"
            )

    def price(
        self, arrangement: str, code: str, price: Any
    ) -> tuple[date | None, dict[RateKey, Rate]]:
        if not isinstance(price, dict):
            raise NetworkDataError("not a JSON object")
        expires = None
        if price.get("expiration_date"):
            expires = _date(price["expiration_date"], "expiration_date")
            expires = None if expires == OPEN_ENDED else expires
        if arrangement == "capitation":
            return expires, {}
        kind = str(price.get("negotiated_type", "")).lower()
        if kind in NOT_AMOUNTS:
            raise NetworkDataError(
                f"{kind} {price.get('negotiated_rate')}: {NOT_AMOUNTS[kind]}",
                field="negotiated_type",
            )
        if kind not in AMOUNT_TYPES:
            raise NetworkDataError(
                f"negotiated type {kind!r} is not one of "
                f"{', '.join([*AMOUNT_TYPES, *NOT_AMOUNTS])}",
                field="negotiated_type",
            )
        raw = price.get("negotiated_rate")
        try:
            if not isinstance(raw, int | Decimal) or isinstance(raw, bool):
                raise MoneyError(f"{raw!r} is not a number")
            cents = parse_money(raw)
        except MoneyError as exc:
            raise NetworkDataError(str(exc), field="negotiated_rate") from None
        if cents < 0:
            raise NetworkDataError(f"{raw} is negative", field="negotiated_rate")
        billing = str(price.get("billing_class", "")).lower()
        if billing not in BILLING_CLASSES:
            raise NetworkDataError(
                f"billing class {billing!r} is not professional, institutional or both",
                field="billing_class",
            )
        places = [str(p).strip() for p in price.get("service_code") or []]
        if ALL_PLACES in places or not places:
            places = [""]
        bad = [p for p in places if p and not (len(p) == 2 and p.isdigit())]
        if bad:
            raise NetworkDataError(
                f"{', '.join(bad)} are not place of service codes", field="service_code"
            )
        modifiers = [str(m).strip().upper() for m in price.get("billing_code_modifier") or []]
        if any(len(m) != 2 for m in modifiers):
            raise NetworkDataError(
                f"{modifiers} are not two-character modifiers", field="billing_code_modifier"
            )
        unit = "per_case" if arrangement == "bundle" else AMOUNT_TYPES[kind]
        return expires, {
            RateKey(code, m, BILLING_CLASSES[billing], p): Rate(cents, unit)
            for m in (modifiers or [""])
            for p in places
        }

    def add_rates(self, group: _Group, found: dict[RateKey, Rate], path: str) -> None:
        clashes = []
        for key, rate in found.items():
            held = group.rates.get(key)
            if held is None:
                group.rates[key] = (rate, path)
            elif held[0] != rate:
                clashes.append((key, held))
        if clashes:
            key, (rate, first) = clashes[0]
            self.report.reject(
                self.where(path),
                "negotiated_rate",
                f"conflicts with {first} ({format_money(rate.amount_cents)} for "
                f"{key.procedure_code} in provider group {group.group_id}, {len(clashes)} "
                "rate(s)); the first is kept",
            )

    # --- fee schedules and contracts ---

    def contracts(self, effective_from: date, title: str) -> None:
        for gid, group in self.groups.items():
            where = self.where(f"provider group {gid}")
            if not group.arrangements:
                self.report.note(
                    f"provider group {gid} has no rates in {self.file.name}; no contract made"
                )
                continue
            if not group.parties:
                self.report.reject(
                    where,
                    None,
                    "it has no valid organization or provider; its rates are not imported",
                )
                continue
            ends = None if None in group.expirations else max(group.expirations)
            if ends is not None and ends < effective_from:
                self.report.reject(
                    where,
                    "expiration_date",
                    f"the rates expired on {ends}, "
                    f"before the file's last_updated_on {effective_from}",
                )
                continue
            with self.report.record(self.session, where) as c:
                schedule_key = None
                fee_for_service = group.arrangements - {"capitation"}
                if fee_for_service:
                    if not group.rates:
                        raise NetworkDataError("none of its rates could be imported")
                    rates = {k: r for k, (r, _) in group.rates.items()}
                    method = (
                        "case_rate"
                        if all(r.unit == "per_case" for r in rates.values())
                        else "per_code"
                    )
                    schedule_key = _schedule_key(self.file, gid)
                    saved = save_fee_schedule(
                        self.session,
                        key=schedule_key,
                        name=f"{title}, provider group {gid}",
                        method=method,
                        rates=rates,
                        actor=self.actor,
                        reason=self.reason,
                    )
                    c.count(saved, "fee_schedule")
                    if saved.action != "unchanged":
                        c.count(saved, "rate", len(rates))
                arrangements = []
                if fee_for_service:
                    arrangements.append(
                        ("ffs" if "ffs" in fee_for_service else "bundle", schedule_key)
                    )
                if "capitation" in group.arrangements:
                    arrangements.append(("capitation", None))
                for network in group.networks:
                    c.count(
                        save_network(
                            self.session,
                            network,
                            group.network_names.get(network),
                            actor=self.actor,
                            reason=self.reason,
                        ),
                        "network",
                    )
                    for label, party in group.parties:
                        for arrangement, key in arrangements:
                            is_org = isinstance(party, Organization)
                            c.count(
                                save_contract(
                                    self.session,
                                    network_key=network,
                                    organization=party if is_org else None,
                                    provider=None if is_org else party,
                                    fee_schedule_key=key,
                                    effective_from=effective_from,
                                    effective_to=ends,
                                    arrangement=arrangement,
                                    source=f"{self.source}#group={gid}/{label}/{arrangement}",
                                    actor=self.actor,
                                    reason=self.reason,
                                ),
                                "contract",
                            )


def import_tic(
    session: Session, file: Path, *, network_key: str | None = None, actor: str, reason: str = ""
) -> ImportReport:
    """Import one in-network rates file in the caller's transaction."""
    file = Path(file)
    data = read_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("in_network"), list):
        raise ImportFileError(f"{file}: not an in-network rates file (no in_network list)")
    try:
        effective_from = _date(data.get("last_updated_on"), "last_updated_on")
    except NetworkDataError as exc:
        raise ImportFileError(
            f"{file}: last_updated_on: {exc}; the contracts cannot be dated"
        ) from None
    importer = _Importer(session, file, network_key, actor, reason)
    refs = data.get("provider_references") or []
    if not isinstance(refs, list):
        raise ImportFileError(f"{file}: provider_references is not a list")
    importer.references(refs)
    importer.items(data["in_network"])
    title = " ".join(str(data[k]) for k in ("reporting_entity_name", "plan_name") if data.get(k))
    importer.contracts(effective_from, title or file.stem)
    return importer.report
