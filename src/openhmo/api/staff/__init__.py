"""The staff API: plans, premiums, the pended-claim queue and referral review (OpenAPI)."""
