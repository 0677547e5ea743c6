"""Passwords and client secrets, hashed with argon2id (argon2-cffi's defaults, RFC 9106)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


# A hash of nothing anyone knows: checking an unknown user's password against it costs
# as long as a real check, so the time taken does not tell which usernames exist.
_DECOY = None


def hash_secret(secret: str) -> str:
    if len(secret) < MIN_LENGTH:
        raise ValueError(f"a password or secret needs at least {MIN_LENGTH} characters")
    return _hasher().hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    global _DECOY
    if stored_hash is None:
        if _DECOY is None:
            _DECOY = _hasher().hash("decoy-secret-nobody-has")
        stored_hash = _DECOY
        secret = secret + "\0"
    try:
        return _hasher().verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
