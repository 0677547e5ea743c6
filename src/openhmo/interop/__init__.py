"""Interoperability: what other systems speak: Synthea, X12 5010 (x12/), and FHIR next."""
