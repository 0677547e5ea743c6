"""OAuth2 bearer tokens: signed JWTs (HS256) naming the account, its role and its scopes.

The signing key comes from OPENHMO_API_SIGNING_KEY (at least 32 characters); without
it, a server makes a random key when it starts, so its tokens die with it. No key is
kept in the code.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

ISSUER = "openhmo"
LIFETIME_SECONDS = 3600
_ALGORITHM = "HS256"


class TokenError(ValueError):
    """A bearer token that is missing, malformed, expired or not ours."""


def signing_key() -> str:
    key = os.environ.get("OPENHMO_API_SIGNING_KEY")
    if key is None:
        return secrets.token_urlsafe(48)
    if len(key) < 32:
        raise ValueError("OPENHMO_API_SIGNING_KEY must have at least 32 characters")
    return key


@dataclass(frozen=True)
class TokenClaims:
    account_id: int
    username: str
    role: str
    scopes: str
    member_id: int | None
    provider_id: int | None
    expires_at: int
    # A token an app got through a member's authorization (access.apps): that grant's
    # id and the app's client id. It stops working when the grant is revoked.
    grant_id: int | None = None
    client_id: str | None = None


def issue(key: str, claims: TokenClaims) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": claims.username,
        "acct": claims.account_id,
        "role": claims.role,
        "scope": claims.scopes,
        "member": claims.member_id,
        "provider": claims.provider_id,
        "iat": now,
        "exp": claims.expires_at,
        "jti": uuid.uuid4().hex,
    }
    if claims.grant_id is not None:
        payload["grant"] = claims.grant_id
        payload["azp"] = claims.client_id
    return jwt.encode(payload, key, algorithm=_ALGORITHM)


# Tokens whose signature and claims were checked: a caller sends the same token with
# every call until it expires, and PyJWT's checks cost more than the rest of a small
# call's own work. Keyed by the key and the whole token, signature included, so only
# the very token that was checked is found; its expiry is checked again at every read.
_CHECKED_MAX = 4096
_checked: dict[tuple[str, str], TokenClaims] = {}


def read(key: str, token: str) -> TokenClaims:
    """The claims of a token we signed with `key` that has not expired (else TokenError)."""
    claims = _checked.get((key, token))
    if claims is None:
        claims = _check(key, token)
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[(key, token)] = claims
    # As PyJWT's own check (no leeway): expired at the second `exp` names.
    if claims.expires_at <= time.time():
        raise TokenError("the access token has expired")
    return claims


def _check(key: str, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iss", "sub", "acct", "role", "scope"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("the access token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"the access token is not valid: {exc}") from exc
    return TokenClaims(
        account_id=int(payload["acct"]),
        username=str(payload["sub"]),
        role=str(payload["role"]),
        scopes=str(payload["scope"]),
        member_id=payload.get("member"),
        provider_id=payload.get("provider"),
        expires_at=int(payload["exp"]),
        grant_id=payload.get("grant"),
        client_id=payload.get("azp"),
    )


def expiry(lifetime: int = LIFETIME_SECONDS) -> int:
    return int(time.time()) + lifetime
