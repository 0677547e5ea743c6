"""Import providers from an NPPES-style CSV (the NPPES dissemination file's column names).

Columns read (NPPES names; any other column is ignored):
  NPI, Entity Type Code (1 individual, 2 organization),
  Provider Organization Name (Legal Business Name), Provider Last Name (Legal Name),
  Provider First Name, Provider Credential Text, Provider Sex Code (or the older
  Provider Gender Code), Provider First Line / Second Line Business Practice Location
  Address, Provider Business Practice Location Address City Name / State Name /
  Postal Code / Telephone Number, Healthcare Provider Taxonomy Code_1.._15 and
  Healthcare Provider Primary Taxonomy Switch_1.._15 (the primary one is used; without
  a "Y", the first code), NPI Deactivation Date / NPI Reactivation Date.

Optional OpenHMO columns (not in NPPES; a plan fills them from credentialing):
  OpenHMO Languages              languages spoken, separated by ";" (e.g. "English; Spanish")
  OpenHMO Accepting New Patients Y or N (blank: unchanged, new providers accept)
  OpenHMO Panel Capacity         the most members the provider takes as PCP (a whole number)
  OpenHMO Organization TIN       the practice's TIN: links the provider to that organization
  OpenHMO Organization Name      the practice's name, when the TIN is new

With a network (and a fee schedule and an effective date), every imported provider
gets a contract in that network from that date. One transaction per file; bad rows
are reported with their line number and column, good rows imported; re-importing the
same file updates in place.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.network.importers.report import ImportFileError, ImportReport
from openhmo.network.models import FeeSchedule
from openhmo.network.service import (
    LocationInfo,
    NetworkDataError,
    ProviderInfo,
    save_contract,
    save_network,
    save_organization,
    save_provider,
)

NPI = "NPI"
ENTITY = "Entity Type Code"
ORG_NAME = "Provider Organization Name (Legal Business Name)"
LAST = "Provider Last Name (Legal Name)"
FIRST = "Provider First Name"
CREDENTIAL = "Provider Credential Text"
SEX = ("Provider Sex Code", "Provider Gender Code")
LINE1 = "Provider First Line Business Practice Location Address"
LINE2 = "Provider Second Line Business Practice Location Address"
CITY = "Provider Business Practice Location Address City Name"
STATE = "Provider Business Practice Location Address State Name"
POSTAL = "Provider Business Practice Location Address Postal Code"
PHONE = "Provider Business Practice Location Address Telephone Number"
TAXONOMY = "Healthcare Provider Taxonomy Code_{}"
PRIMARY = "Healthcare Provider Primary Taxonomy Switch_{}"
DEACTIVATED, REACTIVATED = "NPI Deactivation Date", "NPI Reactivation Date"
LANGUAGES = "OpenHMO Languages"
ACCEPTING = "OpenHMO Accepting New Patients"
CAPACITY = "OpenHMO Panel Capacity"
ORG_TIN = "OpenHMO Organization TIN"
ORG_TIN_NAME = "OpenHMO Organization Name"
REQUIRED = (NPI, ENTITY)
CREDENTIAL_LENGTH = 20

# The service's field names, as this file calls them, for the rejection messages.
FIELDS = {
    "npi": NPI,
    "entity_type": ENTITY,
    "last_name": LAST,
    "organization_name": ORG_NAME,
    "sex": SEX[0],
    "taxonomy_code": TAXONOMY.format(1),
    "zip_code": POSTAL,
    "state": STATE,
    "address": LINE1,
    "panel_capacity": CAPACITY,
    "tin": ORG_TIN,
    "name": ORG_TIN_NAME,
}


def _get(row: dict[str, str | None], column: str) -> str:
    return (row.get(column) or "").strip()


def _primary_taxonomy(row: dict[str, str | None]) -> tuple[str | None, str]:
    codes = [(i, _get(row, TAXONOMY.format(i))) for i in range(1, 16)]
    codes = [(i, c) for i, c in codes if c]
    for i, code in codes:
        if _get(row, PRIMARY.format(i)).upper() == "Y":
            return code, TAXONOMY.format(i)
    return (codes[0][1], TAXONOMY.format(codes[0][0])) if codes else (None, TAXONOMY.format(1))


def _yes_no(value: str, column: str) -> bool | None:
    if not value:
        return None
    if value.upper() in ("Y", "YES", "TRUE", "1"):
        return True
    if value.upper() in ("N", "NO", "FALSE", "0"):
        return False
    raise NetworkDataError(f"{value!r} is not Y or N", field=column)


def _provider_info(
    row: dict[str, str | None], source: str, report: ImportReport, where: str
) -> tuple[ProviderInfo, str]:
    entity = _get(row, ENTITY)
    if entity not in ("1", "2"):
        raise NetworkDataError(
            f"{entity!r} is not 1 (individual) or 2 (organization)", field=ENTITY
        )
    sex = next((_get(row, c).upper() for c in SEX if _get(row, c)), "") or None
    sex = "U" if sex == "X" else sex
    taxonomy, taxonomy_column = _primary_taxonomy(row)
    credential = _get(row, CREDENTIAL) or None
    if credential and len(credential) > CREDENTIAL_LENGTH:
        report.note(
            f"{where}: credential {credential!r} shortened to {CREDENTIAL_LENGTH} characters"
        )
        credential = credential[:CREDENTIAL_LENGTH]
    capacity = _get(row, CAPACITY)
    if capacity and not capacity.isdigit():
        raise NetworkDataError(f"{capacity!r} is not a whole number", field=CAPACITY)
    languages = _get(row, LANGUAGES)
    location = LocationInfo(
        line1=_get(row, LINE1),
        line2=_get(row, LINE2) or None,
        city=_get(row, CITY),
        state=_get(row, STATE),
        zip_code=_get(row, POSTAL),
        phone=_get(row, PHONE) or None,
    )
    info = ProviderInfo(
        npi=_get(row, NPI),
        entity_type="individual" if entity == "1" else "organization",
        first_name=_get(row, FIRST) if entity == "1" else None,
        last_name=_get(row, LAST) if entity == "1" else None,
        organization_name=_get(row, ORG_NAME) if entity == "2" else None,
        credential=credential,
        sex=sex,
        taxonomy_code=taxonomy,
        accepting_new_patients=_yes_no(_get(row, ACCEPTING), ACCEPTING),
        panel_capacity=int(capacity) if capacity else None,
        languages=[lang for lang in languages.split(";") if lang.strip()] if languages else None,
        locations=[location] if any((location.line1, location.city, location.zip_code)) else None,
        source=source,
    )
    return info, taxonomy_column


def import_nppes(
    session: Session,
    file: Path,
    *,
    network_key: str | None = None,
    fee_schedule_key: str | None = None,
    effective: date | None = None,
    actor: str,
    reason: str = "",
) -> ImportReport:
    """Import an NPPES-style CSV in the caller's transaction."""
    file = Path(file)
    reason = reason or f"NPPES provider import of {file.name}"
    if (fee_schedule_key or effective) and not network_key:
        raise ImportFileError("a fee schedule or an effective date needs a network to contract in")
    if network_key and effective is None:
        raise ImportFileError("contracting the providers in a network needs an effective date")
    if (
        fee_schedule_key
        and session.scalar(select(FeeSchedule.id).where(FeeSchedule.key == fee_schedule_key))
        is None
    ):
        raise ImportFileError(f"there is no fee schedule {fee_schedule_key!r}")
    report = ImportReport(source=file.name)
    source = f"nppes:{file.name}"
    try:
        handle = file.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"{file}: cannot read the file: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportFileError(
                f"{file}, line 1: the header has no column {', '.join(repr(c) for c in missing)}"
            )
        if network_key:
            with report.record(session, f"{file.name}, --network") as c:
                c.count(save_network(session, network_key, actor=actor, reason=reason), "network")
        for row in reader:
            where = f"{file.name}, line {reader.line_num}"
            if None in row:
                report.reject(
                    where,
                    None,
                    f"the row has {len(reader.fieldnames or []) + len(row[None])} "
                    f"fields, the header {len(reader.fieldnames or [])}",
                )
                continue
            if _get(row, DEACTIVATED) and not _get(row, REACTIVATED):
                report.reject(
                    where,
                    DEACTIVATED,
                    f"NPI {_get(row, NPI)} was deactivated on {_get(row, DEACTIVATED)}",
                )
                continue
            fields = dict(FIELDS)
            with report.record(session, where, fields) as counts:
                info, fields["taxonomy_code"] = _provider_info(row, source, report, where)
                if _get(row, ORG_TIN):
                    org = save_organization(
                        session,
                        name=_get(row, ORG_TIN_NAME) or f"TIN {_get(row, ORG_TIN)}",
                        tin=_get(row, ORG_TIN),
                        source=source,
                        actor=actor,
                        reason=reason,
                    )
                    counts.count(org, "organization")
                    info = replace(info, organization_id=org.record.id)
                saved = save_provider(session, info, actor=actor, reason=reason)
                counts.count(saved, "provider")
                if network_key and effective:
                    counts.count(
                        save_contract(
                            session,
                            network_key=network_key,
                            provider=saved.record,
                            fee_schedule_key=fee_schedule_key,
                            effective_from=effective,
                            source=f"{source}#npi={saved.record.npi}",
                            actor=actor,
                            reason=reason,
                        ),
                        "contract",
                    )
    return report
