"""The signed audit trail."""
