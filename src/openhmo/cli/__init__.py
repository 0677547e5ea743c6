"""The `openhmo` command line."""
