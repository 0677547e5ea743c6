"""OpenHMO: the health plan's own system of record, from plan design to claims."""

__version__ = "0.1.0"
