"""A member connects an app in a real browser (Chromium, driven by Playwright).

The app is a real loopback web server (RFC 8252's native-app pattern): the browser goes
to our authorize page, the member signs in and allows, and the browser lands on the
app's redirect URI with the code, which the app trades for tokens with its PKCE
verifier. Skipped only when no Chromium is installed (Debian's `chromium`), unless
OPENHMO_REQUIRE_BROWSER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from api_support import PASSWORD, seed_world, serve
from openhmo.access.apps import register_client
from openhmo.db import session_factory

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("OPENHMO_REQUIRE_BROWSER") == "1":
        pytest.fail("OPENHMO_REQUIRE_BROWSER=1 but no chromium is installed", pytrace=False)
    pytest.skip(
        "no Chromium here (apt-get install chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")

# As the machine's own probe starts it: no sandbox as root, nothing from the network.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.arrivals.append(self.path)
        body = b"<!doctype html><title>Plan Pal</title><p>Connected.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def app_server():
    """The app's own loopback server, where the browser is sent back."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    server.arrivals = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def world(module_engine, app_server):
    seeded = seed_world(module_engine)
    redirect = f"http://127.0.0.1:{app_server.server_port}/callback"
    with session_factory(module_engine)() as s:
        register_client(s, "plan-pal", "Plan Pal", [redirect], secret=None, actor="test")
        s.commit()
    with serve(module_engine) as base:
        yield base, seeded, redirect


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def _authorize_url(base: str, redirect: str, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": "plan-pal",
        "redirect_uri": redirect,
        "scope": "launch/patient patient/*.read offline_access",
        "state": "abc123",
        "aud": f"{base}/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{base}/auth/authorize?{urlencode(params)}"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_member_signs_in_and_allows_and_the_app_gets_her_data(world, browser):
    base, seeded, redirect = world
    verifier, challenge = _pkce()
    page = browser.new_page(locale="en-US")
    page.goto(_authorize_url(base, redirect, challenge))
    assert page.locator("h1").inner_text() == "Connect Plan Pal to your OpenHMO account"
    assert "See your health plan records" in page.locator("ul").inner_text()
    # A wrong password keeps her on the page, told so.
    page.fill("#username", "ada")
    page.fill("#password", "not her password at all")
    page.get_by_role("button", name="Sign in and allow").click()
    assert page.get_by_role("alert").inner_text().startswith("The username or password is wrong.")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    with page.expect_navigation(url=f"{redirect}*"):
        page.get_by_role("button", name="Sign in and allow").click()
    assert page.locator("p").inner_text() == "Connected."
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["abc123"]
    tokens = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect,
            "client_id": "plan-pal",
            "code_verifier": verifier,
        },
        timeout=30,
    ).json()
    assert tokens["patient"] == seeded.ada
    patient = httpx.get(
        f"{base}/fhir/Patient/{tokens['patient']}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=30,
    )
    assert patient.status_code == 200
    assert patient.json()["id"] == seeded.ada
    page.close()


def test_a_member_who_declines_sends_the_app_away_with_nothing(world, browser, app_server):
    base, _, redirect = world
    _, challenge = _pkce()
    page = browser.new_page(locale="sv-SE")
    page.goto(_authorize_url(base, redirect, challenge))
    assert page.locator("html").get_attribute("lang") == "sv"
    assert page.locator("h1").inner_text() == "Anslut Plan Pal till ditt OpenHMO-konto"
    with page.expect_navigation(url=f"{redirect}*"):
        page.get_by_role("button", name="Tillåt inte").click()
    query = parse_qs(urlsplit(page.url).query)
    assert query["error"] == ["access_denied"]
    assert "code" not in query
    # What the app's server was sent (the browser may also ask it for a favicon).
    callbacks = [a for a in app_server.arrivals if a.startswith("/callback")]
    assert callbacks[-1].startswith("/callback?error=access_denied")
    page.close()
