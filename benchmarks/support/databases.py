"""A database for one benchmark run: a throwaway SQLite file by default, or, for a PostgreSQL
URL, a scratch database created beside it and dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from idgov.db.session import make_engine


@contextmanager
def scratch_database(url: str | None, folder: Path | None = None) -> Iterator[Engine]:
    """An engine on a database of the run's own (SQLite in ``folder`` or a temporary one)."""
    if url is None or (make_url(url).get_backend_name() == "sqlite"
                       and url.endswith(":memory:")):
        with tempfile.TemporaryDirectory(prefix="idgov-bench-") as temporary:
            engine = make_engine(f"sqlite:///{Path(folder or temporary) / 'bench.db'}")
            try:
                yield engine
            finally:
                engine.dispose()
        return
    if make_url(url).get_backend_name() != "postgresql":
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"idgov_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(url).set(database=name).render_as_string(
        hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
