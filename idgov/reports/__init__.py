"""Auditor reports: definitions in a registry, exported as CSV, JSON Lines or XLSX with a
signed manifest (see registry.py for how a report plugs in)."""
