"""All FHIR routes under one router (mounted at /fhir), one module per area."""

from fastapi import APIRouter

from openhmo.api.fhir import metadata

router = APIRouter(tags=["fhir"])
router.include_router(metadata.router)
