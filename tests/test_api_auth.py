"""Tokens, scopes and roles over real HTTP: who gets a token, and what a token lets through."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import event, select, update

from api_support import PASSWORD, client, fhir_eligibility, seed_world, serve, token
from openhmo.access.models import ApiAccount
from openhmo.access.scopes import Scope, ScopeError, allows, grant
from openhmo.api import deps
from openhmo.db import session_factory


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    with serve(module_engine) as base:
        yield base, world, module_engine


def test_a_password_gives_a_bearer_token_with_the_roles_scopes(api):
    base, _, _ = api
    answer = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "password", "username": "ada", "password": PASSWORD},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "patient/*.read patient/CoverageEligibilityRequest.write"
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        (
            {"grant_type": "password", "username": "ada", "password": "wrong password!"},
            None,
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "password", "username": "nobody", "password": PASSWORD},
            None,
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "password", "username": "clearinghouse", "password": PASSWORD},
            None,
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "client_credentials"},
            ("clearinghouse", "wrong secret!!"),
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, ("staff", PASSWORD), 401, "invalid_client"),
        ({"grant_type": "implicit"}, None, 400, "unsupported_grant_type"),
        # An app's code needs the app (tests/test_api_smart_launch.py has the flow).
        ({"grant_type": "authorization_code"}, None, 401, "invalid_client"),
        (
            {
                "grant_type": "password",
                "username": "ada",
                "password": PASSWORD,
                "scope": "user/*.read",
            },
            None,
            400,
            "invalid_scope",
        ),
        (
            {
                "grant_type": "password",
                "username": "ada",
                "password": PASSWORD,
                "scope": "patient/Claim.write",
            },
            None,
            400,
            "invalid_scope",
        ),
        # SMART 2.0: a member may not create claims, nor ask for letters out of order or
        # for a finer scope that nothing here would apply.
        *(
            (
                {"grant_type": "password", "username": "ada", "password": PASSWORD, "scope": s},
                None,
                400,
                "invalid_scope",
            )
            for s in ("patient/Claim.c", "patient/*.sr", "patient/Observation.rs?category=vital")
        ),
    ],
)
def test_tokens_are_refused_as_rfc6749_says(api, data, auth, status, error):
    base, _, _ = api
    answer = httpx.post(f"{base}/auth/token", data=data, auth=auth)
    assert answer.status_code == status
    assert answer.json()["error"] == error


def test_a_system_client_gets_a_token_with_client_credentials(api):
    base, _, _ = api
    answer = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/Claim.write"},
        auth=("clearinghouse", PASSWORD),
    )
    assert answer.status_code == 200
    assert answer.json()["scope"] == "system/Claim.write"


def test_bad_tokens_are_401_with_an_operation_outcome(api):
    base, _, _ = api
    forged = token(base, "ada")[:-4] + "AAAA"
    for header in ("Bearer " + forged, "Bearer", "Basic abc", "Bearer not.a.jwt"):
        answer = httpx.get(f"{base}/fhir/metadata", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.headers["www-authenticate"].startswith("Bearer")
        body = answer.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "login"


def test_a_disabled_account_s_token_stops_working_at_once(api):
    base, _, engine = api
    with client(base, "lee") as lee:
        assert lee.get("/fhir/metadata").status_code == 200
        with session_factory(engine)() as s:
            s.execute(update(ApiAccount).where(ApiAccount.username == "lee").values(active=False))
            s.commit()
        try:
            assert lee.get("/fhir/metadata").status_code == 401
        finally:
            with session_factory(engine)() as s:
                s.execute(
                    update(ApiAccount).where(ApiAccount.username == "lee").values(active=True)
                )
                s.commit()


# Every route that checks its caller's account itself (api.deps.confirms_account): its
# endpoint, path, and a request lee's token gets an answer to.
CONFIRMING_ITSELF = {
    "openhmo.api.fhir.eligibility.submit": (
        "/fhir/CoverageEligibilityRequest/$submit",
        lambda w: fhir_eligibility(w.lee),
    ),
}


def test_routes_that_check_the_account_themselves_refuse_a_disabled_one(api):
    base, world, engine = api
    marked = {f"{f.__module__}.{f.__qualname__}" for f in deps.CONFIRMING_ITSELF}
    assert marked == set(CONFIRMING_ITSELF)
    checkouts = []

    def count(*_):
        checkouts.append(1)

    event.listen(engine, "checkout", count)
    with client(base, "lee") as lee:
        try:
            for path, body in CONFIRMING_ITSELF.values():
                checkouts.clear()
                answer = lee.post(path, json=body(world))
                assert answer.status_code == 200, answer.text
                assert answer.json()["outcome"] == "complete"
                # The account is read in the route's own connection, not one of its own.
                assert len(checkouts) == 1, path
        finally:
            event.remove(engine, "checkout", count)
        with session_factory(engine)() as s:
            s.execute(update(ApiAccount).where(ApiAccount.username == "lee").values(active=False))
            s.commit()
        try:
            for path, body in CONFIRMING_ITSELF.values():
                answer = lee.post(path, json=body(world))
                assert answer.status_code == 401, path
                assert answer.json()["issue"][0]["code"] == "login"
                assert "disabled" in answer.json()["issue"][0]["diagnostics"]
        finally:
            with session_factory(engine)() as s:
                s.execute(
                    update(ApiAccount).where(ApiAccount.username == "lee").values(active=True)
                )
                s.commit()


def test_passwords_are_stored_as_argon2id_hashes(api):
    _, _, engine = api
    with session_factory(engine)() as s:
        hashes = s.scalars(select(ApiAccount.secret_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)


def test_the_capability_statement_names_the_token_endpoint(api):
    base, _, _ = api
    answer = httpx.get(f"{base}/fhir/metadata")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    statement = answer.json()
    assert statement["fhirVersion"] == "4.0.1"
    security = statement["rest"][0]["security"]
    uris = security["extension"][0]["extension"]
    assert uris[0]["valueUri"] == f"{base}/auth/token"


def test_five_wrong_passwords_in_a_row_pause_sign_in(api):
    base, _, engine = api
    from openhmo.access.accounts import LOCK_TIME, MAX_FAILURES, NewAccount, create_account

    with session_factory(engine)() as s:
        create_account(s, NewAccount("guessed", "staff"), PASSWORD, actor="test")
        s.commit()

    def sign_in(password: str) -> httpx.Response:
        data = {"grant_type": "password", "username": "guessed", "password": password}
        return httpx.post(f"{base}/auth/token", data=data, timeout=30)

    def state() -> tuple[int, object]:
        with session_factory(engine)() as s:
            row = s.scalar(select(ApiAccount).where(ApiAccount.username == "guessed"))
            return row.failed_logins, row.locked_until

    # A right password before the fifth wrong one starts the count anew.
    for _ in range(MAX_FAILURES - 1):
        assert sign_in("a wrong guess!!").status_code == 400
    assert state()[0] == MAX_FAILURES - 1
    assert sign_in(PASSWORD).status_code == 200
    assert state() == (0, None)
    for _ in range(MAX_FAILURES):
        assert sign_in("a wrong guess!!").status_code == 400
    failures, until = state()
    assert failures == MAX_FAILURES and until is not None
    # Paused: the right password is refused too, with the same answer as a wrong one.
    paused = sign_in(PASSWORD)
    assert paused.status_code == 400
    assert paused.json() == sign_in("a wrong guess!!").json()
    assert state()[0] == MAX_FAILURES  # tries during the pause are not counted
    # The pause over (moved back in time rather than waited for), the right one works.
    with session_factory(engine)() as s:
        s.execute(
            update(ApiAccount)
            .where(ApiAccount.username == "guessed")
            .values(locked_until=until - LOCK_TIME - LOCK_TIME)
        )
        s.commit()
    assert sign_in(PASSWORD).status_code == 200
    assert state() == (0, None)


def test_smart_v2_permissions_are_the_letters_of_cruds_and_v1_maps_onto_them():
    assert Scope.parse("patient/*.read").permissions == "rs"
    assert Scope.parse("user/Claim.write").permissions == "cud"
    assert Scope.parse("system/*.*").permissions == "cruds"
    assert Scope.parse("patient/Patient.rs").permissions == "rs"
    for bad in ("patient/*.", "patient/*.sr", "patient/*.cruds.read", "patient/*.x", "group/*.rs"):
        with pytest.raises(ScopeError):
            Scope.parse(bad)
    # read by id needs r, search s, writing (always a create here) c
    assert allows("patient/Patient.r", "Patient", "read")
    assert not allows("patient/Patient.r", "Patient", "search")
    assert allows("patient/Patient.s", "Patient", "search")
    assert not allows("patient/Patient.s", "Patient", "read")
    assert allows("patient/*.read", "Coverage", "search")
    assert allows("user/Claim.c", "Claim", "write") and not allows(
        "user/Claim.ud", "Claim", "write"
    )
    assert allows("user/Referral.u", "Referral", "update")
    assert not allows("user/Referral.c", "Referral", "update")
    # a grant keeps the scopes as they were asked, within what the account has
    member = "patient/*.read patient/CoverageEligibilityRequest.write"
    assert grant("patient/*.rs patient/CoverageEligibilityRequest.c", member) == (
        "patient/*.rs patient/CoverageEligibilityRequest.c"
    )
    assert grant("patient/Coverage.s", member) == "patient/Coverage.s"
    # together: read of everything and create of eligibility requests
    assert grant("patient/CoverageEligibilityRequest.cr", member) == (
        "patient/CoverageEligibilityRequest.cr"
    )
    with pytest.raises(ScopeError):
        grant("patient/Claim.cr", member)
    with pytest.raises(ScopeError):
        grant("user/Patient.r", member)


def test_a_smart_v2_token_lets_through_what_its_letters_say(api):
    base, w, _ = api

    def answers(scope: str) -> tuple[int, ...]:
        headers = {"Authorization": f"Bearer {token(base, 'ada', scope=scope)}"}
        calls = (
            ("GET", f"/fhir/Patient/{w.ada}", None),
            ("GET", "/fhir/Patient", None),
            ("GET", f"/fhir/ExplanationOfBenefit?patient={w.ada}", None),
            ("POST", "/fhir/CoverageEligibilityRequest/$submit", fhir_eligibility(w.ada)),
        )
        return tuple(
            httpx.request(method, base + path, json=body, headers=headers).status_code
            for method, path, body in calls
        )

    assert answers("patient/Patient.r") == (200, 403, 403, 403)
    assert answers("patient/*.s") == (403, 200, 200, 403)
    assert answers("patient/*.rs patient/CoverageEligibilityRequest.c") == (200, 200, 200, 200)
    assert answers("patient/CoverageEligibilityRequest.c") == (403, 403, 403, 200)
    granted = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "password",
            "username": "ada",
            "password": PASSWORD,
            "scope": "patient/*.rs",
        },
    ).json()
    assert granted["scope"] == "patient/*.rs"
    config = httpx.get(f"{base}/fhir/.well-known/smart-configuration").json()
    assert (
        "permission-v2" in config["capabilities"] and "patient/*.rs" in config["scopes_supported"]
    )


def test_an_address_that_sprays_passwords_is_paused_whatever_names_it_tries(api):
    from openhmo.access.accounts import ADDRESS_WINDOW, MAX_ADDRESS_FAILURES, address_paused
    from openhmo.access.models import SignInFailure
    from openhmo.db.types import utcnow

    base, _, engine = api
    # Another address of loopback: the server sees the caller as 127.0.0.2.
    sprayer = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)

    def sign_in(http: httpx.Client, username: str, password: str) -> httpx.Response:
        data = {"grant_type": "password", "username": username, "password": password}
        return http.post(f"{base}/auth/token", data=data)

    with sprayer:
        for i in range(MAX_ADDRESS_FAILURES):
            assert sign_in(sprayer, f"user{i}", "Winter2026!").status_code == 400
        # Ada's right password from there too is paused now; her account is not.
        paused = sign_in(sprayer, "ada", PASSWORD)
        assert paused.status_code == 429 and paused.json()["error"] == "slow_down"
        assert 0 < int(paused.headers["retry-after"]) <= ADDRESS_WINDOW.total_seconds() + 1
        assert sign_in(sprayer, "ada", "a wrong one!!").status_code == 429
    with httpx.Client(timeout=30) as elsewhere:  # 127.0.0.1
        assert sign_in(elsewhere, "ada", PASSWORD).status_code == 200
    with session_factory(engine)() as s:
        assert s.scalar(select(ApiAccount.failed_logins).where(ApiAccount.username == "ada")) == 0
        assert address_paused(s, "127.0.0.2") is not None
        assert address_paused(s, "127.0.0.1") is None
        # Failures older than the window no longer count.
        s.execute(
            update(SignInFailure)
            .where(SignInFailure.address == "127.0.0.2")
            .values(failed_at=utcnow() - ADDRESS_WINDOW)
        )
        assert address_paused(s, "127.0.0.2") is None
        s.rollback()
