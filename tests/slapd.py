"""The tests' slapd fixture: a throwaway directory of the test's own (idgov.setup.directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection, Server

from idgov.setup.directory import Entry, Slapd, available, free_port, parse_ldif
from tests import databases

__all__ = ["Entry", "Slapd", "available", "can_bind", "free_port", "parse_ldif", "slapd"]


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


def can_bind(server: Slapd, dn: str, password: str) -> bool:
    """Whether ``dn`` binds to the server with ``password`` (as the person would log in)."""
    conn = Connection(Server(server.url), user=dn, password=password)
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()
