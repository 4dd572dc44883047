"""``idgov audit``: verify the chain offline with public keys, print the public key, export a
slice of the trail and verify a slice offline (see :mod:`idgov.audit.slice_format`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from idgov.audit.service import session_signer
from idgov.audit.signing import Verifier, key_id_of, load_signer, load_verifier, public_pem
from idgov.audit.slice_export import PARTIAL_SUFFIX, parse_slice_filters, write_slice
from idgov.audit.slice_verify import verify_slice
from idgov.audit.verify import VerifyResult, verify_chain
from idgov.cli_runtime import cli_runtime
from idgov.clock import SystemClock
from idgov.config import Settings, get_settings
from idgov.db.session import make_engine, unit_of_work
from idgov.errors import DomainError

app = typer.Typer(no_args_is_help=True)

# Exit codes: 0 intact, 1 the chain has problems, 2 the check could not run.
EXIT_BROKEN = 1
EXIT_UNUSABLE = 2
_SHOWN_PROBLEMS = 20


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_UNUSABLE)


def _default_verifier(settings: Settings) -> Verifier:
    """The configured public key, or the public half of the signing key when it is absent."""
    if settings.public_key_path.is_file():
        return load_verifier(settings.public_key_path)
    if settings.signing_key_path.is_file():
        signer = load_signer(settings.signing_key_path)
        return Verifier(keys={signer.key_id: signer.public_key})
    raise _fail(f"no public key: {settings.public_key_path} does not exist "
                "(give --public-key PATH)")


def _open_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise _fail(f"not a database URL: {exc}") from exc
    # Connecting to a missing SQLite file would create an empty one.
    database = parsed.database or ""
    if (parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
            and not Path(database).is_file()):
        raise _fail(f"no database at {database}")
    return make_engine(url)


def _report(result: VerifyResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("max_problems")
    data["ok"] = result.ok
    return json.loads(json.dumps(data, default=str))


@app.command("verify")
def verify_command(
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the database (default: the configured one)")] = None,
    public_key: Annotated[list[Path] | None, typer.Option(
        help="PEM public key that signed blocks; repeat it for every key after a rotation "
        "(default: var/audit-signing.pub)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """Verify the whole audit chain: links, hashes, block signatures, head, unsealed events.

    Exits 0 when the chain is intact, 1 naming the first bad event when it is not, 2 when the
    check cannot run (no key, no database).
    """
    settings = get_settings()
    try:
        verifier = load_verifier(*public_key) if public_key else _default_verifier(settings)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the public key: {exc}") from exc
    engine = _open_engine(database_url or settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            result = verify_chain(connection, verifier, now=SystemClock().now())
    except (SQLAlchemyError, OSError) as exc:
        raise _fail(f"cannot read the audit trail: {type(exc).__name__}: {exc}") from exc
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(_report(result), indent=2, sort_keys=True))
    else:
        _print(result)
    if not result.ok:
        raise typer.Exit(EXIT_BROKEN)


def _print(result: VerifyResult) -> None:
    typer.echo(result.summary())
    if result.ok:
        return
    if result.first_bad is not None:
        typer.echo(f"first bad event: {result.first_bad.describe()}")
    for problem in result.problems[:_SHOWN_PROBLEMS]:
        typer.echo(f"  {problem.describe()}")
    hidden = result.problem_count - min(len(result.problems), _SHOWN_PROBLEMS)
    if hidden > 0:
        typer.echo(f"  ... and {hidden} more (use --json for the first {len(result.problems)})")


@app.command("export-key")
def export_key() -> None:
    """Print the public key (PEM) that verifies the chain, with its key id on stderr."""
    settings = get_settings()
    key: Ed25519PublicKey
    try:
        if settings.public_key_path.is_file():
            key = next(iter(load_verifier(settings.public_key_path).keys.values()))
        elif settings.signing_key_path.is_file():
            key = load_signer(settings.signing_key_path).public_key
        else:
            raise _fail(f"no key: neither {settings.public_key_path} nor "
                        f"{settings.signing_key_path} exists (run idgov init)")
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the key: {exc}") from exc
    typer.echo(public_pem(key), nl=False)
    typer.echo(f"key id {key_id_of(key)}", err=True)


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option(help="The slice file to write (JSON Lines)")],
    occurred_from: Annotated[str | None, typer.Option(
        "--from", help="Events that occurred at or after this instant (ISO 8601 with offset)")]
    = None,
    occurred_to: Annotated[str | None, typer.Option(
        "--to", help="Events that occurred before this instant (ISO 8601 with offset)")] = None,
    object_type: Annotated[str | None, typer.Option(help="Only events of this object type")]
    = None,
    object_id: Annotated[str | None, typer.Option(help="Only events of this object id")]
    = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this actor id")] = None,
    action: Annotated[str | None, typer.Option(help="Only events of this action")] = None,
) -> None:
    """Export a slice of the audit trail that verifies offline with `idgov audit verify-slice`.

    The matching sealed events come in seq order with what ties each to a signed block
    (proof events up to its block's signature) and a signed trailer. With only --from/--to
    the slice is contiguous. While it runs the file is named OUT.partial; it takes its name
    only when complete. Exits 0 done, 1 interrupted, 2 could not start (bad filters, no key).
    """
    try:
        filters = parse_slice_filters({
            "from": occurred_from, "to": occurred_to, "object_type": object_type,
            "object_id": object_id, "actor_id": actor, "action": action})
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for error in getattr(exc, "errors", ()) or ():
            typer.echo(f"  {error.field}: {error.message}", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from exc
    settings = get_settings()
    with cli_runtime(EXIT_UNUSABLE, settings=settings) as runtime:
        try:
            with unit_of_work(runtime.session_factory) as session:
                signer = session_signer(session) or load_signer(settings.signing_key_path)
                summary = write_slice(session, out, filters=filters, signer=signer,
                                      clock=runtime.clock)
        except (OSError, SQLAlchemyError) as exc:
            typer.echo(f"error: the export was interrupted ({exc}); "
                       f"{out.name}{PARTIAL_SUFFIX} is incomplete", err=True)
            raise typer.Exit(EXIT_BROKEN) from exc
    typer.echo(str(out))
    span = (f"seq {summary.first_seq}..{summary.last_seq}" if summary.events else "no events")
    typer.echo(f"exported {summary.selected} selected and {summary.proof} proof events "
               f"({span}, {summary.signed_blocks} signed blocks) to {out}", err=True)


@app.command("verify-slice")
def verify_slice_command(
    file: Annotated[Path, typer.Argument(help="A slice written by `idgov audit export` or "
                                         "GET /audit/export")],
    public_key: Annotated[list[Path] | None, typer.Option(
        help="PEM public key of the service; repeat it for every key after a rotation "
        "(default: var/audit-signing.pub)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every problem as JSON")]
    = False,
) -> None:
    """Verify a slice offline: every hash, link and block signature, the signed trailer, and
    that the selected events are exactly those matching the declared filters.

    Exits 0 when verified, 1 naming the first problem when not, 2 when the check cannot run
    (no key, unreadable file).
    """
    settings = get_settings()
    try:
        verifier = load_verifier(*public_key) if public_key else _default_verifier(settings)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the public key: {exc}") from exc
    try:
        with file.open("rb") as fh:
            check = verify_slice(fh, verifier)
    except OSError as exc:
        raise _fail(f"cannot read the slice: {exc}") from exc
    if as_json:
        typer.echo(json.dumps({"ok": check.ok, "summary": check.summary(), "problems": [
            asdict(p) for p in check.problems]}, indent=2, sort_keys=True))
    else:
        typer.echo(check.summary())
        for problem in check.problems[1:_SHOWN_PROBLEMS]:
            typer.echo(f"  {problem.describe()}")
    if not check.ok:
        raise typer.Exit(EXIT_BROKEN)
