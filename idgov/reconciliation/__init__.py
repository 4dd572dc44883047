"""Aggregation and reconciliation: read a target, correlate it, compare it with the
desired state."""
