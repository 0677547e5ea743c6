"""All FHIR routes under one router (mounted at /fhir), one module per area."""

from fastapi import APIRouter

from openhmo.api.fhir import (
    audit,
    claims,
    directory,
    eligibility,
    metadata,
    patient_access,
    referrals,
)

router = APIRouter(tags=["fhir"])
for area in (metadata, directory, patient_access, referrals, claims, eligibility, audit):
    router.include_router(area.router)
