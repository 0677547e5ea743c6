"""GET /fhir/metadata (the CapabilityStatement) and SMART's discovery document."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openhmo.api.fhir.capabilities import REGISTRY
from openhmo.api.fhir.responses import base_url, fhir_response
from openhmo.interop.fhir.common import FHIR_VERSION

router = APIRouter()

SMART_CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


def _oauth_uris(request: Request) -> dict:
    root = str(request.base_url).rstrip("/")
    return {
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [
            {"url": "token", "valueUri": f"{root}/auth/token"},
            {"url": "authorize", "valueUri": f"{root}/auth/authorize"},
            {"url": "revoke", "valueUri": f"{root}/auth/revoke"},
        ],
    }


@router.get("/metadata", summary="CapabilityStatement")
def metadata(request: Request):
    resources = []
    for support in sorted(REGISTRY.resources.values(), key=lambda s: s.type):
        entry: dict = {"type": support.type}
        if support.interactions:  # FHIR JSON has no empty arrays (Claim: only $submit)
            entry["interaction"] = [{"code": code} for code in support.interactions]
        if support.profiles:
            entry["supportedProfile"] = list(support.profiles)
        if support.documentation:
            entry["documentation"] = support.documentation
        if support.search:
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, "documentation": p.documentation}
                for p in support.search
            ]
        if support.includes:
            entry["searchInclude"] = list(support.includes)
        if support.revincludes:
            entry["searchRevInclude"] = list(support.revincludes)
        if support.operations:
            entry["operation"] = [
                {"name": o.name, "definition": o.definition} for o in support.operations
            ]
        resources.append(entry)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "OpenHMO",
        "kind": "instance",
        "software": {"name": "OpenHMO", "version": "0.1.0"},
        "implementation": {"description": "OpenHMO payer FHIR API", "url": base_url(request)},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [_oauth_uris(request)],
                    "description": "OAuth2 bearer tokens from /auth/token with SMART-style "
                    "scopes; the provider directory is public.",
                },
                "resource": resources,
            }
        ],
    }
    return fhir_response(statement)


@router.get("/.well-known/smart-configuration", summary="SMART discovery")
def smart_configuration(request: Request):
    root = str(request.base_url).rstrip("/")
    return {
        "issuer": root,
        "authorization_endpoint": f"{root}/auth/authorize",
        "token_endpoint": f"{root}/auth/token",
        "revocation_endpoint": f"{root}/auth/revoke",
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": [
            "patient/*.rs",
            "patient/CoverageEligibilityRequest.c",
            "patient/*.read",
            "patient/CoverageEligibilityRequest.write",
            "launch/patient",
            "offline_access",
            "user/*.read",
            "user/*.*",
            "system/*.read",
        ],
        "capabilities": SMART_CAPABILITIES,
    }
