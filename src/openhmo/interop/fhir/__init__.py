"""FHIR R4 (4.0.1): our records as FHIR resources and FHIR resources as our inputs.

Pure functions over our models and plain values (no I/O, no HTTP): the API shell
(openhmo.api.fhir) fetches, calls these, and sends. Resources are plain dicts in FHIR's
JSON form; the tests validate them with fhir.resources and with an independent schema.
"""
