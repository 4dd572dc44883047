"""Helpers for the audit tests: write a chain through the real sealer, tamper with it by SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import record
from idgov.audit.signing import Signer, Verifier
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.types import Actor

ACTOR = Actor.system("audit-tests")


def write_chain(factory: sessionmaker[Session], clock: FixedClock, *, transactions: int,
                events_per_transaction: int, tag: str = "t") -> None:
    """Commit ``transactions`` units of work, each recording some events (one signed block)."""
    for t in range(transactions):
        with unit_of_work(factory) as session:
            for e in range(events_per_transaction):
                record(session, actor=ACTOR, action="thing.update", object_type="thing",
                       object_id=f"{tag}{t}-{e}", clock=clock,
                       before={"n": e}, after={"n": e + 1, "note": "café"},
                       context={"tx": t})


def verifier_of(*signers: Signer) -> Verifier:
    return Verifier(keys={s.key_id: s.public_key for s in signers})


def chain_rows(engine: Engine) -> list[Any]:
    """(seq, id, hash) of every sealed event, in seq order, as the database holds them."""
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT seq, id, hash, prev_hash FROM audit_events WHERE seq IS NOT NULL "
            "ORDER BY seq")))


def json_param(conn: Connection, name: str) -> str:
    """A bind parameter for a JSON column in raw SQL (PostgreSQL wants the cast)."""
    return f"CAST(:{name} AS JSON)" if conn.dialect.name == "postgresql" else f":{name}"


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)
