"""``idgov requests``: the scheduled sweep (escalations, expiry warnings, expiries)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import typer
from sqlalchemy.orm import Session, sessionmaker

from idgov.approvals.tasks import escalate_overdue
from idgov.cli_runtime import cli_runtime
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.fulfilment.tasks import escalate_overdue_tasks
from idgov.requests.tasks import expire_grants, warn_expiring
from idgov.types import Actor

app = typer.Typer(no_args_is_help=True, help="Access request housekeeping.")


@app.callback()
def main() -> None:
    """Access request housekeeping (a group, so that ``idgov requests sweep`` reads well)."""


@dataclass(frozen=True)
class SweepResult:
    escalated: int
    warned: int
    expired: int
    tasks_escalated: int = 0


def sweep(factory: sessionmaker[Session], *, settings: Settings, clock: Clock,
          actor: Actor | None = None) -> SweepResult:
    """Escalate overdue approval steps, warn of grants about to end, end expired grants.

    Each part runs in its own transaction, so one failing does not undo the others' work.
    """
    actor = actor or Actor.system("requests-sweep")
    with unit_of_work(factory) as session:
        escalated = escalate_overdue(session, clock=clock, actor=actor,
                                     extension_hours=settings.escalation_extension_hours)
    with unit_of_work(factory) as session:
        warned = warn_expiring(session, clock=clock, actor=actor,
                               warning_days=settings.expiry_warning_days)
    with unit_of_work(factory) as session:
        expired = expire_grants(session, clock=clock, actor=actor)
    with unit_of_work(factory) as session:
        tasks = escalate_overdue_tasks(session, clock=clock, actor=actor)
    return SweepResult(escalated=escalated, warned=warned, expired=expired,
                       tasks_escalated=tasks)


@app.command("sweep")
def sweep_command() -> None:
    """Run the sweep once (schedule it, e.g. every 15 minutes) and print what it did as JSON."""
    with cli_runtime(1) as runtime:
        result = sweep(runtime.session_factory, settings=runtime.settings, clock=runtime.clock)
    typer.echo(json.dumps(asdict(result)))
