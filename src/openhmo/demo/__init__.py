"""The synthetic demo HMO."""
