"""``idgov sod scan``: the detective SoD scan from the command line.

Prints a table (or JSON Lines with ``--json``, one violation per line, the same shape as
the API's items). Exit codes: 0 no unmitigated violation, 1 some unmitigated violation,
2 the scan could not run (bad option, no database).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idgov.clock import SystemClock
from idgov.config import get_settings
from idgov.db.session import make_engine
from idgov.errors import DomainError
from idgov.sod_scan import repository, service

app = typer.Typer(no_args_is_help=True, help="Detective separation-of-duties scan.")


@app.callback()
def sod() -> None:
    """Separation of duties: find who breaks which rule, and why."""

EXIT_VIOLATIONS = 1
EXIT_UNUSABLE = 2


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=EXIT_UNUSABLE)


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(f"--as-of: not an ISO 8601 date-time: {text!r}") from exc
    if value.tzinfo is None:
        raise _fail("--as-of: give a UTC offset, e.g. 2026-01-15T09:00:00+00:00")
    return value


@app.command("scan")
def scan_command(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Instant to scan (ISO 8601 with offset); default now")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON Lines, one violation per line")] = False,
    rule: Annotated[str | None, typer.Option(
        "--rule", help="Only this rule (its id or its name)")] = None,
) -> None:
    """Every identity whose access breaks an enabled SoD rule, with the paths that give it.

    Exits 1 when some violation is not covered by an active exception, 0 otherwise.
    """
    instant = _instant(as_of)
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            rule_id = None
            if rule is not None:
                rule_id = repository.find_rule(session, rule)
                if rule_id is None:
                    raise _fail(f"--rule: no SoD rule has the id or name {rule!r}")
            report = service.run_scan(session, as_of=instant, clock=SystemClock(),
                                      rule_id=rule_id)
    except DomainError as exc:
        raise _fail(exc.detail) from exc
    except SQLAlchemyError as exc:
        raise _fail(f"cannot read the database: {type(exc).__name__}: {exc}") from exc
    finally:
        engine.dispose()
    if as_json:
        for finding in report.findings:
            typer.echo(json.dumps(finding.as_dict(), sort_keys=True))
    else:
        _print(report)
    if report.unmitigated:
        raise typer.Exit(EXIT_VIOLATIONS)


def _print(report: service.ScanReport) -> None:
    console = Console(width=200)
    table = Table(title=f"SoD violations at {report.as_of.isoformat()} "
                        f"(policy {report.policy_version})")
    for column in ("identity", "rule", "severity", "mitigated", "explanation"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        v = f.violation
        table.add_row(f"{f.identity.employee_id} {f.identity.display_name}", v.rule.name,
                      v.rule.severity, "yes" if v.mitigated else "no", v.explanation())
    console.print(table)
    typer.echo(f"{len(report.findings)} violation(s), {report.unmitigated} unmitigated")
