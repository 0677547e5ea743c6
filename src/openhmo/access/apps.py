"""Apps a member connects to their account: SMART App Launch (standalone), OAuth2 with PKCE.

The CMS Patient Access API is meant to be reached by apps the member chooses, and an app
must never hold the member's password. So:

1. the plan registers the app (`register_client`): its name, the redirect URIs it may
   be sent back to, and, for an app that runs on a server, a secret;
2. the app sends the member's browser to /auth/authorize; `read_authorization` checks
   what it asks (client, redirect URI, scopes, PKCE challenge, audience) and the member
   signs in on our page and approves (`approve`): a one-minute, single-use code goes back
   to the app's redirect URI;
3. the app trades the code, with the PKCE verifier that only it knows, for an access
   token and, if it asked for `offline_access`, a refresh token (`exchange_code`);
4. `refresh` swaps a refresh token for new tokens, and a new refresh token: a used one
   that comes back revokes the whole grant (RFC 6819 5.2.2.3, OAuth 2.0 Security BCP).
   `revoke` (RFC 7009) ends a grant at the app's or member's wish.

Codes and refresh tokens are random and kept only as SHA-256 digests; client secrets as
argon2 hashes. Errors are RFC 6749 error codes with a description (`OAuthError`); an
unknown client or redirect URI is `UnknownClient`, which the authorize page shows
itself instead of sending the browser anywhere (RFC 6749 4.1.2.1).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from openhmo.access.models import ApiAccount, OAuthClient, OAuthGrant
from openhmo.access.passwords import hash_secret, verify_secret
from openhmo.access.scopes import ScopeError, grant, parse_all
from openhmo.db.types import as_aware, utcnow
from openhmo.enrollment.models import Member
from openhmo.history.record import record_change

CODE_LIFETIME = timedelta(seconds=60)
REFRESH_LIFETIME = timedelta(days=90)
# Scopes that ask for no data: the patient in context, a refresh token. They are
# granted beside the data scopes and named in the token answer.
CONTEXT_SCOPES = ("launch/patient", "offline_access", "online_access")
# OpenID Connect's are accepted and not granted: no id_token is issued.
IGNORED_SCOPES = ("openid", "fhirUser", "profile")
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class OAuthError(ValueError):
    """An RFC 6749 error: its code (invalid_request, invalid_grant, ...) and why."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.redirect_uri: str | None = None


class UnknownClient(ValueError):
    """A client id or redirect URI that is not registered: the browser goes nowhere."""


@dataclass(frozen=True)
class AuthorizationAsk:
    """What an app asked /auth/authorize for, checked."""

    client_id: str
    client_name: str
    client_key: int  # the registered client's row, read once by read_authorization
    redirect_uri: str
    state: str | None
    data_scopes: str
    context_scopes: tuple[str, ...]
    code_challenge: str

    @property
    def offline(self) -> bool:
        return "offline_access" in self.context_scopes

    def as_form(self) -> dict[str, str]:
        """The parameters again, for the page's form to post back."""
        scope = " ".join([self.data_scopes, *self.context_scopes]).strip()
        form = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
        }
        if self.state is not None:
            form["state"] = self.state
        form["code_challenge"] = self.code_challenge
        form["code_challenge_method"] = "S256"
        return form


@dataclass(frozen=True)
class Issued:
    """What the token endpoint gives for a code or a refresh token."""

    account: ApiAccount
    grant: OAuthGrant
    client_id: str
    patient: str
    scopes: str
    refresh_token: str | None

    @property
    def granted(self) -> str:
        """The scope answer: data scopes and the context scopes granted with them."""
        extra = ["launch/patient"]
        if self.grant.offline:
            extra.append("offline_access")
        return " ".join([self.scopes, *extra]).strip()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_client(
    session: Session,
    client_id: str,
    name: str,
    redirect_uris: list[str],
    *,
    secret: str | None,
    actor: str,
) -> OAuthClient:
    """Register an app; with `secret` it is confidential (a server), else public."""
    if not re.fullmatch(r"[A-Za-z0-9._\-]{3,120}", client_id):
        raise ValueError("a client id is 3 to 120 letters, digits, '.', '_' or '-'")
    if session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == client_id)):
        raise ValueError(f"client id {client_id!r} is taken")
    if not redirect_uris:
        raise ValueError("an app needs at least one redirect URI")
    for uri in redirect_uris:
        loopback = uri.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if "#" in uri or not (uri.startswith("https://") or loopback or _is_app_scheme(uri)):
            raise ValueError(
                f"redirect URI {uri!r} must be https, a loopback http address, or an app's "
                "own scheme (com.example.app:/callback), without a fragment"
            )
    client = OAuthClient(
        client_id=client_id,
        name=name,
        redirect_uris="\n".join(redirect_uris),
        secret_hash=hash_secret(secret) if secret is not None else None,
    )
    session.add(client)
    session.flush()
    record_change(
        session,
        actor=actor,
        entity="oauth_client",
        entity_id=str(client.id),
        action="created",
        changes={"client_id": client_id, "name": name, "redirect_uris": redirect_uris},
    )
    return client


def _is_app_scheme(uri: str) -> bool:
    # RFC 8252 7.1: a private-use scheme in reverse domain order, e.g. com.example.app:/cb
    scheme = uri.split(":", 1)[0]
    return "." in scheme and re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme) is not None


def read_authorization(
    session: Session, params: Mapping[str, str], *, audience: str
) -> AuthorizationAsk:
    """The checked request of /auth/authorize (RFC 6749 4.1.1, RFC 7636, SMART 1.0).

    Raises UnknownClient when the browser must not be sent back, and OAuthError (with
    the state to send back) for everything else.
    """
    client_id = params.get("client_id") or ""
    client = session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.active)
    )
    if client is None:
        raise UnknownClient(f"no app is registered with client id {client_id!r}")
    registered = client.redirect_uris.split("\n")
    # Required, as SMART asks, so that the token request can be held to the same one.
    redirect_uri = params.get("redirect_uri") or ""
    if redirect_uri not in registered:
        raise UnknownClient(f"{redirect_uri!r} is not a redirect URI registered for {client.name}")
    try:
        if params.get("response_type") != "code":
            raise OAuthError(
                "unsupported_response_type", "response_type must be 'code' (authorization code)"
            )
        if params.get("aud", "").rstrip("/") != audience:
            raise OAuthError(
                "invalid_request", f"aud must be this server's FHIR base URL, {audience}"
            )
        challenge = params.get("code_challenge")
        if challenge is None:
            # SMART App Launch 2.0 asks PKCE of every app, a confidential one too (OAuth 2.0
            # security BCP, RFC 9700 2.1.1: a stolen code is useless without the verifier).
            raise OAuthError("invalid_request", "send a PKCE code_challenge (S256)")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.match(challenge):
            raise OAuthError(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 digest (43 characters)",
            )
        data, context = [], []
        for scope in (params.get("scope") or "").split():
            if scope in CONTEXT_SCOPES:
                context.append(scope)
            elif scope not in IGNORED_SCOPES and scope != "launch":
                data.append(scope)
        if not data:
            raise OAuthError("invalid_scope", "ask for at least one patient/... scope")
        try:
            asked = parse_all(" ".join(data))
        except ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from exc
        if any(s.context != "patient" for s in asked):
            raise OAuthError(
                "invalid_scope", "an app a member connects may ask only for patient/... scopes"
            )
    except OAuthError as exc:
        exc.redirect_uri = redirect_uri  # the app is told, through its own URI
        raise
    return AuthorizationAsk(
        client_id=client.client_id,
        client_name=client.name,
        client_key=client.id,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        data_scopes=" ".join(data),
        context_scopes=tuple(dict.fromkeys(context)),
        code_challenge=challenge,
    )


def approve(
    session: Session, ask: AuthorizationAsk, account: ApiAccount, *, address: str | None
) -> str:
    """The member approved: a grant, and the code for the app (single use, one minute)."""
    if account.role != "member":
        raise OAuthError("access_denied", "only a member's account can connect an app")
    try:
        scopes = grant(ask.data_scopes, account.scopes)
    except ScopeError as exc:
        raise OAuthError("invalid_scope", str(exc)) from exc
    code = secrets.token_urlsafe(32)
    row = OAuthGrant(
        client_id=ask.client_key,
        account_id=account.id,
        scopes=scopes,
        offline=ask.offline,
        redirect_uri=ask.redirect_uri,
        code_digest=_digest(code),
        code_challenge=ask.code_challenge,
        code_expires_at=utcnow() + CODE_LIFETIME,
        source_address=address,
    )
    session.add(row)
    session.flush()
    record_change(
        session,
        actor=account.username,
        entity="oauth_grant",
        entity_id=str(row.id),
        action="approved",
        changes={"client_id": ask.client_id, "scopes": scopes, "offline": ask.offline},
        member_id=account.member_id,
    )
    return code


def _client(session: Session, client_id: str | None, secret: str | None) -> OAuthClient:
    """The calling client, authenticated if it is confidential (RFC 6749 2.3)."""
    client = session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == (client_id or ""), OAuthClient.active)
    )
    if client is None:
        verify_secret(None, secret or "")  # the same time for an unknown client
        raise OAuthError("invalid_client", "unknown client", status=401)
    if client.secret_hash is not None and not (
        secret and verify_secret(client.secret_hash, secret)
    ):
        raise OAuthError("invalid_client", "the client's secret is missing or wrong", status=401)
    return client


def _revoke(session: Session, row: OAuthGrant, *, actor: str, why: str) -> None:
    row.revoked_at = utcnow()
    row.refresh_digest = None
    record_change(
        session,
        actor=actor,
        entity="oauth_grant",
        entity_id=str(row.id),
        action="revoked",
        changes={"why": why},
    )


def _account(session: Session, row: OAuthGrant) -> tuple[ApiAccount, str]:
    """The member's account, and their Patient id (the member number) for the app."""
    account = session.get(ApiAccount, row.account_id)
    if account is None or not account.active or account.member_id is None:
        raise OAuthError("invalid_grant", "the member's account is disabled")
    number = session.scalar(select(Member.member_number).where(Member.id == account.member_id))
    return account, number


def _new_refresh(row: OAuthGrant) -> str | None:
    if not row.offline:
        return None
    token = secrets.token_urlsafe(32)
    row.replaced_digest = row.refresh_digest
    row.refresh_digest = _digest(token)
    row.refresh_expires_at = utcnow() + REFRESH_LIFETIME
    return token


def exchange_code(
    session: Session,
    *,
    code: str | None,
    redirect_uri: str | None,
    client_id: str | None,
    client_secret: str | None,
    verifier: str | None,
) -> Issued:
    """Tokens for an authorization code (RFC 6749 4.1.3, RFC 7636 4.6)."""
    client = _client(session, client_id, client_secret)
    if not code:
        raise OAuthError("invalid_request", "code is missing")
    row = session.scalar(
        select(OAuthGrant).where(OAuthGrant.code_digest == _digest(code)).with_for_update()
    )
    if row is None or row.client_id != client.id:
        raise OAuthError("invalid_grant", "the authorization code is not valid")
    if row.code_used or row.revoked_at is not None:
        # RFC 6749 4.1.2: a code used twice revokes what was issued on it.
        if row.revoked_at is None:
            _revoke(session, row, actor=client.client_id, why="authorization code used twice")
        raise OAuthError("invalid_grant", "the authorization code was already used")
    if as_aware(row.code_expires_at) < utcnow():
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if redirect_uri != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    # Every code was asked for with a PKCE challenge (read_authorization insists).
    if not verifier or not _VERIFIER.match(verifier):
        raise OAuthError(
            "invalid_grant", "code_verifier is missing or not 43-128 unreserved characters"
        )
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    if computed.rstrip(b"=").decode() != row.code_challenge:
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    row.code_used = True
    account, patient = _account(session, row)
    return Issued(account, row, client.client_id, patient, row.scopes, _new_refresh(row))


def refresh(
    session: Session,
    *,
    token: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> Issued:
    """New tokens for a refresh token, which is replaced (RFC 6749 6)."""
    client = _client(session, client_id, client_secret)
    if not token:
        raise OAuthError("invalid_request", "refresh_token is missing")
    digest = _digest(token)
    row = session.scalar(
        select(OAuthGrant)
        .where(or_(OAuthGrant.refresh_digest == digest, OAuthGrant.replaced_digest == digest))
        .with_for_update()
    )
    if row is None or row.client_id != client.id or row.revoked_at is not None:
        raise OAuthError("invalid_grant", "the refresh token is not valid")
    if row.refresh_digest != digest:
        _revoke(session, row, actor=client.client_id, why="a replaced refresh token came back")
        raise OAuthError(
            "invalid_grant", "the refresh token was already used; the authorization is revoked"
        )
    if row.refresh_expires_at is None or as_aware(row.refresh_expires_at) < utcnow():
        raise OAuthError("invalid_grant", "the refresh token has expired")
    account, patient = _account(session, row)
    scopes = row.scopes
    if scope:
        # RFC 6749 6: a narrower scope may be asked; never a wider one.
        wanted = " ".join(s for s in scope.split() if s not in CONTEXT_SCOPES + IGNORED_SCOPES)
        try:
            scopes = grant(wanted, row.scopes) if wanted else row.scopes
        except ScopeError as exc:
            raise OAuthError("invalid_scope", f"{exc}: not granted by the member") from exc
    return Issued(account, row, client.client_id, patient, scopes, _new_refresh(row))


def revoke(
    session: Session,
    *,
    token: str | None,
    client_id: str | None,
    client_secret: str | None,
    grant_id: int | None = None,
) -> None:
    """RFC 7009: the grant of this token ends; an unknown token is no error.

    `token` is a refresh token, or an access token whose grant the caller read from it
    (`grant_id`): either way the whole grant ends, every token issued on it with it.
    """
    client = _client(session, client_id, client_secret)
    if not token:
        raise OAuthError("invalid_request", "token is missing")
    where = (
        OAuthGrant.id == grant_id
        if grant_id is not None
        else OAuthGrant.refresh_digest == _digest(token)
    )
    row = session.scalar(select(OAuthGrant).where(where).with_for_update())
    if row is not None and row.client_id == client.id and row.revoked_at is None:
        _revoke(session, row, actor=client.client_id, why="revoked by the app")


@dataclass(frozen=True)
class Connection:
    """An app a member connected (a code redeemed): who allowed it, when, and whether and
    when it ended."""

    grant_id: int
    username: str
    client_id: str
    app: str
    scopes: str
    offline: bool
    approved_at: datetime
    ended_at: datetime | None


def _connections(session: Session, *where) -> list[Connection]:
    rows = session.execute(
        select(OAuthGrant, ApiAccount.username, OAuthClient.client_id, OAuthClient.name)
        .join(ApiAccount, ApiAccount.id == OAuthGrant.account_id)
        .join(OAuthClient, OAuthClient.id == OAuthGrant.client_id)
        .where(OAuthGrant.code_used, *where)
        .order_by(OAuthGrant.created_at, OAuthGrant.id)
    ).all()
    return [
        Connection(
            g.id,
            username,
            client_id,
            name,
            g.scopes,
            g.offline,
            as_aware(g.created_at),
            as_aware(g.revoked_at) if g.revoked_at else None,
        )
        for g, username, client_id, name in rows
    ]


def connections(session: Session, account_id: int) -> list[Connection]:
    """The apps connected to this account now (not ended): what the member manages."""
    return _connections(
        session, OAuthGrant.account_id == account_id, OAuthGrant.revoked_at.is_(None)
    )


def authorizations(session: Session, member_id: int) -> list[Connection]:
    """Every app any account of the member ever connected, ended or not: who holds or
    held the member's data through an app (an accounting of disclosures)."""
    return _connections(session, ApiAccount.member_id == member_id)


def _end(session: Session, grant_id: int, owner, *, actor: str, why: str) -> bool:
    """End a live connection `owner` (a condition on its account) has; False if none."""
    row = session.scalar(
        select(OAuthGrant)
        .join(ApiAccount, ApiAccount.id == OAuthGrant.account_id)
        .where(OAuthGrant.id == grant_id, OAuthGrant.code_used, owner)
        .with_for_update(of=OAuthGrant)
    )
    if row is None or row.revoked_at is not None:
        return False
    _revoke(session, row, actor=actor, why=why)
    return True


def disconnect(session: Session, account: ApiAccount, grant_id: int) -> bool:
    """The member ends an app's access; False if no such connection of theirs."""
    owner = OAuthGrant.account_id == account.id
    return _end(session, grant_id, owner, actor=account.username, why="disconnected by the member")


def end_for_member(
    session: Session, member_id: int, grant_id: int, *, actor: str, why: str
) -> bool:
    """Staff end an app's access on the member's behalf; False if the member has no such
    live connection."""
    why = f"ended by staff for the member: {why}"
    return _end(session, grant_id, ApiAccount.member_id == member_id, actor=actor, why=why)


def disable_client(session: Session, client_id: str, *, actor: str) -> int:
    """Stop an app (a leaked secret, an app gone bad): no new grants, and every grant it
    holds revoked, its tokens with them. Returns how many grants were revoked."""
    client = session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id).with_for_update()
    )
    if client is None:
        raise ValueError(f"no app with client id {client_id!r}")
    client.active = False
    live = session.scalars(
        select(OAuthGrant).where(OAuthGrant.client_id == client.id, OAuthGrant.revoked_at.is_(None))
    ).all()
    for row in live:
        _revoke(session, row, actor=actor, why="the app was disabled")
    record_change(
        session,
        actor=actor,
        entity="oauth_client",
        entity_id=str(client.id),
        action="disabled",
        changes={"client_id": client_id, "grants_revoked": len(live)},
    )
    return len(live)
