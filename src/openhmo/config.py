"""Where OpenHMO keeps its data (one database URL) and who the plan is in what it sends.

The default is an embedded SQLite file in the working directory, so a fresh clone
runs the demo with nothing to set up; OPENHMO_DATABASE_URL selects PostgreSQL
(postgresql+psycopg://...) for a real deployment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQLITE_FILE = "openhmo.db"


def database_url() -> str:
    url = os.environ.get("OPENHMO_DATABASE_URL")
    if url:
        return normalise_url(url)
    return f"sqlite:///{Path(DEFAULT_SQLITE_FILE).resolve()}"


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_location(url: str) -> str:
    """Where the data lives, for people: the file for SQLite, host and database otherwise."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend, port = parsed.get_backend_name(), parsed.port or 5432
    return f"{backend} database {parsed.database!r} on {parsed.host}:{port}"


@dataclass(frozen=True)
class PlanIdentity:
    """Who the plan is in what it sends (X12 999, 277CA, 271, 278 and 835).

    Read from the environment; the defaults are placeholders a deployment replaces:
    OPENHMO_PAYER_NAME, OPENHMO_PAYER_ID (our id in the trading partners' files),
    OPENHMO_PAYER_EIN (nine digits), OPENHMO_PAYER_ADDRESS ("street|city|state|zip"),
    OPENHMO_PAYER_EDI_CONTACT, OPENHMO_PAYER_EDI_PHONE, OPENHMO_PAYER_EDI_EMAIL.
    """

    name: str
    payer_id: str
    ein: str
    address: tuple[str, str, str, str]
    edi_contact: str
    edi_phone: str
    edi_email: str


def plan_identity() -> PlanIdentity:
    env = os.environ.get
    parts = env("OPENHMO_PAYER_ADDRESS", "1 Beacon St|Boston|MA|02108").split("|")
    street, city, state, zip_code = [*parts, "", "", "", ""][:4]
    return PlanIdentity(
        name=env("OPENHMO_PAYER_NAME", "OPENHMO HEALTH PLAN"),
        payer_id=env("OPENHMO_PAYER_ID", "OPENHMO"),
        ein=env("OPENHMO_PAYER_EIN", "999999999"),
        address=(street, city, state, zip_code),
        edi_contact=env("OPENHMO_PAYER_EDI_CONTACT", "EDI SUPPORT"),
        edi_phone=env("OPENHMO_PAYER_EDI_PHONE", "6175550100"),
        edi_email=env("OPENHMO_PAYER_EDI_EMAIL", "edi@openhmo.example"),
    )
