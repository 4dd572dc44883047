"""``idgov hr``: import an HR file, decide held runs, apply due lifecycle events.

- ``idgov hr import FILE --source NAME [--mode snapshot|delta]`` reads a CSV file with the
  source's column mapping and runs it in one transaction, with a progress bar on a
  terminal; prints the run as JSON (id, state, counts, the first rejected rows).
- ``idgov hr confirm RUN_ID`` / ``idgov hr reject RUN_ID`` decide a held run.
- ``idgov hr process-due`` applies lifecycle events that are due (the workers do it every
  ``IDGOV_LIFECYCLE_INTERVAL_MINUTES``; this is for a cron or by hand).

Exit codes: 0 applied (rows may have been rejected: see ``errors``), 1 the run is held or
rejected, 2 it could not start (unknown source, a header that does not fit the mapping,
another run of the source waits for a decision).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from idgov.cli_runtime import cli_runtime
from idgov.db.session import unit_of_work
from idgov.lifecycle import feed, service, sources
from idgov.lifecycle.tasks import run_due_events
from idgov.models.hr import FeedRun
from idgov.types import Actor

EXIT_HELD = 1
EXIT_UNUSABLE = 2
_SHOWN_ERRORS = 20

app = typer.Typer(no_args_is_help=True, help="HR feeds: import files, decide held runs.")
ACTOR = Actor.system("hr-cli")


def _summary(run: FeedRun) -> dict[str, Any]:
    return {"run_id": str(run.id), "state": run.state, "mode": run.mode,
            "counts": run.counts, "hold_reason": run.hold_reason,
            "rejected_rows": len(run.errors), "errors": run.errors[:_SHOWN_ERRORS]}


def _finish(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(result, sort_keys=True, ensure_ascii=False))
    if result["state"] in ("held", "rejected"):
        raise typer.Exit(EXIT_HELD)


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="The CSV file")],
    source: Annotated[str, typer.Option(help="The HR source's name (its column mapping "
                                             "and thresholds apply)")],
    mode: Annotated[str | None, typer.Option(help="snapshot (who is missing has left) or "
                                                  "delta; default: the source's")] = None,
) -> None:
    """Read an HR CSV file and apply it: joiners, movers, leavers, rehires."""
    with cli_runtime(EXIT_UNUSABLE) as runtime, Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty(),
            console=None) as bar:
        task = bar.add_task("applying", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with unit_of_work(runtime.session_factory) as session, file.open("rb") as stream:
            hr_source = sources.get_source_by_name(session, source)
            run = service.import_csv(session, source_id=hr_source.id, stream=stream,
                                     mode=mode, channel="file", file_name=file.name,
                                     actor=ACTOR, clock=runtime.clock, progress=progress)
            result = _summary(run)
    _finish(result)


def confirm(run_id: Annotated[uuid.UUID, typer.Argument(help="The held run")],
            note: Annotated[str | None, typer.Option(help="Why")] = None) -> None:
    """Apply a held run's changes."""
    with cli_runtime(EXIT_UNUSABLE) as runtime, unit_of_work(runtime.session_factory) as session:
        result = _summary(feed.confirm_run(session, run_id=run_id, note=note, actor=ACTOR,
                                           clock=runtime.clock))
    _finish(result)


def reject(run_id: Annotated[uuid.UUID, typer.Argument(help="The held run")],
           note: Annotated[str | None, typer.Option(help="Why")] = None) -> None:
    """Refuse a held run: nothing of it applies."""
    with cli_runtime(EXIT_UNUSABLE) as runtime, unit_of_work(runtime.session_factory) as session:
        result = _summary(feed.reject_run(session, run_id=run_id, note=note, actor=ACTOR,
                                          clock=runtime.clock))
    typer.echo(json.dumps(result, sort_keys=True, ensure_ascii=False))


def process_due() -> None:
    """Apply the lifecycle events that are due (activations, terminations, deletions)."""
    with cli_runtime(EXIT_UNUSABLE) as runtime:
        done = run_due_events(runtime.session_factory, clock=runtime.clock, actor=ACTOR)
    typer.echo(json.dumps({"applied": done}))


app.command("import")(import_file)
app.command("confirm")(confirm)
app.command("reject")(reject)
app.command("process-due")(process_due)
