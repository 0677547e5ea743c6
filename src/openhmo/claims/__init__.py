"""Claims as an 837 carries them, and the shell around the adjudication engine.

intake.py takes claims in (validated, idempotent); context_db.py builds the engine's
context from the database; service.py adjudicates a family's plan year in real time,
one transaction per family, and keeps the work queue of pended lines.
"""
