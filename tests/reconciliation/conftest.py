"""Fixtures of the reconciliation tests (defined in tests/reconciliation/helpers.py)."""

from tests.reconciliation.helpers import api, lab, target

__all__ = ["api", "lab", "target"]
