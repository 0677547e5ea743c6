"""The `openhmo` command: one entry point whose sub-commands are thin shells over the packages."""

from __future__ import annotations

import typer

from openhmo.cli import (
    api,
    billing,
    claims,
    db,
    demo,
    enrollment,
    generate,
    imports,
    network,
    plans,
    referrals,
    whatif,
    x12,
)

app = typer.Typer(
    name="openhmo",
    help="OpenHMO: run a Health Maintenance Organization - plans, network, enrollment, premiums.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(plans.app, name="plans")
app.add_typer(network.app, name="network")
app.add_typer(enrollment.app, name="enrollment")
app.add_typer(billing.app, name="billing")
app.add_typer(imports.app, name="import")
app.add_typer(referrals.app, name="referrals")
app.add_typer(claims.app, name="claims")
app.add_typer(generate.app, name="generate")
app.add_typer(x12.app, name="x12")
app.add_typer(api.app, name="api")
app.command("demo")(demo.demo)
app.command("serve")(api.serve)
app.command("what-if")(whatif.what_if_command)


if __name__ == "__main__":
    app()
