"""Service categories: the plan's benefit lines, and the table that puts a claim line in one."""

from openhmo.categories.vocabulary import DRUG_TIERS, ServiceCategory

__all__ = ["DRUG_TIERS", "ServiceCategory"]
