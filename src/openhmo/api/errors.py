"""Errors as callers expect them: FHIR OperationOutcome under /fhir, problem JSON elsewhere."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg.errors import QueryCanceled
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from openhmo.interop.fhir.common import FHIR_JSON, fhir_json, operation_outcome

log = logging.getLogger("openhmo.api")


class ApiError(Exception):
    """An answer that is not a success: HTTP status, what went wrong, and where."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.expression = expression
        self.headers = headers


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith("/fhir")


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    code: str | None = None,
    expression: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if _is_fhir(request):
        body = operation_outcome(status, message, code=code, expression=expression)
        return Response(fhir_json(body), status, headers=headers, media_type=FHIR_JSON)
    problem = {"status": status, "title": message}
    if expression:
        problem["where"] = expression
    return JSONResponse(problem, status, headers=headers, media_type="application/problem+json")


def _where(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(
            request,
            exc.status,
            exc.message,
            code=exc.code,
            expression=exc.expression,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = exc.errors()
        message = "; ".join(f"{_where(p['loc'])}: {p['msg']}" for p in problems[:10])
        where = [_where(p["loc"]) for p in problems[:10]]
        return error_response(request, 400, message or "invalid request", expression=where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(
            request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> Response:
        # SQLite has one writer at a time; a call that waited its busy timeout for the
        # lock is told to come back, not that the server broke (nothing was written).
        if "database is locked" in str(exc.orig):
            return error_response(
                request,
                503,
                "the database is busy with other writers; try again",
                code="transient",
                headers={"Retry-After": "1"},
            )
        if isinstance(exc.orig, QueryCanceled):  # PostgreSQL's statement_timeout
            log.warning("statement timeout on %s %s", request.method, request.url.path)
            return error_response(
                request,
                503,
                "the database took too long to answer; try again, or narrow the search",
                code="timeout",
                headers={"Retry-After": "5"},
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The details stay in the server's log: they may hold data the caller may not see.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; the server's log has the details")
