"""Connectors to the target systems where access lives. Imports nothing of idgov."""
