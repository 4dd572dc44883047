"""``idgov tokens``: create, list and revoke API tokens from the command line.

``create`` prints the token text alone on standard output (so that
``TOKEN=$(idgov tokens create ...)`` works) and what it did on standard error.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from idgov.auth import repository, service
from idgov.auth.schemas import MAX_TOKEN_DAYS, TokenCreate
from idgov.clock import Clock
from idgov.config import Settings, get_settings
from idgov.db.session import unit_of_work
from idgov.errors import DomainError, FieldError, InvalidInput
from idgov.models.auth import SERVICE_ROLES, ApiToken
from idgov.runtime import open_runtime
from idgov.types import Actor

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API tokens.")


def _actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = "unknown"
    return Actor.system(f"cli:{user}")


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


@contextmanager
def _unit_of_work() -> Iterator[tuple[Session, Clock, Settings]]:
    """A transaction on the configured database; domain errors end the command with 1."""
    settings = get_settings()
    if not settings.signing_key_path.exists():
        raise _fail(f"no audit signing key at {settings.signing_key_path}: run `idgov init`")
    runtime = open_runtime(settings)
    try:
        with unit_of_work(runtime.session_factory) as session:
            yield session, runtime.clock, settings
    except DomainError as exc:
        details = "".join(f"\n  {e.field}: {e.message}"
                          for e in getattr(exc, "errors", []) if isinstance(e, FieldError))
        raise _fail(exc.detail + details) from exc
    finally:
        runtime.close()


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the token is for")],
    role: Annotated[list[str], typer.Option("--role", help=f"One of {', '.join(SERVICE_ROLES)}; "
                                            "repeat for several")],
    principal: Annotated[str | None, typer.Option(
        "--principal", help="Service principal (default: the token name); created if missing")
    ] = None,
    expires_in_days: Annotated[int | None, typer.Option(
        "--expires-in-days", min=1, max=MAX_TOKEN_DAYS,
        help="Lifetime (default: IDGOV_API_TOKEN_DEFAULT_DAYS)")] = None,
) -> None:
    """Create an API token and print it once."""
    actor = _actor()
    with _unit_of_work() as (session, clock, settings):
        unknown = [r for r in role if r not in SERVICE_ROLES]
        if unknown:
            raise InvalidInput("unknown service role",
                               errors=[FieldError("--role", repr(r)) for r in unknown])
        owner = service.ensure_principal(session, name=principal or name, roles=role,
                                         actor=actor, clock=clock)
        token_in = TokenCreate.model_validate({"principal_id": owner.id, "name": name,
                                               "roles": role,
                                               "expires_in_days": expires_in_days})
        text, row = service.create_token(session, token_in=token_in,
                                         default_days=settings.api_token_default_days,
                                         actor=actor, clock=clock)
    Console(stderr=True).print(
        f"created token {row.prefix} for {owner.name} with roles {', '.join(row.roles)}, "
        f"expires {_when(row.expires_at)} UTC; it is shown once, store it now:", highlight=False)
    typer.echo(text)


@app.command("list")
def list_tokens() -> None:
    """List every API token (never its secret)."""
    with _unit_of_work() as (session, clock, _settings):
        rows = repository.all_tokens(session)
        now = clock.now()
    table = Table(title="API tokens")
    for column in ("prefix", "name", "principal", "roles", "state", "expires (UTC)",
                   "last used (UTC)"):
        table.add_column(column, no_wrap=column in {"prefix", "state"})
    for row, principal_name in rows:
        table.add_row(row.prefix, row.name, principal_name, ", ".join(row.roles),
                      _state(row, now), _when(row.expires_at), _when(row.last_used_at))
    Console().print(table)


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(metavar="PREFIX_OR_ID",
                                         help="The token's id or prefix")],
) -> None:
    """Revoke an API token for good."""
    with _unit_of_work() as (session, clock, _settings):
        row = service.find_token(session, ref=token)
        service.revoke_token(session, token_id=row.id, actor=_actor(), clock=clock)
        prefix, name = row.prefix, row.name
    Console(stderr=True).print(f"revoked token {prefix} ({name})", highlight=False)
