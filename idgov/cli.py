"""The ``idgov`` command: the CLI composition root (with main.py, the only wiring place)."""

from __future__ import annotations

import typer

from idgov.audit.cli import app as audit_app
from idgov.auth.cli import app as tokens_app
from idgov.setup.cli import register as register_setup

app = typer.Typer(help="idgov: identity governance.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
register_setup(app)  # init, demo, serve
app.add_typer(audit_app, name="audit", help="Verify and export the signed audit trail.")
app.add_typer(tokens_app, name="tokens", help="Create, list and revoke API tokens.")


def main() -> None:
    """Entry point of the ``idgov`` console script."""
    app()
