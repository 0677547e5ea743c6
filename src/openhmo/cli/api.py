"""`openhmo serve` runs the HTTP API; `openhmo api` manages who may call it.

Secrets never go on the command line (they would stay in the shell's history and the
process list): `add-account` reads the password, and `add-client --confidential` the
client secret, from OPENHMO_API_PASSWORD or asks.
"""

from __future__ import annotations

import os

import typer

from openhmo.access.accounts import AccountError, NewAccount, create_account
from openhmo.access.models import ROLES
from openhmo.access.scopes import ScopeError
from openhmo.cli.common import actor, console, engine, fail, unit_of_work

app = typer.Typer(
    help="API accounts: members, provider offices, staff and systems.", no_args_is_help=True
)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (each with its own pool)."),
) -> None:
    """Run the API: FHIR R4 at /fhir, the staff API at /staff, OAuth2 at /auth."""
    import uvicorn

    engine()  # migrate before serving
    if workers > 1 and not os.environ.get("OPENHMO_API_SIGNING_KEY"):
        raise fail("several workers need one OPENHMO_API_SIGNING_KEY to share their tokens")
    console.print(f"OpenHMO API on http://{host}:{port}/fhir (OpenAPI at /docs)")
    uvicorn.run(
        "openhmo.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command("add-account")
def add_account(
    username: str = typer.Argument(..., help="Login name, or the client id of a system."),
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}."),
    member: str = typer.Option(None, help="The member's number (role member)."),
    npi: str = typer.Option(None, help="The provider's NPI (role provider)."),
    scopes: str = typer.Option("", help="Scopes, space-separated (default: all the role's)."),
) -> None:
    """Add an account; the password comes from OPENHMO_API_PASSWORD or a prompt."""
    secret = os.environ.get("OPENHMO_API_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    new = NewAccount(username, role, member_number=member, provider_npi=npi, scopes=scopes)
    try:
        with unit_of_work() as session:
            account = create_account(session, new, secret, actor=actor())
            console.print(f"account {account.username} ({account.role}): {account.scopes}")
    except (AccountError, ScopeError, ValueError) as exc:
        raise fail(str(exc)) from exc


@app.command("add-client")
def add_client(
    client_id: str = typer.Argument(..., help="The app's client id."),
    name: str = typer.Option(..., help="The app's name, as members see it when they approve."),
    redirect_uri: list[str] = typer.Option(
        ..., help="A redirect URI the app may be sent back to (repeat for more)."
    ),
    confidential: bool = typer.Option(
        False, help="A server-side app with a secret (OPENHMO_API_PASSWORD or a prompt)."
    ),
) -> None:
    """Register an app members may connect to their account (SMART App Launch)."""
    from openhmo.access.apps import register_client

    secret = None
    if confidential:
        secret = os.environ.get("OPENHMO_API_PASSWORD") or typer.prompt(
            "Client secret", hide_input=True, confirmation_prompt=True
        )
    try:
        with unit_of_work() as session:
            client = register_client(
                session, client_id, name, redirect_uri, secret=secret, actor=actor()
            )
            kind = "confidential" if secret else "public (PKCE)"
            console.print(f"app {client.client_id} ({kind}): {name}")
    except ValueError as exc:
        raise fail(str(exc)) from exc


@app.command("disable-client")
def disable_client(client_id: str = typer.Argument(..., help="The app's client id.")) -> None:
    """Stop an app: it gets no new grants, and every member's grant to it ends now."""
    from openhmo.access.apps import disable_client as disable

    try:
        with unit_of_work() as session:
            revoked = disable(session, client_id, actor=actor())
            console.print(f"app {client_id} disabled; {revoked} member grant(s) revoked")
    except ValueError as exc:
        raise fail(str(exc)) from exc
