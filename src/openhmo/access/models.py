"""Accounts that may call the API: people (members, provider offices, staff) and systems.

A member's account is bound to the member; a provider office's to the provider (NPI)
whose patients it may see; staff and system accounts see everything their scopes name.
Secrets are stored only as argon2 hashes (access.passwords).
"""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openhmo.db import Base
from openhmo.db.types import Timestamp

ROLES = ("member", "provider", "staff", "system")


class ApiAccount(Base):
    """A login (username and password) or an OAuth2 client (client id and secret)."""

    __tablename__ = "api_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    # The most this account may ask for; a token carries what was asked and allowed.
    scopes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[Timestamp]
