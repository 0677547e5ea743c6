"""Batch adjudication: snapshots, streaming runs over family partitions, synthetic claims."""
