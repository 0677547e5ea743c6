"""Import a Synthea CSV export as members of a plan and providers of a network.

Synthea (https://synthetichealth.github.io/synthea) writes synthetic patients with their
providers, organizations and encounters. This module turns a directory of its CSV files
into OpenHMO data, in the caller's transaction:

- organizations.csv: an Organization per row (kind "facility": Synthea's organizations
  are the clinics, hospitals and nursing homes its providers work at), with its address
  as a Location.
- providers.csv: an individual Provider per row, with its address (a 9-digit ZIP is
  fine), its organization, SPECIALITY mapped to a NUCC taxonomy through
  specialty_names.csv (GENERAL PRACTICE is 208D00000X, PCP-eligible), and a contract
  in the chosen network from the effective date.
- patients.csv: each living patient becomes a subscriber with self-only coverage.
  Synthea simulates individuals, not households, so no one becomes anyone's dependent.
  A patient who died before the effective date is skipped; one who dies later is
  enrolled and their coverage ends on the day of death. The plan's own rules apply
  (enroll_subscriber): a patient outside the service area, or with an address the ZIP
  table does not know, is refused with the reason.
- encounters.csv: a patient of a plan that requires a PCP gets as initial PCP the
  provider they saw most in wellness and ambulatory encounters, when that provider is
  available; everyone still without one then goes through the plan's ordinary
  auto-assignment (which covers every member of the plan lacking a PCP on that date).

The NPIs are synthetic. Synthea gives no NPI or TIN, so each provider and organization
gets one derived from its Synthea UUID: a leading 9 (provider) or 8 (organization), then
the UUID's value modulo 10^8, then the Luhn check digit. NPPES has only issued NPIs
beginning with 1 or 2, so a synthetic NPI passes every check yet can never be, or be
merged into, a real provider's; two UUIDs that land on one NPI are reported, not merged.
The Synthea id is kept as external_id, which makes re-running the import an update:
providers and organizations are found by their NPI, patients already enrolled (by
external_id) are left alone.

Every row is written in its own savepoint: a refused row leaves nothing behind and is
reported with its file, line and reason, while the other rows go through.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openhmo.enrollment.models import Member
from openhmo.enrollment.pcp import auto_assign, choose_pcp
from openhmo.enrollment.service import (
    AddressIn,
    EnrollmentError,
    PersonIn,
    enroll_subscriber,
    terminate_member,
)
from openhmo.network.models import FeeSchedule, Organization, Provider
from openhmo.network.npi import make_npi
from openhmo.network.service import (
    LocationInfo,
    NetworkDataError,
    ProviderInfo,
    Saved,
    _find_or_add_location,
    _geocode,
    save_contract,
    save_network,
    save_organization,
    save_provider,
)
from openhmo.network.taxonomy import UnknownTaxonomy, taxonomy_for_specialty
from openhmo.plans.store import UnknownPlan, design_of, get_plan, plan_year_on
from openhmo.reference.geo import zip_for_town

SOURCE = "synthea"
ORGANIZATIONS, PROVIDERS = "organizations.csv", "providers.csv"
PATIENTS, ENCOUNTERS = "patients.csv", "encounters.csv"
NPI_PREFIX = {"provider": "9", "organization": "8"}
PCP_ENCOUNTER_CLASSES = ("wellness", "ambulatory")
NO_ZIP = "00000"  # what Synthea writes when its ZIP table has no code for the town

# The services' field names as the Synthea files call them, for the rejections.
ORGANIZATION_COLUMNS = {
    "name": "NAME",
    "npi": "Id",
    "zip_code": "ZIP",
    "state": "STATE",
    "address": "ADDRESS",
}
PROVIDER_COLUMNS = {
    "npi": "Id",
    "first_name": "NAME",
    "last_name": "NAME",
    "sex": "GENDER",
    "taxonomy_code": "SPECIALITY",
    "zip_code": "ZIP",
    "state": "STATE",
    "address": "ADDRESS",
}
PATIENT_COLUMNS = {
    "first_name": "FIRST",
    "last_name": "LAST",
    "birth_date": "BIRTHDATE",
    "sex": "GENDER",
    "line1": "ADDRESS",
    "city": "CITY",
    "state": "STATE",
    "zip_code": "ZIP",
}


class SyntheaImportError(ValueError):
    """The import cannot run at all (no such directory, plan or fee schedule)."""


class _RowError(ValueError):
    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Rejection:
    """Where (file, line; no line for a whole file) and why a row did not go in."""

    file: str
    line: int | None
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{where}, {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


@dataclass
class SyntheaReport:
    directory: str
    organizations: int = 0  # rows saved, whether new, updated or unchanged
    providers: int = 0
    enrolled: int = 0
    already_enrolled: int = 0
    pcp_from_encounters: int = 0
    pcp_auto_assigned: int = 0
    pcp_none_available: int = 0
    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    skips: list[Rejection] = field(default_factory=list)  # by rule: died before coverage
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[Rejection] = field(default_factory=list)  # went in, with a caveat

    @property
    def skipped(self) -> int:
        return len(self.skips)

    @property
    def refused(self) -> int:
        """Rows of patients.csv refused for their data or by the plan's rules."""
        # Line 1 is the header: a problem there is the file's, not a patient's.
        return sum(1 for r in self.rejections if r.file == PATIENTS and (r.line or 0) > 1)

    def reject(self, file: str, line: int | None, reason: str, column: str | None = None) -> None:
        self.rejections.append(Rejection(file, line, reason, column))

    def count(self, saved: Saved, kind: str) -> None:
        if saved.action != "unchanged":
            getattr(self, saved.action)[kind] += 1


def synthetic_npi(synthea_id: str, kind: str) -> str:
    """The NPI standing for a Synthea provider or organization (see the module docstring)."""
    try:
        value = uuid.UUID(synthea_id).int
    except ValueError:
        raise _RowError(f"{synthea_id!r} is not a Synthea UUID", "Id") from None
    return make_npi(f"{NPI_PREFIX[kind]}{value % 10**8:08d}")


def plain_name(text: str) -> str:
    """'Ted955' -> 'Ted': Synthea appends digits to names to keep them unique."""
    return " ".join(re.sub(r"\d+", "", text).split())


@cache
def _state_codes() -> dict[str, str]:
    # addfips, already used for counties, ships every state's name with its postal code.
    text = resources.files("addfips").joinpath("data/states.csv").read_text("utf-8")
    return {r["name"].upper(): r["postal"] for r in csv.DictReader(io.StringIO(text))}


def state_code(text: str) -> str:
    """'Massachusetts' (Synthea's patients) or 'MA' (its providers) -> 'MA'."""
    name = " ".join(text.split()).upper()
    if name in _state_codes().values():
        return name
    if name in _state_codes():
        return _state_codes()[name]
    raise _RowError(f"{text!r} is not a US state", "STATE")


def _date(row: Mapping[str, str], column: str) -> date | None:
    if not row.get(column):
        return None
    try:
        return date.fromisoformat(row[column])
    except ValueError:
        raise _RowError(f"{row[column]!r} is not a date (YYYY-MM-DD)", column) from None


def _number(row: Mapping[str, str], column: str) -> float | None:
    if not row.get(column):
        return None
    try:
        return float(row[column])
    except ValueError:
        raise _RowError(f"{row[column]!r} is not a number", column) from None


def _rows(
    directory: Path, name: str, required: tuple[str, ...], report: SyntheaReport
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV file, values stripped; file and row problems become rejections."""
    path = directory / name
    if not path.is_file():
        report.reject(name, None, f"the file is missing from {directory}")
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                report.reject(
                    name, 1, "the header has no column " + ", ".join(repr(c) for c in missing)
                )
                return
            for row in reader:
                if None in row:
                    report.reject(
                        name,
                        reader.line_num,
                        f"the row has {len(header) + len(row[None])} fields, "
                        f"the header {len(header)}",
                    )
                elif None in row.values():
                    report.reject(
                        name,
                        reader.line_num,
                        f"the row has fewer fields than the header ({len(header)})",
                    )
                else:
                    yield reader.line_num, {k: v.strip() for k, v in row.items()}
        except (UnicodeDecodeError, csv.Error) as exc:
            report.reject(name, reader.line_num + 1, f"cannot be read: {exc}")


@dataclass
class _Outcome:
    ok: bool = False


@contextmanager
def _row(
    session: Session, report: SyntheaReport, file: str, line: int, columns: Mapping[str, str]
) -> Iterator[_Outcome]:
    """Write one row all or nothing; a refusal becomes a rejection at file and line."""
    outcome = _Outcome()
    try:
        with session.begin_nested():
            yield outcome
        outcome.ok = True
    except _RowError as exc:
        report.reject(file, line, str(exc), exc.column)
    except NetworkDataError as exc:
        report.reject(file, line, str(exc), columns.get(exc.field or "", exc.field))
    except EnrollmentError as exc:
        report.reject(file, line, exc.reason)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        report.reject(file, line, error["msg"], columns.get(name, name or None))
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        report.reject(file, line, f"the database refused the row: {detail}")


def _not_taken(session: Session, model: type, npi: str, synthea_id: str) -> None:
    holder = session.scalar(select(model).where(model.npi == npi))
    if holder is not None and (holder.source, holder.external_id) != (SOURCE, synthea_id):
        name = getattr(holder, "name", None) or holder.display_name
        raise _RowError(
            f"synthetic NPI {npi} derived from this id is already the NPI of "
            f"{name} (source {holder.source or 'unknown'!r}, external id "
            f"{holder.external_id}): collision, row not imported",
            "Id",
        )


def _by_synthea_id(session: Session, model: type, synthea_id: str):
    """The organization or provider this or an earlier Synthea import stored for the id."""
    return session.scalar(
        select(model).where(model.source == SOURCE, model.external_id == synthea_id)
    )


def _location(
    row: Mapping[str, str], name: str | None = None, phone: str | None = None
) -> LocationInfo:
    return LocationInfo(
        line1=row["ADDRESS"],
        city=row["CITY"],
        state=row["STATE"],
        zip_code=row["ZIP"],
        name=name,
        phone=phone,
        latitude=_number(row, "LAT"),
        longitude=_number(row, "LON"),
    )


def _import_organizations(
    session: Session, directory: Path, report: SyntheaReport, actor: str, reason: str
) -> None:
    required = ("Id", "NAME", "ADDRESS", "CITY", "STATE", "ZIP")
    for line, row in _rows(directory, ORGANIZATIONS, required, report):
        with _row(session, report, ORGANIZATIONS, line, ORGANIZATION_COLUMNS):
            npi = synthetic_npi(row["Id"], "organization")
            _not_taken(session, Organization, npi, row["Id"])
            saved = save_organization(
                session,
                name=row["NAME"],
                npi=npi,
                kind="facility",
                source=SOURCE,
                external_id=row["Id"],
                actor=actor,
                reason=reason,
            )
            # Synthea writes "978-342-9781 Or 978-342-9781": the first number is the one.
            phone = re.split(r"(?i)\s+or\s+", row.get("PHONE", ""))[0][:20] or None
            place = _geocode(_location(row, saved.record.name, phone))
            _find_or_add_location(session, place, saved.record.id)
            report.count(saved, "organization")
            report.organizations += 1


def _provider_info(session: Session, row: Mapping[str, str]) -> ProviderInfo:
    organization = _by_synthea_id(session, Organization, row["ORGANIZATION"])
    if organization is None:
        raise _RowError(
            f"organization {row['ORGANIZATION']!r} is unknown: not in {ORGANIZATIONS} (or "
            "rejected there) and not imported before",
            "ORGANIZATION",
        )
    try:
        taxonomy = taxonomy_for_specialty(row["SPECIALITY"])
    except UnknownTaxonomy as exc:
        raise _RowError(str(exc), "SPECIALITY") from None
    first, _, last = plain_name(row["NAME"]).rpartition(" ")
    return ProviderInfo(
        npi=synthetic_npi(row["Id"], "provider"),
        first_name=first or None,
        last_name=last,
        sex=row.get("GENDER") or None,
        taxonomy_code=taxonomy,
        organization_id=organization.id,
        locations=[_location(row)],
        source=SOURCE,
        external_id=row["Id"],
    )


def _import_providers(
    session: Session,
    directory: Path,
    report: SyntheaReport,
    *,
    network_key: str,
    effective: date,
    fee_schedule_key: str | None,
    actor: str,
    reason: str,
) -> None:
    required = ("Id", "ORGANIZATION", "NAME", "SPECIALITY", "ADDRESS", "CITY", "STATE", "ZIP")
    for line, row in _rows(directory, PROVIDERS, required, report):
        with _row(session, report, PROVIDERS, line, PROVIDER_COLUMNS):
            info = _provider_info(session, row)
            _not_taken(session, Provider, info.npi, row["Id"])
            saved = save_provider(session, info, actor=actor, reason=reason)
            report.count(saved, "provider")
            report.count(
                save_contract(
                    session,
                    network_key=network_key,
                    provider=saved.record,
                    fee_schedule_key=fee_schedule_key,
                    effective_from=effective,
                    source=SOURCE,
                    actor=actor,
                    reason=reason,
                ),
                "contract",
            )
            report.providers += 1


def most_seen_providers(directory: Path, report: SyntheaReport) -> dict[str, tuple[str, int]]:
    """Patient id -> (provider id, visits): whom each saw most in wellness and ambulatory
    encounters; a tie goes to the provider seen most recently."""
    visits: Counter[tuple[str, str]] = Counter()
    latest: dict[tuple[str, str], str] = {}
    required = ("PATIENT", "PROVIDER", "ENCOUNTERCLASS", "START")
    for _, row in _rows(directory, ENCOUNTERS, required, report):
        if row["ENCOUNTERCLASS"].lower() in PCP_ENCOUNTER_CLASSES and row["PROVIDER"]:
            key = (row["PATIENT"], row["PROVIDER"])
            visits[key] += 1
            latest[key] = max(latest.get(key, ""), row["START"])  # ISO times sort as text
    best: dict[str, tuple[tuple[int, str, str], str]] = {}
    for (patient, provider), n in visits.items():
        rank = (n, latest[patient, provider], provider)
        if patient not in best or rank > best[patient][0]:
            best[patient] = (rank, provider)
    return {patient: (provider, rank[0]) for patient, (rank, provider) in best.items()}


def _person(row: Mapping[str, str]) -> tuple[PersonIn, AddressIn]:
    sex, born = row.get("GENDER", ""), _date(row, "BIRTHDATE")
    if sex not in ("F", "M"):
        raise _RowError(f"{sex!r} is not F or M", "GENDER")
    if born is None:
        raise _RowError("the birth date is missing", "BIRTHDATE")
    person = PersonIn(
        first_name=plain_name(row["FIRST"]),
        last_name=plain_name(row["LAST"]),
        birth_date=born,
        sex=sex,
        language="en",
        external_id=row["Id"],
    )
    address = AddressIn(
        line1=row["ADDRESS"], city=row["CITY"], state=state_code(row["STATE"]), zip_code=row["ZIP"]
    )
    return person, address


def _enroll(
    session: Session,
    row: Mapping[str, str],
    line: int,
    report: SyntheaReport,
    *,
    plan_key: str,
    effective: date,
    actor: str,
    reason: str,
) -> Member | None:
    """Enroll one patient (in the caller's savepoint); None when skipped by rule."""
    person, address = _person(row)
    died = _date(row, "DEATHDATE")
    name = f"{person.first_name} {person.last_name}"
    if died is not None and died < effective:
        report.skips.append(
            Rejection(
                PATIENTS,
                line,
                f"{name} died on {died}, before coverage would start on {effective}",
                "DEATHDATE",
            )
        )
        return None
    if person.birth_date > effective:
        raise _RowError(
            f"{name} is born on {person.birth_date}, after coverage would start on {effective}",
            "BIRTHDATE",
        )
    if address.zip_code == NO_ZIP and (town := zip_for_town(address.city, address.state)):
        # What enrollment staff do with a placeholder: use the town's own ZIP code.
        address = address.model_copy(update={"zip_code": town.zip_code})
        report.notes.append(
            Rejection(
                PATIENTS,
                line,
                f"{name}: ZIP {NO_ZIP} is Synthea's placeholder; used "
                f"{town.zip_code}, the ZIP code of {town.city}, {town.state}",
                "ZIP",
            )
        )
    try:
        coverage = enroll_subscriber(
            session,
            plan_key=plan_key,
            subscriber=person,
            address=address,
            effective=effective,
            actor=actor,
            reason=reason,
        )
    except EnrollmentError as exc:
        if address.zip_code == NO_ZIP:
            raise _RowError(
                f"{exc.reason} (Synthea writes {NO_ZIP} when it has no ZIP code "
                f"for the town, here {address.city})",
                "ZIP",
            ) from None
        raise
    member = session.get(Member, coverage.subscriber_id)
    if died is not None:
        terminate_member(
            session,
            member=member,
            termination_date=died,
            actor=actor,
            reason="death",
            note=f"DEATHDATE in {PATIENTS}, line {line}",
        )
    report.enrolled += 1
    return member


def _choose_initial_pcp(
    session: Session,
    member: Member,
    line: int,
    report: SyntheaReport,
    seen: tuple[str, int] | None,
    *,
    effective: date,
    actor: str,
) -> None:
    if seen is None:
        return  # no wellness or ambulatory visits: auto-assignment will find one
    synthea_id, visits = seen
    provider = _by_synthea_id(session, Provider, synthea_id)
    if provider is None:
        report.notes.append(
            Rejection(
                PATIENTS,
                line,
                f"{member.name}'s most-seen provider {synthea_id} was not imported; "
                "left for auto-assignment",
            )
        )
        return
    try:
        with session.begin_nested():
            choose_pcp(
                session,
                member=member,
                provider=provider,
                requested_on=effective,
                actor=actor,
                initial=True,
                reason=f"initial PCP from Synthea encounter history: {visits} wellness "
                "or ambulatory visits",
            )
    except EnrollmentError as exc:
        report.notes.append(Rejection(PATIENTS, line, f"{exc.reason}; left for auto-assignment"))
        return
    report.pcp_from_encounters += 1


def _import_patients(
    session: Session,
    directory: Path,
    report: SyntheaReport,
    *,
    plan_key: str,
    pcp_required: bool,
    effective: date,
    actor: str,
    reason: str,
) -> None:
    seen = most_seen_providers(directory, report) if pcp_required else {}
    required = ("Id", "BIRTHDATE", "FIRST", "LAST", "GENDER", "ADDRESS", "CITY", "STATE", "ZIP")
    for line, row in _rows(directory, PATIENTS, required, report):
        if not row["Id"]:
            report.reject(PATIENTS, line, "the Synthea id is missing", "Id")
            continue
        if session.scalar(select(Member.id).where(Member.external_id == row["Id"])):
            report.already_enrolled += 1
            continue
        member = None
        with _row(session, report, PATIENTS, line, PATIENT_COLUMNS) as outcome:
            member = _enroll(
                session,
                row,
                line,
                report,
                plan_key=plan_key,
                effective=effective,
                actor=actor,
                reason=reason,
            )
        if outcome.ok and member is not None and pcp_required:
            _choose_initial_pcp(
                session,
                member,
                line,
                report,
                seen.get(row["Id"]),
                effective=effective,
                actor=actor,
            )


def import_synthea(
    session: Session,
    directory: str | Path,
    *,
    plan_key: str,
    effective: date,
    network_key: str,
    fee_schedule_key: str | None = None,
    actor: str,
) -> SyntheaReport:
    """Import a Synthea CSV directory in the caller's transaction (the caller commits).

    Raises SyntheaImportError, having written nothing, when the import cannot run.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SyntheaImportError(f"{directory} is not a directory")
    try:
        plan = get_plan(session, plan_key)
    except UnknownPlan as exc:
        raise SyntheaImportError(str(exc)) from None
    if plan_year_on(plan, effective) is None:
        raise SyntheaImportError(f"plan {plan_key} has no plan year on {effective}")
    schedule = select(FeeSchedule.id).where(FeeSchedule.key == fee_schedule_key)
    if fee_schedule_key and session.scalar(schedule) is None:
        raise SyntheaImportError(f"there is no fee schedule {fee_schedule_key!r}")
    reason = f"Synthea import of {directory.name}"
    try:
        save_network(session, network_key, actor=actor, reason=reason)
    except NetworkDataError as exc:
        raise SyntheaImportError(str(exc)) from None
    design = design_of(plan)
    pcp_required = design.rules.pcp_required
    report = SyntheaReport(directory=str(directory))
    if pcp_required and design.network != network_key:
        report.notes.append(
            Rejection(
                "--network",
                None,
                f"{plan_key} uses network {design.network}, so the providers "
                f"contracted in {network_key} cannot be its members' PCPs",
            )
        )

    _import_organizations(session, directory, report, actor, reason)
    _import_providers(
        session,
        directory,
        report,
        network_key=network_key,
        effective=effective,
        fee_schedule_key=fee_schedule_key,
        actor=actor,
        reason=reason,
    )
    _import_patients(
        session,
        directory,
        report,
        plan_key=plan_key,
        pcp_required=pcp_required,
        effective=effective,
        actor=actor,
        reason=reason,
    )
    if pcp_required:
        assigned = auto_assign(session, as_of=effective, actor=actor, plan_key=plan_key)
        report.pcp_auto_assigned = assigned.assigned
        report.pcp_none_available = len(assigned.unassigned)
    return report
