"""Apps a member connects (SMART App Launch, standalone): authorize, code, PKCE, refresh.

Over HTTP against the real server on both databases: the consent page, the code sent
back to the registered redirect URI, the token answer with the patient in context, what
the app's token may read, and every way the flow refuses (RFC 6749, RFC 7636, RFC 7009,
refresh token rotation). tests/test_api_smart_browser.py drives the page in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from api_support import PASSWORD, seed_world, serve
from openhmo.access.apps import register_client
from openhmo.access.models import ApiAccount, OAuthGrant
from openhmo.db import session_factory
from openhmo.history.models import PhiAccess

APP = "com.example.planapp"
SERVER_APP = "budget-server"
SERVER_SECRET = "server-app-secret-" + "z" * 16
REDIRECT = "com.example.planapp:/callback"
SERVER_REDIRECT = "https://budget.example/oauth/callback"


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    with session_factory(module_engine)() as s:
        register_client(s, APP, "Plan Pal", [REDIRECT], secret=None, actor="test")
        register_client(
            s, SERVER_APP, "Budget Helper", [SERVER_REDIRECT], secret=SERVER_SECRET, actor="test"
        )
        s.commit()
    with serve(module_engine) as base:
        yield base, world, module_engine


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def ask(base: str, challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": APP,
        "redirect_uri": REDIRECT,
        "scope": "launch/patient patient/*.read offline_access openid fhirUser",
        "state": "st-" + secrets.token_hex(4),
        "aud": f"{base}/fhir",
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


def approve(base: str, params: dict, username: str = "ada", decision: str = "allow"):
    """The member's form post, as the page sends it: the page's own hidden fields."""
    form = {k: v for k, v in params.items() if k != "aud"}
    form |= {"username": username, "password": PASSWORD, "decision": decision}
    return httpx.post(f"{base}/auth/authorize", data=form, follow_redirects=False, timeout=30)


def code_of(answer: httpx.Response, state: str) -> str:
    assert answer.status_code == 303, answer.text
    where = urlsplit(answer.headers["location"])
    query = parse_qs(where.query)
    assert query["state"] == [state]
    assert query["iss"][0].startswith("http://127.0.0.1")
    return query["code"][0]


def exchange(base: str, code: str, verifier: str | None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    data |= {"client_id": APP} | ({"code_verifier": verifier} if verifier else {}) | extra
    return httpx.post(f"{base}/auth/token", data=data, timeout=30)


def connect(base: str, username: str = "ada") -> dict:
    verifier, challenge = pkce()
    params = ask(base, challenge)
    answer = exchange(base, code_of(approve(base, params, username), params["state"]), verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def fhir(base: str, token: str, path: str) -> httpx.Response:
    return httpx.get(
        f"{base}/fhir/{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        timeout=30,
    )


def test_the_consent_page_names_the_app_and_what_it_asks(api):
    base, _, _ = api
    _, challenge = pkce()
    page = httpx.get(f"{base}/auth/authorize", params=ask(base, challenge), timeout=30)
    assert page.status_code == 200
    assert "Connect Plan Pal to your OpenHMO account" in page.text
    assert "See your health plan records" in page.text
    assert "Stay connected until you disconnect it" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    swedish = httpx.get(
        f"{base}/auth/authorize", params=ask(base, challenge, ui_locales="sv"), timeout=30
    )
    assert "Anslut Plan Pal till ditt OpenHMO-konto" in swedish.text
    assert '<html lang="sv">' in swedish.text
    japanese = httpx.get(
        f"{base}/auth/authorize",
        params=ask(base, challenge),
        headers={"Accept-Language": "ja,en;q=0.5"},
        timeout=30,
    )
    assert "Plan Pal を OpenHMO のアカウントに接続" in japanese.text


def test_an_app_reads_only_its_member_s_family_with_the_token_it_gets(api):
    base, world, engine = api
    tokens = connect(base)
    assert tokens["token_type"] == "Bearer"
    assert tokens["patient"] == world.ada
    assert set(tokens["scope"].split()) == {"patient/*.read", "launch/patient", "offline_access"}
    assert tokens["refresh_token"]
    token = tokens["access_token"]
    assert fhir(base, token, f"Patient/{world.ada}").status_code == 200
    assert fhir(base, token, f"Patient/{world.kid}").status_code == 200  # her minor child
    assert fhir(base, token, f"Patient/{world.lee}").status_code == 404  # another family
    eobs = fhir(base, token, "ExplanationOfBenefit").json()
    patients = {e["resource"]["patient"]["reference"] for e in eobs["entry"]}
    assert patients <= {f"Patient/{world.ada}", f"Patient/{world.kid}"}
    assert patients
    # A member's app has no write scope for claims, and no staff API.
    assert fhir(base, token, "AuditEvent").status_code == 403
    with session_factory(engine)() as s:
        actors = set(s.scalars(select(PhiAccess.actor).where(PhiAccess.actor.like("ada via%"))))
    assert actors == {f"ada via app {APP}"}


def test_an_app_asking_smart_v2_scopes_gets_them_and_no_more(api):
    base, world, _ = api
    verifier, challenge = pkce()
    params = ask(base, challenge, scope="launch/patient patient/Patient.r patient/Coverage.rs")
    page = httpx.get(f"{base}/auth/authorize", params=params, timeout=30)
    assert page.status_code == 200 and "Patient" in page.text and "Coverage" in page.text
    answer = exchange(base, code_of(approve(base, params), params["state"]), verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert set(tokens["scope"].split()) == {
        "patient/Patient.r",
        "patient/Coverage.rs",
        "launch/patient",
    }
    token = tokens["access_token"]
    assert fhir(base, token, f"Patient/{world.ada}").status_code == 200
    assert fhir(base, token, "Patient").status_code == 403  # r: read by id, not search
    assert fhir(base, token, "Coverage").status_code == 200
    assert fhir(base, token, "ExplanationOfBenefit").status_code == 403


def test_a_code_is_single_use_and_its_second_use_revokes_the_grant(api):
    base, world, _ = api
    verifier, challenge = pkce()
    params = ask(base, challenge)
    code = code_of(approve(base, params), params["state"])
    first = exchange(base, code, verifier)
    assert first.status_code == 200
    again = exchange(base, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # RFC 6749 4.1.2: what was issued on the code stops working.
    answer = fhir(base, first.json()["access_token"], f"Patient/{world.ada}")
    assert answer.status_code == 401
    assert "revoked" in answer.text
    refreshed = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": APP,
        },
        timeout=30,
    )
    assert refreshed.status_code == 400


@pytest.mark.parametrize(
    "change, description",
    [
        ({"verifier": "wrong-" + "v" * 50}, "does not match"),
        ({"verifier": None}, "code_verifier is missing"),
        ({"redirect_uri": "com.example.planapp:/other"}, "redirect_uri differs"),
        ({"client_id": SERVER_APP}, "secret is missing"),
        ({"client_id": "nobody"}, "unknown client"),
    ],
)
def test_a_code_is_refused_to_anyone_who_cannot_prove_they_asked_for_it(api, change, description):
    base, _, _ = api
    verifier, challenge = pkce()
    params = ask(base, challenge)
    code = code_of(approve(base, params), params["state"])
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": change.get("redirect_uri", REDIRECT),
        "client_id": change.get("client_id", APP),
    }
    sent = change.get("verifier", verifier)
    if sent is not None:
        data["code_verifier"] = sent
    answer = httpx.post(f"{base}/auth/token", data=data, timeout=30)
    assert answer.status_code in (400, 401)
    assert description in answer.json()["error_description"]
    assert answer.headers["cache-control"] == "no-store"


def test_refresh_tokens_rotate_and_a_replayed_one_revokes_everything(api):
    base, _, _ = api
    tokens = connect(base)
    first_refresh = tokens["refresh_token"]

    def refresh(token: str, **extra) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": APP} | extra
        return httpx.post(f"{base}/auth/token", data=data, timeout=30)

    narrowed = refresh(first_refresh, scope="patient/Coverage.read")
    assert narrowed.status_code == 200, narrowed.text
    assert "patient/Coverage.read" in narrowed.json()["scope"].split()
    assert narrowed.json()["refresh_token"] != first_refresh
    only_coverage = narrowed.json()["access_token"]
    assert fhir(base, only_coverage, "Coverage").status_code == 200
    assert fhir(base, only_coverage, "ExplanationOfBenefit").status_code == 403
    wider = refresh(narrowed.json()["refresh_token"], scope="patient/*.*")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # The replaced token comes back (stolen, or replayed): the whole grant ends.
    replay = refresh(first_refresh)
    assert replay.status_code == 400
    assert "revoked" in replay.json()["error_description"]
    assert fhir(base, only_coverage, "Coverage").status_code == 401
    assert refresh(narrowed.json()["refresh_token"]).status_code == 400


def test_a_confidential_app_authenticates_and_can_revoke_its_grant(api):
    base, world, engine = api
    verifier, challenge = pkce()
    params = ask(base, challenge, client_id=SERVER_APP, redirect_uri=SERVER_REDIRECT)
    code = code_of(approve(base, params, "lee"), params["state"])
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": SERVER_REDIRECT,
        "code_verifier": verifier,
    }
    answer = httpx.post(
        f"{base}/auth/token", data=data, auth=(SERVER_APP, SERVER_SECRET), timeout=30
    )
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["patient"] == world.lee
    access = tokens["access_token"]
    assert fhir(base, access, f"Patient/{world.lee}").status_code == 200
    wrong = httpx.post(
        f"{base}/auth/revoke", data={"token": access}, auth=(APP, "x" * 20), timeout=30
    )
    assert wrong.status_code in (200, 401)
    assert fhir(base, access, f"Patient/{world.lee}").status_code == 200  # not another's to end
    done = httpx.post(
        f"{base}/auth/revoke", data={"token": access}, auth=(SERVER_APP, SERVER_SECRET), timeout=30
    )
    assert done.status_code == 200
    assert fhir(base, access, f"Patient/{world.lee}").status_code == 401
    with session_factory(engine)() as s:
        lee = s.scalar(select(ApiAccount.id).where(ApiAccount.username == "lee"))
        grants = s.scalars(select(OAuthGrant).where(OAuthGrant.account_id == lee)).all()
    assert [g.revoked_at is not None for g in grants] == [True]
    assert all(g.code_digest != code for g in grants)  # kept only as a digest


def test_the_member_says_no_or_signs_in_wrongly(api):
    base, _, _ = api
    _, challenge = pkce()
    params = ask(base, challenge)
    denied = approve(base, params, decision="deny")
    assert denied.status_code == 303
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [params["state"]]
    wrong = approve(base, params | {"ui_locales": "ja"}, username="nobody")
    assert wrong.status_code == 401
    assert "ユーザー名またはパスワードが正しくありません" in wrong.text
    provider = approve(base, params, username="welby")
    assert provider.status_code == 401
    assert "Only a member's account can connect an app here." in html.unescape(provider.text)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
        ({"scope": "launch/patient user/*.read"}, "invalid_scope"),
        ({"scope": "patient/Claim.delete"}, "invalid_scope"),
        ({"scope": "patient/*.write"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"no_pkce": "1"}, "invalid_request"),
        # a confidential app too (SMART 2.0)
        (
            {"no_pkce": "1", "client_id": SERVER_APP, "redirect_uri": SERVER_REDIRECT},
            "invalid_request",
        ),
    ],
)
def test_a_bad_request_goes_back_to_the_app_with_the_error(api, change, error):
    base, _, _ = api
    _, challenge = pkce()
    change = dict(change)  # shared by both databases' runs
    params = ask(base, None if change.pop("no_pkce", None) else challenge) | change
    if error == "invalid_scope" and change.get("scope") == "patient/*.write":
        # Asked within the patient context but beyond the member's role: the member has
        # signed in before it is refused.
        answer = approve(base, params)
    else:
        answer = httpx.get(
            f"{base}/auth/authorize", params=params, follow_redirects=False, timeout=30
        )
    assert answer.status_code == 303, answer.text
    where = urlsplit(answer.headers["location"])
    assert where._replace(query="").geturl() == params["redirect_uri"]
    query = parse_qs(where.query)
    assert query["error"] == [error]
    assert query["state"] == [params["state"]]


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "unknown-app"},
        {"redirect_uri": "https://attacker.example/steal"},
        {"redirect_uri": ""},
    ],
)
def test_an_unknown_app_or_redirect_uri_is_shown_to_the_member_never_followed(api, change):
    base, _, _ = api
    _, challenge = pkce()
    answer = httpx.get(
        f"{base}/auth/authorize", params=ask(base, challenge) | change, follow_redirects=False
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "Nothing was shared with it." in answer.text


def test_the_smart_configuration_tells_apps_how_to_connect(api):
    base, _, _ = api
    config = httpx.get(f"{base}/fhir/.well-known/smart-configuration").json()
    assert config["authorization_endpoint"] == f"{base}/auth/authorize"
    assert config["revocation_endpoint"] == f"{base}/auth/revoke"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token"} <= set(config["grant_types_supported"])
    assert {"launch-standalone", "client-public", "context-standalone-patient"} <= set(
        config["capabilities"]
    )
    metadata = httpx.get(f"{base}/fhir/metadata").json()
    uris = metadata["rest"][0]["security"]["extension"][0]["extension"]
    assert {u["url"]: u["valueUri"] for u in uris}["authorize"] == f"{base}/auth/authorize"


def test_redirect_uris_must_be_safe_to_register(engine):
    with session_factory(engine)() as s:
        for uri in ("http://app.example/cb", "https://app.example/cb#frag", "javascript:alert(1)"):
            with pytest.raises(ValueError, match="redirect URI"):
                register_client(s, "bad-app", "Bad", [uri], secret=None, actor="test")
        register_client(s, "ok-app", "OK", ["http://127.0.0.1:8765/cb"], secret=None, actor="t")
        with pytest.raises(ValueError, match="taken"):
            register_client(s, "ok-app", "OK", ["https://ok.example/cb"], secret=None, actor="t")


def test_apps_are_registered_from_the_command_line(database_url, monkeypatch):
    from typer.testing import CliRunner

    from openhmo.access.models import OAuthClient
    from openhmo.access.passwords import verify_secret
    from openhmo.cli.main import app
    from openhmo.db import make_engine

    monkeypatch.setenv("OPENHMO_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENHMO_ACTOR", "staff:jlee")
    runner = CliRunner()
    public = runner.invoke(
        app,
        ["api", "add-client", "pal", "--name", "Plan Pal", "--redirect-uri", REDIRECT],
    )
    assert public.exit_code == 0, public.output
    assert "public (PKCE)" in public.output
    monkeypatch.setenv("OPENHMO_API_PASSWORD", SERVER_SECRET)
    server = runner.invoke(
        app,
        [
            "api", "add-client", "budget", "--name", "Budget Helper", "--confidential",
            "--redirect-uri", SERVER_REDIRECT, "--redirect-uri", "https://budget.example/cb2",
        ],
    )  # fmt: skip
    assert server.exit_code == 0, server.output
    bad = runner.invoke(
        app, ["api", "add-client", "evil", "--name", "Evil", "--redirect-uri", "http://x.example"]
    )
    assert bad.exit_code != 0 and "must be https" in bad.output
    with session_factory(make_engine(database_url))() as s:
        clients = {c.client_id: c for c in s.scalars(select(OAuthClient))}
    assert set(clients) == {"pal", "budget"}
    assert clients["pal"].secret_hash is None
    assert verify_secret(clients["budget"].secret_hash, SERVER_SECRET)
    assert clients["budget"].redirect_uris.split("\n") == [
        SERVER_REDIRECT,
        "https://budget.example/cb2",
    ]
    off = runner.invoke(app, ["api", "disable-client", "pal"])
    assert off.exit_code == 0 and "pal disabled; 0 member grant(s) revoked" in off.output
    assert runner.invoke(app, ["api", "disable-client", "nobody"]).exit_code != 0


def test_a_member_sees_her_connected_apps_and_disconnects_one(api):
    from api_support import token

    base, world, _ = api
    tokens = connect(base, "sam")
    app_token = tokens["access_token"]
    sam = {"Authorization": f"Bearer {token(base, 'sam')}"}
    listed = httpx.get(f"{base}/auth/apps", headers=sam, timeout=30)
    assert listed.status_code == 200
    (connected,) = listed.json()
    assert connected["client_id"] == APP and connected["name"] == "Plan Pal"
    assert connected["scope"] == "patient/*.read" and connected["offline_access"] is True
    # Nobody else sees or ends it: another member, a provider, staff, the app itself.
    lee = {"Authorization": f"Bearer {token(base, 'lee')}"}
    assert httpx.get(f"{base}/auth/apps", headers=lee, timeout=30).json() == []
    gone = httpx.post(f"{base}/auth/apps/{connected['id']}/revoke", headers=lee, timeout=30)
    assert gone.status_code == 404
    for who in ("welby", "staff"):
        other = {"Authorization": f"Bearer {token(base, who)}"}
        assert httpx.get(f"{base}/auth/apps", headers=other, timeout=30).status_code == 403
    as_app = {"Authorization": f"Bearer {app_token}"}
    assert httpx.get(f"{base}/auth/apps", headers=as_app, timeout=30).status_code == 403
    assert httpx.get(f"{base}/auth/apps", timeout=30).status_code == 401
    assert fhir(base, app_token, f"Patient/{world.sam}").status_code == 200
    # She disconnects it: the app's tokens stop at once, and it is no longer listed.
    done = httpx.post(f"{base}/auth/apps/{connected['id']}/revoke", headers=sam, timeout=30)
    assert done.status_code == 204
    assert fhir(base, app_token, f"Patient/{world.sam}").status_code == 401
    again = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": APP,
        },
        timeout=30,
    )
    assert again.status_code == 400
    assert httpx.get(f"{base}/auth/apps", headers=sam, timeout=30).json() == []


def test_a_disabled_app_loses_every_grant_at_once(api):
    from openhmo.access.apps import disable_client

    base, world, engine = api
    with session_factory(engine)() as s:
        register_client(s, "rogue-app", "Rogue", [REDIRECT], secret=None, actor="test")
        s.commit()
    verifier, challenge = pkce()
    params = ask(base, challenge, client_id="rogue-app")
    code = code_of(approve(base, params, "lee"), params["state"])
    tokens = exchange(base, code, verifier, client_id="rogue-app").json()
    assert fhir(base, tokens["access_token"], f"Patient/{world.lee}").status_code == 200
    with session_factory(engine)() as s:
        assert disable_client(s, "rogue-app", actor="staff:security") == 1
        s.commit()
    assert fhir(base, tokens["access_token"], f"Patient/{world.lee}").status_code == 401
    again = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "rogue-app",
        },
        timeout=30,
    )
    assert again.status_code == 401  # the client itself is no longer known
    page = httpx.get(f"{base}/auth/authorize", params=params, follow_redirects=False)
    assert page.status_code == 400 and "location" not in page.headers


def test_staff_see_every_app_a_member_connected_and_end_one_for_her(api):
    from api_support import token
    from openhmo.history.models import ChangeRecord

    base, world, engine = api
    staff = {"Authorization": f"Bearer {token(base, 'staff')}"}
    listing = f"{base}/staff/members/{world.lee}/apps"
    before = {a["id"] for a in httpx.get(listing, headers=staff, timeout=30).json()}
    tokens = connect(base, "lee")
    app_token = tokens["access_token"]
    listed = httpx.get(listing, headers=staff, timeout=30)
    assert listed.status_code == 200
    (new,) = [a for a in listed.json() if a["id"] not in before]
    assert (new["client_id"], new["app"], new["username"]) == (APP, "Plan Pal", "lee")
    assert new["scopes"] == "patient/*.read" and new["ended_at"] is None
    # Only what was connected to her accounts: Ada's connections are not in her list.
    ada_grants = httpx.get(f"{base}/staff/members/{world.ada}/apps", headers=staff).json()
    assert new["id"] not in {a["id"] for a in ada_grants}

    def end(member: str, reason: str) -> int:
        url = f"{base}/staff/members/{member}/apps/{new['id']}/end"
        return httpx.post(url, json={"reason": reason}, headers=staff, timeout=30).status_code

    assert end(world.ada, "asked by phone") == 404  # not a connection of Ada's
    assert fhir(base, app_token, f"Patient/{world.lee}").status_code == 200
    assert end(world.lee, "member asked by phone, ticket 4411") == 204
    assert fhir(base, app_token, f"Patient/{world.lee}").status_code == 401
    after = {a["id"]: a for a in httpx.get(listing, headers=staff, timeout=30).json()}
    assert after[new["id"]]["ended_at"] is not None  # kept in the list: who had her data
    assert end(world.lee, "again") == 404
    with session_factory(engine)() as s:
        why = s.execute(
            select(ChangeRecord.actor, ChangeRecord.changes).where(
                ChangeRecord.entity == "oauth_grant",
                ChangeRecord.entity_id == str(new["id"]),
                ChangeRecord.action == "revoked",
            )
        ).all()
        reads = s.scalars(
            select(PhiAccess.what).where(
                PhiAccess.actor == "staff", PhiAccess.resource_type == "Consent"
            )
        ).all()
    assert [tuple(row) for row in why] == [
        ("api:staff", {"why": "ended by staff for the member: member asked by phone, ticket 4411"})
    ]
    assert f"GET /staff/members/{world.lee}/apps" in reads


def test_the_consent_page_pauses_an_address_that_failed_too_often(api):
    from openhmo.access.accounts import MAX_ADDRESS_FAILURES
    from openhmo.access.models import SignInFailure
    from openhmo.db.types import utcnow

    base, _, engine = api
    with session_factory(engine)() as s, s.begin():
        s.add_all(
            SignInFailure(address="127.0.0.3", failed_at=utcnow())
            for _ in range(MAX_ADDRESS_FAILURES)
        )
    verifier, challenge = pkce()
    params = ask(base, challenge, ui_locales="sv")
    form = {k: v for k, v in params.items() if k != "aud"}
    form |= {"username": "ada", "password": PASSWORD, "decision": "allow"}
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport, timeout=30) as there:
        answer = there.post(f"{base}/auth/authorize", data=form, follow_redirects=False)
    assert answer.status_code == 429
    assert "För många misslyckade inloggningar" in answer.text
    # From another address the same member signs in and allows the app.
    code = code_of(approve(base, params), params["state"])
    assert exchange(base, code, verifier).status_code == 200
