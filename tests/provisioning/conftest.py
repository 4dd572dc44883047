"""Fixtures of the provisioning tests (defined in tests/provisioning/world.py)."""

from tests.provisioning.world import auditor_headers_fixture, world_fixture

__all__ = ["auditor_headers_fixture", "world_fixture"]
