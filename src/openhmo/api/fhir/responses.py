"""FHIR answers: resources as application/fhir+json, exact decimals, the right status."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from openhmo.interop.fhir.common import FHIR_JSON, fhir_json

DEFAULT_COUNT = 20
MAX_COUNT = 200


def fhir_response(resource: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(fhir_json(resource), status, headers=headers or None, media_type=FHIR_JSON)


def base_url(request: Request) -> str:
    """This server's FHIR base, as the caller reached it (for fullUrl and paging links)."""
    return str(request.base_url).rstrip("/") + "/fhir"


def query_params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def page(session: Session, stmt: Select, order, count: int, offset: int) -> tuple[int, list]:
    """One page of a search's rows (in `order`) and how many rows match in all."""
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(*order).limit(count).offset(offset)).all()
    return total, list(rows)
