"""The HTTP shell (FastAPI): FHIR R4 under /fhir, the staff API under /staff, OAuth2 tokens.

Every route is a thin shell: it learns who calls (access), opens one transaction, asks the
packages that own the rules, and answers with what interop.fhir builds.
"""
