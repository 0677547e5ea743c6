"""FHIR R4 routes: each module serves one area and builds its resources with interop.fhir."""
