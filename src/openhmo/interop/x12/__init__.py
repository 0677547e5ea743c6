"""X12 5010, the interchange format of US health plans: reading (837, 834, 270, 278) and
writing (999, TA1, 277CA, 271, 278, 835), as docs/x12.md describes."""
