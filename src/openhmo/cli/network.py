"""`openhmo network`: import provider directories and rate files, search, show, contract.

Every import runs one transaction per file: the file's good records are committed, its
bad ones listed with where they are and why. Import commands exit 0 when every record
went in, 3 when some were rejected (the rest imported), 1 when a file could not be read.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from openhmo.cli.common import actor, console, engine, fail
from openhmo.db import refresh_statistics, transaction
from openhmo.network.directory import search as directory_search
from openhmo.network.importers.nppes import import_nppes
from openhmo.network.importers.qhp import import_qhp
from openhmo.network.importers.report import ImportFileError, ImportReport
from openhmo.network.importers.tic import import_tic
from openhmo.network.models import Contract, Organization
from openhmo.network.service import (
    NetworkDataError,
    add_contract,
    add_fee_schedule,
    get_provider,
    normalise_tin,
)
from openhmo.reference.geo import UnknownZip

app = typer.Typer(
    help="The provider network: providers, contracts, fee schedules, directory.",
    no_args_is_help=True,
)

PARTIAL = 3
Reason = Annotated[str, typer.Option(help="why, for the change history")]


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def _show_report(report: ImportReport) -> None:
    table = Table("records", "added", "updated", "unchanged", title=report.source)
    for kind in sorted(set(report.added) | set(report.updated) | set(report.unchanged)):
        table.add_row(
            kind, str(report.added[kind]), str(report.updated[kind]), str(report.unchanged[kind])
        )
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if report.rejections:
        rejected = Table(
            "where", "field", "why", title=f"{report.rejected} rejected", title_style="bold red"
        )
        for r in report.rejections:
            rejected.add_row(r.where, r.field or "", r.message)
        console.print(rejected)
    console.print(report.summary(), highlight=False)


def _finish(reports: list[ImportReport]) -> None:
    if any(r.rejections for r in reports):
        raise typer.Exit(PARTIAL)


@app.command("import-qhp")
def import_qhp_command(
    file: Annotated[Path, typer.Argument(help="providers.json of a QHP provider directory")],
    plans: Annotated[
        Path | None, typer.Option("--plans", help="the directory's plans.json")
    ] = None,
    reason: Reason = "",
) -> None:
    """Import a CMS QHP provider directory: providers, their locations and networks."""
    eng = engine()
    try:
        with transaction(eng) as session:
            report = import_qhp(session, file, plans, actor=actor(), reason=reason)
    except ImportFileError as exc:
        raise fail(str(exc)) from None
    refresh_statistics(eng)
    _show_report(report)
    _finish([report])


@app.command("import-tic")
def import_tic_command(
    files: Annotated[list[Path], typer.Argument(help="in-network rates JSON files")],
    network: Annotated[
        str | None,
        typer.Option(
            "--network", help="put every group in this network instead of the file's network names"
        ),
    ] = None,
    reason: Reason = "",
) -> None:
    """Import Transparency-in-Coverage in-network rates: contracts and fee schedules."""
    eng, reports, failed = engine(), [], False
    for file in files:
        try:
            with transaction(eng) as session:
                reports.append(
                    import_tic(session, file, network_key=network, actor=actor(), reason=reason)
                )
        except ImportFileError as exc:
            failed = True
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        _show_report(reports[-1])
    if reports:
        refresh_statistics(eng)
    if failed:
        raise typer.Exit(1)
    _finish(reports)


@app.command("import-nppes")
def import_nppes_command(
    file: Annotated[Path, typer.Argument(help="an NPPES-style CSV")],
    network: Annotated[
        str | None, typer.Option("--network", help="contract every provider in this network")
    ] = None,
    fee_schedule: Annotated[
        str | None, typer.Option("--fee-schedule", help="the contracts' fee schedule")
    ] = None,
    effective: Annotated[
        str | None, typer.Option("--effective", help="the contracts' first day (YYYY-MM-DD)")
    ] = None,
    reason: Reason = "",
) -> None:
    """Import providers from an NPPES-style CSV (see openhmo.network.importers.nppes)."""
    day = _day(effective, "--effective")
    eng = engine()
    try:
        with transaction(eng) as session:
            report = import_nppes(
                session,
                file,
                network_key=network,
                fee_schedule_key=fee_schedule,
                effective=day,
                actor=actor(),
                reason=reason,
            )
    except ImportFileError as exc:
        raise fail(str(exc)) from None
    refresh_statistics(eng)
    _show_report(report)
    _finish([report])


@app.command()
def search(
    network: Annotated[str | None, typer.Option(help="only this network's providers")] = None,
    on: Annotated[str | None, typer.Option(help="in network on this day (default today)")] = None,
    specialty: Annotated[
        str | None, typer.Option(help="text ('dermatology') or taxonomy prefix ('207Q')")
    ] = None,
    near_zip: Annotated[str | None, typer.Option(help="sort by distance from this ZIP")] = None,
    within_miles: Annotated[float | None, typer.Option(help="at most this far")] = None,
    language: Annotated[str | None, typer.Option(help="speaks this language")] = None,
    accepting: Annotated[
        bool | None,
        typer.Option("--accepting/--not-accepting", help="accepting new patients or not"),
    ] = None,
    pcp_only: Annotated[bool, typer.Option(help="PCP-eligible providers only")] = False,
    include_all: Annotated[
        bool, typer.Option("--all", help="with --network: everyone, flagged")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
) -> None:
    """Search the provider directory."""
    try:
        with transaction(engine()) as session:
            entries = directory_search(
                session,
                network_key=network,
                on=_day(on, "--on"),
                specialty=specialty,
                near_zip=near_zip,
                within_miles=within_miles,
                language=language,
                accepting_new_patients=accepting,
                pcp_only=pcp_only,
                include_out_of_network=include_all,
                limit=limit,
            )
            table = Table(
                Column("NPI", no_wrap=True, min_width=10),
                "name",
                "specialty",
                "PCP",
                "accepting",
                "languages",
                "location",
                "miles",
                "in network",
            )
            for e in entries:
                p, loc = e.provider, e.location
                table.add_row(
                    p.npi,
                    p.display_name,
                    p.specialty,
                    "yes" if p.pcp_eligible else "",
                    "yes" if p.accepting_new_patients else "no",
                    ", ".join(sorted(lang.language for lang in p.languages)),
                    f"{loc.line1}, {loc.city} {loc.state} {loc.zip_code}" if loc else "",
                    f"{e.distance_miles:.1f}" if e.distance_miles is not None else "",
                    "" if e.in_network is None else ("yes" if e.in_network else "no"),
                )
    except (UnknownZip, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(table)
    console.print(f"{len(entries)} provider(s)")


@app.command()
def show(npi: str) -> None:
    """One provider: who, where, which networks under which contracts."""
    with transaction(engine()) as session:
        provider = get_provider(session, npi)
        if provider is None:
            raise fail(f"there is no provider with NPI {npi}")
        facts = Table("", "", show_header=False, title=f"{provider.display_name} (NPI {npi})")
        facts.add_row("type", provider.entity_type)
        facts.add_row("taxonomy", provider.taxonomy_code or "")
        facts.add_row("specialty", provider.specialty)
        roles = [
            name
            for name, on in (
                ("PCP-eligible", provider.pcp_eligible),
                ("pediatrics", provider.pediatrics),
                ("OB/GYN", provider.ob_gyn),
            )
            if on
        ]
        facts.add_row("roles", ", ".join(roles))
        facts.add_row("accepting new patients", "yes" if provider.accepting_new_patients else "no")
        facts.add_row("panel capacity", str(provider.panel_capacity or ""))
        facts.add_row("languages", ", ".join(sorted(lang.language for lang in provider.languages)))
        if provider.organization:
            facts.add_row(
                "organization",
                f"{provider.organization.name} (TIN {provider.organization.tin or '-'})",
            )
        facts.add_row("source", provider.source)
        console.print(facts)
        places = Table("primary", "address", "county", "lat, lon", "phone", title="Locations")
        for pl in provider.locations:
            loc = pl.location
            places.add_row(
                "yes" if pl.is_primary else "",
                ", ".join(
                    x for x in (loc.line1, loc.line2, loc.city, f"{loc.state} {loc.zip_code}") if x
                ),
                loc.county_fips or "",
                f"{loc.latitude:.4f}, {loc.longitude:.4f}" if loc.latitude is not None else "",
                loc.phone or "",
            )
        console.print(places)
        party = Contract.provider_id == provider.id
        if provider.organization_id is not None:
            party = party | (Contract.organization_id == provider.organization_id)
        contracts = Table(
            Column("network", no_wrap=True),
            "through",
            "arrangement",
            Column("fee schedule", no_wrap=True),
            "from",
            "to",
            title="Contracts",
        )
        for c in session.scalars(
            select(Contract)
            .where(party)
            .options(selectinload(Contract.network), selectinload(Contract.fee_schedule))
            .order_by(Contract.effective_from, Contract.id)
        ):
            contracts.add_row(
                c.network.key,
                "provider" if c.provider_id else "organization",
                c.arrangement,
                c.fee_schedule.key if c.fee_schedule else "",
                str(c.effective_from),
                str(c.effective_to or "open"),
            )
        console.print(contracts)


@app.command()
def contract(
    network: Annotated[str, typer.Option(help="the network key")],
    effective_from: Annotated[str, typer.Option("--from", help="first day (YYYY-MM-DD)")],
    npi: Annotated[str | None, typer.Option(help="contract this provider")] = None,
    tin: Annotated[
        str | None, typer.Option(help="or this organization (every provider in it)")
    ] = None,
    fee_schedule: Annotated[str | None, typer.Option(help="fee schedule key")] = None,
    effective_to: Annotated[
        str | None, typer.Option("--to", help="last day; default open-ended")
    ] = None,
    arrangement: Annotated[str, typer.Option(help="ffs, capitation or bundle")] = "ffs",
    reason: Reason = "",
) -> None:
    """Add a contract putting a provider or an organization in a network."""
    if (npi is None) == (tin is None):
        raise fail("give --npi or --tin (one of them)")
    start, end = _day(effective_from, "--from"), _day(effective_to, "--to")
    try:
        with transaction(engine()) as session:
            provider = organization = None
            if npi:
                provider = get_provider(session, npi)
                if provider is None:
                    raise fail(f"there is no provider with NPI {npi}")
            else:
                organization = session.scalar(
                    select(Organization)
                    .where(Organization.tin == normalise_tin(tin))
                    .order_by(Organization.id)
                    .limit(1)
                )
                if organization is None:
                    raise fail(f"there is no organization with TIN {tin}")
            made = add_contract(
                session,
                network,
                provider=provider,
                organization=organization,
                fee_schedule_key=fee_schedule,
                effective_from=start,
                effective_to=end,
                arrangement=arrangement,
                actor=actor(),
                reason=reason or "contract added from the command line",
            )
            who = provider.display_name if provider else organization.name
            console.print(
                f"[green]✓[/] contract #{made.id}: {who} in {network} from {start} "
                f"to {end or 'open-ended'}",
                highlight=False,
            )
    except NetworkDataError as exc:
        raise fail(str(exc)) from None


@app.command("fee-schedule")
def fee_schedule_command(
    key: str,
    name: Annotated[str | None, typer.Option(help="default: the key")] = None,
    method: Annotated[
        str, typer.Option(help="per_code, percent_of_medicare or case_rate")
    ] = "percent_of_medicare",
    percent: Annotated[str | None, typer.Option(help="percent of Medicare, e.g. 120")] = None,
    locality: Annotated[str | None, typer.Option(help="Medicare locality, e.g. MA-01")] = None,
    reason: Reason = "",
) -> None:
    """Add (or update) a fee schedule; per-code amounts come from a rates import."""
    try:
        pct = Decimal(percent) if percent is not None else None
    except InvalidOperation:
        raise fail(f"--percent {percent!r} is not a number") from None
    try:
        with transaction(engine()) as session:
            add_fee_schedule(
                session,
                key=key,
                name=name or key,
                method=method,
                percent=pct,
                medicare_locality=locality,
                actor=actor(),
                reason=reason or "fee schedule added from the command line",
            )
    except NetworkDataError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]✓[/] fee schedule {key}", highlight=False)
