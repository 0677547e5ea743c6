"""Remittance: the payment runs that pay adjudicated claims and tell payees with an 835."""
