"""Enrollment: subscribers and dependents, coverage, service area, PCP choice, history."""
