"""Accounts that may call the API: people (members, provider offices, staff) and systems.

A member's account is bound to the member; a provider office's to the provider (NPI)
whose patients it may see; staff and system accounts see everything their scopes name.
Secrets are stored only as argon2 hashes (access.passwords).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
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
    # Wrong passwords in a row, and until when sign-in is refused after too many
    # (access.accounts.authenticate): guessing a password takes years, not hours.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthClient(Base):
    """An application registered to ask members for access (SMART App Launch, standalone).

    A public client (an app on a phone or in a browser) has no secret and must prove
    its authorization codes with PKCE; a confidential one (a server) also has a secret,
    stored only as an argon2 hash. Codes go only to a redirect URI registered here.
    """

    __tablename__ = "oauth_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # One registered redirect URI per line, compared exactly (RFC 6749 §3.1.2.2).
    redirect_uris: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[Timestamp]


class OAuthGrant(Base):
    """A member's approval of an app: its authorization code, then its refresh token.

    Code and refresh token are random secrets kept only as SHA-256 digests. The code is
    single use and short-lived; the refresh token changes at every use, and a used one
    presented again (a stolen copy, or the app's own replay) revokes the whole grant,
    access tokens included (OAuth 2.0 Security BCP, refresh token rotation).
    """

    __tablename__ = "oauth_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_client.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("api_account.id"), index=True)
    scopes: Mapped[str] = mapped_column(Text)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    code_used: Mapped[bool] = mapped_column(Boolean, default=False)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The refresh token this one replaced: presented again, it shows a replay.
    replaced_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[Timestamp]
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInFailure(Base):
    """A failed sign-in from an address (access.accounts): too many from one address in
    a while pause that address's sign-ins, whatever usernames it tries."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_address", "address", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
