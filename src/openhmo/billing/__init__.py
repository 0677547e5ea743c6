"""Premium billing: invoices, payments, balances, grace periods and termination for non-payment."""
