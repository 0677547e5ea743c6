"""What the FHIR routes that take a resource share: the body, the caller's language, paging.

A body is read whole (at most MAX_BODY bytes), must say it is JSON (application/fhir+json
or application/json), and is parsed with exact decimals (openhmo.interop.fhir.reading).
What cannot be read is answered as a 400 OperationOutcome naming the element.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import Depends, Query, Request

from openhmo.api.errors import ApiError
from openhmo.api.fhir.responses import MAX_COUNT
from openhmo.i18n import DEFAULT_LANGUAGE, LANGUAGES
from openhmo.interop.fhir.reading import FhirInputError, parse_json

MAX_BODY = 5_000_000  # a claim of 999 lines is well under 1 MB
_JSON_TYPES = ("application/fhir+json", "application/json")

Count = Annotated[int, Query(alias="_count", ge=0, le=MAX_COUNT)]
Offset = Annotated[int, Query(alias="_offset", ge=0, le=2**31 - 1)]


def refuse(exc: FhirInputError) -> NoReturn:
    raise ApiError(exc.status, exc.message, code=exc.code, expression=exc.expression)


async def _body(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _JSON_TYPES:
        raise ApiError(
            415, f"send the resource as application/fhir+json, not {kind or 'nothing'!r}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        return parse_json(raw)
    except FhirInputError as exc:
        refuse(exc)


Body = Annotated[Any, Depends(_body)]


def language(request: Request) -> str:
    """The caller's language from Accept-Language, among the catalogue's (English otherwise)."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def plain_text(request: Request) -> None:
    """Refuse path and query values PostgreSQL cannot compare (NUL, unpaired surrogates)."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ApiError(
                400, f"{name} may not hold NUL or unpaired surrogates", expression=[name]
            )


PlainText = [Depends(plain_text)]
