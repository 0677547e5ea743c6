"""Referrals (a PCP sends a member to a specialist) and prior authorizations."""
