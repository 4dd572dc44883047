"""``idgov init``: make a deployment usable. Idempotent: a second run changes nothing.

Creates the var folder, migrates the database, creates the audit signing keys and the key
that encrypts connector credentials (both 0600), and a bootstrap administrator with an API
token in ``var/admin-token`` (0600). A token there that still authenticates as an
administrator is kept; otherwise a new one replaces it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from idgov.applications.crypto import ensure_secret_key
from idgov.audit.signing import ensure_keys
from idgov.auth.service import caller_from_api_token, ensure_principal, issue_token
from idgov.clock import Clock, SystemClock
from idgov.config import Settings
from idgov.db.migrate import upgrade
from idgov.db.session import make_engine, unit_of_work
from idgov.errors import Unauthenticated
from idgov.runtime import open_runtime
from idgov.types import Actor

BOOTSTRAP_PRINCIPAL = "bootstrap-admin"
INIT_ACTOR = Actor.system("init")


@dataclass(frozen=True)
class InitResult:
    """What ``init`` found or made."""

    var_dir: Path
    signing_keys_created: bool
    secret_key_created: bool
    token_path: Path
    token_created: bool


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def token_still_valid(factory: sessionmaker[Session], path: Path, *, clock: Clock) -> bool:
    """Whether the token in ``path`` authenticates now as an administrator. Writes nothing."""
    if not path.exists():
        return False
    token = path.read_text().strip()
    session = factory()
    try:
        caller = caller_from_api_token(session, token, clock=clock)
    except Unauthenticated:
        return False
    finally:
        # Resolving a token may note when it was last used: leave no trace of this check.
        session.rollback()
        session.close()
    return "administrator" in caller.roles


def ensure_admin_token(factory: sessionmaker[Session], settings: Settings, *,
                       clock: Clock) -> bool:
    """Keep a working bootstrap token, or issue a new one. True when a token was issued."""
    path = settings.admin_token_path
    if token_still_valid(factory, path, clock=clock):
        return False
    with unit_of_work(factory) as session:
        principal = ensure_principal(
            session, name=BOOTSTRAP_PRINCIPAL, roles=["administrator"], actor=INIT_ACTOR,
            clock=clock, description="Created by `idgov init`; its token is in var/admin-token",
        )
        expires = clock.now() + timedelta(days=settings.api_token_default_days)
        text, _row = issue_token(session, principal=principal, name="idgov init",
                                 roles=["administrator"], expires_at=expires, actor=INIT_ACTOR,
                                 clock=clock)
        # Written before the commit: if the write fails nothing is committed.
        write_private(path, text + "\n")
    return True


def run_init(settings: Settings, *, clock: Clock | None = None) -> InitResult:
    """Everything ``idgov init`` does; safe to run any number of times."""
    clock = clock or SystemClock()
    if not settings.var_dir.exists():
        settings.var_dir.mkdir(parents=True, mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
        keys_created = ensure_keys(settings.signing_key_path, settings.public_key_path)
        secret_created = ensure_secret_key(settings.secret_key_path)
        runtime = open_runtime(settings, engine=engine, clock=clock)
        token_created = ensure_admin_token(runtime.session_factory, settings, clock=clock)
    finally:
        engine.dispose()
    return InitResult(var_dir=settings.var_dir, signing_keys_created=keys_created,
                      secret_key_created=secret_created, token_path=settings.admin_token_path,
                      token_created=token_created)
