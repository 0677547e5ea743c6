"""`openhmo plans`: validate, load, list and show plan designs; import the CMS template."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from openhmo.categories import ServiceCategory
from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.money import format_money
from openhmo.plans.cost_share import CostShareError, parse_cost_share
from openhmo.plans.design import PlanDesign
from openhmo.plans.loader import PlanDesignError, example_designs, load_design
from openhmo.plans.models import Plan
from openhmo.plans.store import UnknownPlan, design_of, get_plan, save_design

app = typer.Typer(
    help="Plan designs: benefits, cost sharing and rules, as data.", no_args_is_help=True
)


def _load_all(files: list[Path]) -> list[tuple[Path, PlanDesign]]:
    designs, failed = [], False
    for file in files:
        try:
            designs.append((file, load_design(file)))
        except PlanDesignError as exc:
            failed = True
            for error in exc.errors:
                console.print(f"[red]✗[/] {error}", highlight=False)
    if failed:
        raise fail("some plan designs are invalid; nothing was loaded")
    return designs


@app.command()
def validate(files: list[Path]) -> None:
    """Check plan design files and report every error with file, line and field."""
    for file, design in _load_all(files):
        console.print(
            f"[green]✓[/] {file}: {design.name} ({design.type}, "
            f"{len(design.plan_years)} plan year(s))"
        )


@app.command()
def load(
    files: list[Path] = typer.Argument(None, help="design files; default: the shipped examples"),
) -> None:
    """Validate plan designs and store them (all or nothing)."""
    files = files or example_designs()
    designs = _load_all(files)
    with unit_of_work() as session:
        for file, design in designs:
            save_design(session, design, source=str(file), actor=actor())
    for _, design in designs:
        console.print(f"[green]✓[/] loaded {design.id}: {design.name}")


@app.command("list")
def list_plans() -> None:
    """The stored plans."""
    table = Table("id", "name", "type", "network", "plan years", "source")
    with unit_of_work() as session:
        for plan in session.scalars(select(Plan).order_by(Plan.plan_key)):
            table.add_row(
                plan.plan_key,
                plan.name,
                plan.plan_type,
                plan.network_key or "",
                ", ".join(str(y.year) for y in plan.years),
                plan.source,
            )
    console.print(table)


@app.command()
def show(
    plan_id: str, year: int = typer.Option(None, help="plan year; default: the first")
) -> None:
    """A stored plan, the way a Summary of Benefits and Coverage shows it."""
    with unit_of_work() as session:
        try:
            design = design_of(get_plan(session, plan_id))
        except UnknownPlan as exc:
            raise fail(str(exc)) from None
    render_summary(design, year)


def render_summary(design: PlanDesign, year: int | None = None) -> None:
    plan_year = next((y for y in design.plan_years if year in (None, y.year)), None)
    if plan_year is None:
        raise fail(f"{design.id} has no plan year {year}")
    console.rule(
        f"{design.name} — {design.type} — plan year {plan_year.year} "
        f"({plan_year.starts} to {plan_year.ends})"
    )
    rules = Table("rule", "value", title="Plan rules")
    for name, value in design.rules.model_dump(mode="json").items():
        how = "overridden" if name in design.rules_overridden else f"{design.type} default"
        rules.add_row(name, f"{value} ({how})")
    console.print(rules)
    tiers = Table("tier", "deductible (individual / family)", "out-of-pocket max", "coinsurance")
    for name, tier in plan_year.tiers.items():
        tiers.add_row(
            name,
            f"{format_money(tier.deductible.individual)} / "
            f"{format_money(tier.deductible.family)} {tier.deductible.kind}",
            f"{format_money(tier.out_of_pocket_max.individual)} / "
            f"{format_money(tier.out_of_pocket_max.family)}",
            f"{tier.coinsurance}%",
        )
    console.print(tiers)
    if plan_year.premiums:
        premiums = Table("coverage tier", "monthly premium", title="Premiums")
        for tier, cents in plan_year.premiums.items():
            premiums.add_row(tier, format_money(cents))
        console.print(premiums)
    benefits = Table(
        "service", *[t.value for t in plan_year.tiers], "limits and rules", title="What you pay"
    )
    for category in ServiceCategory:
        benefit = plan_year.benefits.get(category)
        if benefit is None:
            continue
        notes = []
        if benefit.limit:
            notes.append(benefit.limit.describe())
        if design.rules.referral_required and category in design.referrals.required_for:
            notes.append("referral required")
        if design.needs_prior_authorization(plan_year, category):
            notes.append("prior authorization")
        costs = [benefit.cost[t].describe() if t in benefit.cost else "—" for t in plan_year.tiers]
        benefits.add_row(category.value, *costs, "; ".join(notes))
    console.print(benefits)


@app.command("parse-cost-share")
def parse_cost_share_command(text: str) -> None:
    """Show how a cost-sharing string from an SBC is read."""
    try:
        cost_share = parse_cost_share(text)
    except CostShareError as exc:
        raise fail(str(exc)) from None
    console.print(cost_share.model_dump(exclude={"text"}))
    console.print(f"reads as: {cost_share.describe()}")


@app.command("import-cms")
def import_cms(
    file: Path,
    county: list[str] = typer.Option(
        None, help="service-area county ('Suffolk County, MA' or FIPS)"
    ),
    zip_code: list[str] = typer.Option(None, "--zip", help="service-area ZIP code"),
    all_variants: bool = typer.Option(False, help="import every cost-share variance as a plan"),
) -> None:
    """Import the plans of a CMS QHP Plans & Benefits template (XML)."""
    from openhmo.plans.cms_template import CmsTemplateError, read_cms_template

    try:
        result = read_cms_template(
            file, counties=county or [], zip_codes=zip_code or [], all_variants=all_variants
        )
    except CmsTemplateError as exc:
        raise fail(str(exc)) from None
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.errors:
        for error in result.errors:
            console.print(f"[red]✗[/] {error}", highlight=False)
        raise fail("the template has errors; nothing was imported")
    with unit_of_work() as session:
        for design in result.designs:
            save_design(session, design, source=f"CMS template {file}", actor=actor())
    for design in result.designs:
        console.print(f"[green]✓[/] imported {design.id}: {design.name}")
