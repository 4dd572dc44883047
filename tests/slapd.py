"""The tests' slapd fixture: a throwaway directory of the test's own (idgov.setup.directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idgov.setup.directory import Entry, Slapd, available, free_port, parse_ldif
from tests import databases

__all__ = ["Entry", "Slapd", "available", "free_port", "parse_ldif", "slapd"]


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A running slapd of this test's own, stopped afterwards."""
    if not available():
        databases.missing("slapd")
    server = Slapd(tmp_path / "slapd")
    server.start()
    try:
        yield server
    finally:
        server.stop()
