"""Interoperability: what other systems speak (Synthea now; X12 and FHIR next)."""
