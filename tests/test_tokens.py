"""Bearer tokens (access.tokens): what is read back, and what is refused, checked once or often."""

from __future__ import annotations

import time

import pytest

from openhmo.access import tokens
from openhmo.access.tokens import TokenClaims, TokenError, issue, read

KEY = "k" * 40
OTHER_KEY = "o" * 40


def _claims(expires_at: int) -> TokenClaims:
    return TokenClaims(
        account_id=7,
        username="ada",
        role="member",
        scopes="patient/*.read",
        member_id=3,
        provider_id=None,
        expires_at=expires_at,
        grant_id=11,
        client_id="app",
    )


def test_a_token_reads_back_its_claims_every_time():
    claims = _claims(int(time.time()) + 60)
    token = issue(KEY, claims)
    assert read(KEY, token) == claims
    assert read(KEY, token) == claims


def test_a_token_read_while_valid_is_refused_once_expired(monkeypatch):
    expires = int(time.time()) + 60
    token = issue(KEY, _claims(expires))
    assert read(KEY, token).expires_at == expires
    monkeypatch.setattr(tokens.time, "time", lambda: expires)
    with pytest.raises(TokenError, match="expired"):
        read(KEY, token)
    monkeypatch.setattr(tokens.time, "time", lambda: expires - 1)
    assert read(KEY, token).username == "ada"


def test_an_expired_token_never_read_before_is_refused():
    with pytest.raises(TokenError, match="expired"):
        read(KEY, issue(KEY, _claims(int(time.time()) - 5)))


def test_a_token_checked_under_one_key_is_refused_under_another():
    token = issue(KEY, _claims(int(time.time()) + 60))
    assert read(KEY, token).account_id == 7
    with pytest.raises(TokenError, match="not valid"):
        read(OTHER_KEY, token)


def test_a_changed_token_is_refused_after_the_real_one_was_read():
    token = issue(KEY, _claims(int(time.time()) + 60))
    read(KEY, token)
    head, body, signature = token.split(".")
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    for forged in (f"{head}.{body}.{forged_signature}", f"{head}.{body}x.{signature}", token + "x"):
        with pytest.raises(TokenError):
            read(KEY, forged)


def test_the_kept_checks_stay_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "_CHECKED_MAX", 8)
    expires = int(time.time()) + 60
    for _ in range(50):
        token = issue(KEY, _claims(expires))
        assert read(KEY, token).account_id == 7
        assert len(tokens._checked) <= 8
