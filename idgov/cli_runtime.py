"""The runtime of one CLI command, with the failures every command shows the same way.

Beside :mod:`idgov.runtime` (which the web app uses too) so that the web app does not
import typer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from idgov.config import Settings, get_settings
from idgov.errors import DomainError
from idgov.runtime import Runtime, open_runtime


@contextmanager
def cli_runtime(exit_code: int, *, settings: Settings | None = None) -> Iterator[Runtime]:
    """Open the configured runtime for a command and close it afterwards.

    Without the audit signing key the command ends at once; a domain error raised inside
    ends it with ``error: <detail>`` and one line per field error on standard error. Both
    exit with ``exit_code`` (the command's "could not run" code).
    """
    settings = settings or get_settings()
    if not settings.signing_key_path.exists():
        typer.echo(f"error: no audit signing key at {settings.signing_key_path}: run "
                   "`idgov init`", err=True)
        raise typer.Exit(exit_code)
    runtime = open_runtime(settings)
    try:
        yield runtime
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for error in getattr(exc, "errors", ()) or ():
            typer.echo(f"  {error.field}: {error.message}", err=True)
        raise typer.Exit(exit_code) from exc
    finally:
        runtime.close()
