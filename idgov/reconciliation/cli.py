"""``idgov aggregate APPLICATION`` and ``idgov reconcile APPLICATION [--remediate]``.

APPLICATION is an application's name or id. Each command runs once in one transaction (a
scheduled job calls ``idgov reconcile``) and prints the run as JSON: its id, state and
counts. Exit codes: 0 the run succeeded (reconcile: whatever drift it found), 1 the run
failed on the target (it is stored with the classified error), 2 it could not start (no such
application, a connector that cannot list, no signing key, bad correlation rules).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from idgov.cli_runtime import cli_runtime
from idgov.db.session import unit_of_work
from idgov.reconciliation import service
from idgov.types import Actor

EXIT_FAILED = 1
EXIT_UNUSABLE = 2

app = typer.Typer(no_args_is_help=True, help="Aggregation and reconciliation of targets.")

ApplicationArg = Annotated[str, typer.Argument(help="The application's name or id")]


def _run(application: str, *, kind: str, remediate: bool) -> None:
    actor = Actor.system("reconciliation-cli")
    with cli_runtime(EXIT_UNUSABLE) as runtime, unit_of_work(runtime.session_factory) as session:
        application_id = service.find_application(session, key=application)
        run = service.run_for_application(
            session, application_id=application_id, kind=kind, remediate=remediate,
            settings=runtime.settings, actor=actor, clock=runtime.clock)
        result: dict[str, Any] = {"run_id": str(run.id), "application_id":
                                  str(run.application_id), "kind": run.kind,
                                  "state": run.state, "error": run.error,
                                  "counts": run.counts}
    typer.echo(json.dumps(result, sort_keys=True))
    if result["state"] == "failed":
        raise typer.Exit(EXIT_FAILED)


def aggregate(application: ApplicationArg) -> None:
    """Import APPLICATION's accounts and memberships: correlate accounts to identities,
    report orphans, record memberships nobody assigned as aggregation assignments."""
    _run(application, kind="aggregation", remediate=False)


def reconcile(
    application: ApplicationArg,
    remediate: Annotated[bool, typer.Option(
        "--remediate", help="Queue the provisioning operations that fix the drift")] = False,
) -> None:
    """Compare APPLICATION's target with the desired state and store the drift report."""
    _run(application, kind="reconciliation", remediate=remediate)


app.command("aggregate")(aggregate)
app.command("reconcile")(reconcile)


def register(root: typer.Typer) -> None:
    """Add ``aggregate`` and ``reconcile`` as top-level commands of ``root``."""
    root.command("aggregate")(aggregate)
    root.command("reconcile")(reconcile)
