"""All staff routes under one router (mounted at /staff), one module per area.

The staff API is plain JSON described by the OpenAPI document (/openapi.json), for
what FHIR does not cover: plan designs and premiums, premium billing, the pended-claim
queue, referral and prior-authorization review, and the apps a member connected. Money
is integer cents in fields named `*_cents`, everywhere (never a float, never a
formatted string). Errors are problem JSON. Every route needs a staff account's bearer
token from /auth/token.
"""

from fastapi import APIRouter, Security
from fastapi.security import HTTPBearer

from openhmo.api.staff import apps, claims, plans, premiums, referrals

# Declares the bearer scheme in the OpenAPI document; api/deps.py checks the token.
_bearer = HTTPBearer(auto_error=False, description="a staff account's token from /auth/token")

router = APIRouter(tags=["staff"], dependencies=[Security(_bearer)])
for area in (plans, premiums, claims, referrals, apps):
    router.include_router(area.router)
