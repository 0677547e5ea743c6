"""Claims adjudication: one pure engine that gives the reason for every cent.

docs/adjudication.md is the contract; context.py and decisions.py are its tables.
"""
