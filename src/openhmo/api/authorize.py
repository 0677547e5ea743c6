"""/auth/authorize and /auth/revoke: where a member connects an app, and an app lets go.

The authorize page (SMART App Launch 1.0, standalone launch) names the app and what it
asks in the member's language, and takes the member's username and password; the
member's approval sends the browser back to the app's registered redirect URI with a
single-use code (and `state`, and `iss` per RFC 9207), a refusal with
`error=access_denied`. The rules are access.apps; this module is the page.

The page can be framed by nobody (clickjacking), caches nothing, loads nothing from
elsewhere, and every value it shows is escaped.
"""

from __future__ import annotations

import html
from contextlib import suppress
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from openhmo.access import apps
from openhmo.access.accounts import address_paused, authenticate
from openhmo.access.tokens import TokenError, read
from openhmo.api.auth import client_credentials
from openhmo.api.deps import DB, WriteDB, client_address
from openhmo.api.fhir.inputs import language
from openhmo.i18n import translate

router = APIRouter(tags=["auth"])

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _policy(redirect_uri: str | None = None) -> str:
    """The page's Content-Security-Policy. Browsers apply form-action to the redirect
    that answers the form too, so the app's redirect URI (its origin, or its own
    scheme) is allowed beside this server."""
    targets = "'self'"
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        if parts.scheme in ("http", "https"):
            targets += f" {parts.scheme}://{parts.netloc}"
        elif parts.scheme:
            targets += f" {parts.scheme}:"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; form-action {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
    "label{display:block;margin-top:.8rem}input{width:100%;padding:.4rem;font-size:1rem}"
    "button{margin-top:1rem;margin-right:.5rem;padding:.5rem 1rem;font-size:1rem}"
    ".error{color:#a00}"
)


def _audience(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _lang(request: Request, params: dict[str, str]) -> str:
    # OpenID's ui_locales first (the app knows the member's language), then the browser's.
    for tag in params.get("ui_locales", "").split():
        primary = tag.split("-")[0].lower()
        if primary in ("en", "ja", "sv"):
            return primary
    return language(request)


def _scope_lines(ask: apps.AuthorizationAsk, lang: str) -> list[str]:
    lines = []
    for scope in ask.data_scopes.split():
        resource = scope.split("/", 1)[1].split(".")[0]
        if resource == "*":
            lines.append(translate("oauth.scope.read_all", lang))
        elif resource == "CoverageEligibilityRequest":
            lines.append(translate("oauth.scope.eligibility", lang))
        else:
            lines.append(translate("oauth.scope.read_one", lang, resource=resource))
    if ask.offline:
        lines.append(translate("oauth.scope.offline", lang))
    return list(dict.fromkeys(lines))


def _page(
    lang: str, title: str, body: str, status: int = 200, redirect_uri: str | None = None
) -> HTMLResponse:
    text = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    headers = {**_HEADERS, "Content-Security-Policy": _policy(redirect_uri)}
    return HTMLResponse(text, status_code=status, headers=headers)


def _consent(
    ask: apps.AuthorizationAsk,
    lang: str,
    lang_param: str,
    error: str | None = None,
    status: int = 401,
):
    app = ask.client_name
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in {**ask.as_form(), "ui_locales": lang_param}.items()
    )
    items = "".join(f"<li>{html.escape(line)}</li>" for line in _scope_lines(ask, lang))
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        f"<p>{html.escape(translate('oauth.page.asks', lang, app=app))}</p><ul>{items}</ul>"
        f"{problem}"
        f'<form method="post" action="authorize">{hidden}'
        f'<label for="username">{html.escape(translate("oauth.page.username", lang))}</label>'
        '<input id="username" name="username" autocomplete="username">'
        f'<label for="password">{html.escape(translate("oauth.page.password", lang))}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        f'<button type="submit" name="decision" value="allow">'
        f"{html.escape(translate('oauth.page.allow', lang))}</button>"
        f'<button type="submit" name="decision" value="deny" formnovalidate>'
        f"{html.escape(translate('oauth.page.deny', lang))}</button></form>"
        f"<p>{html.escape(translate('oauth.page.never_password', lang, app=app))}</p>"
    )
    title = translate("oauth.page.title", lang, app=app)
    return _page(lang, title, body, status=status if error else 200, redirect_uri=ask.redirect_uri)


def _back(request: Request, ask_or_uri, state: str | None, **values: str) -> RedirectResponse:
    """The browser back to the app's redirect URI with `values` (RFC 6749 4.1.2)."""
    uri = ask_or_uri.redirect_uri if isinstance(ask_or_uri, apps.AuthorizationAsk) else ask_or_uri
    query = {**values, **({"state": state} if state is not None else {}), "iss": _issuer(request)}
    joiner = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{joiner}{urlencode(query)}", 303, headers=_HEADERS)


def _bad_app(lang: str, reason: str) -> HTMLResponse:
    text = translate("oauth.page.bad_app", lang, reason=reason)
    return _page(lang, "OpenHMO", f'<p class="error" role="alert">{html.escape(text)}</p>', 400)


def _checked(session, request: Request, params: dict[str, str]):
    """The ask, or the answer to give instead (an error page or a redirect with the error)."""
    try:
        return apps.read_authorization(session, params, audience=_audience(request))
    except apps.UnknownClient as exc:
        return _bad_app(_lang(request, params), str(exc))
    except apps.OAuthError as exc:
        # The client and its redirect URI are good here: the app is told, not the member.
        return _back(
            request,
            exc.redirect_uri or "",
            params.get("state"),
            error=exc.error,
            error_description=str(exc),
        )


@router.get(
    "/auth/authorize",
    response_class=HTMLResponse,
    summary="SMART App Launch: the member signs in and approves an app (authorization code)",
)
def authorize_page(request: Request, session: DB) -> Response:
    params = dict(request.query_params)
    ask = _checked(session, request, params)
    if not isinstance(ask, apps.AuthorizationAsk):
        return ask
    return _consent(ask, _lang(request, params), params.get("ui_locales", ""))


@router.post("/auth/authorize", response_class=HTMLResponse, include_in_schema=False)
def authorize_decision(
    request: Request,
    session: WriteDB,
    decision: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    response_type: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
    redirect_uri: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    state: Annotated[str | None, Form()] = None,
    code_challenge: Annotated[str | None, Form()] = None,
    code_challenge_method: Annotated[str | None, Form()] = None,
    ui_locales: Annotated[str, Form()] = "",
) -> Response:
    params = {
        "response_type": response_type,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "aud": _audience(request),
        "ui_locales": ui_locales,
    }
    for name, value in (
        ("state", state),
        ("code_challenge", code_challenge),
        ("code_challenge_method", code_challenge_method),
    ):
        if value is not None:
            params[name] = value
    ask = _checked(session, request, params)
    if not isinstance(ask, apps.AuthorizationAsk):
        return ask
    lang = _lang(request, params)
    if decision != "allow":
        return _back(request, ask, ask.state, error="access_denied")
    address = client_address(request)
    if address_paused(session, address) is not None:
        return _consent(ask, lang, ui_locales, translate("oauth.page.address_paused", lang), 429)
    account = (
        authenticate(session, username, password, address=address)
        if username and password
        else None
    )
    if account is None:
        return _consent(ask, lang, ui_locales, translate("oauth.page.wrong_login", lang))
    if account.role != "member":
        return _consent(ask, lang, ui_locales, translate("oauth.page.members_only", lang))
    try:
        code = apps.approve(session, ask, account, address=address)
    except apps.OAuthError as exc:
        return _back(request, ask, ask.state, error=exc.error, error_description=str(exc))
    return _back(request, ask, ask.state, code=code)


@router.post(
    "/auth/revoke",
    summary="RFC 7009: revoke an app's refresh or access token (and its whole grant)",
    responses={401: {"description": "bad client"}},
)
def revoke(
    request: Request,
    session: WriteDB,
    token: Annotated[str, Form()] = "",
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
):
    name, secret = client_credentials(request, client_id, client_secret)
    grant_id = None
    with suppress(TokenError):  # not one of our access tokens: a refresh token, or unknown
        grant_id = read(request.app.state.signing_key, token).grant_id
    try:
        apps.revoke(session, token=token, client_id=name, client_secret=secret, grant_id=grant_id)
    except apps.OAuthError as exc:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            exc.status,
            headers={"Cache-Control": "no-store"},
        )
    return Response(status_code=200, headers={"Cache-Control": "no-store"})
