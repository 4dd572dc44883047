"""``idgov reports``: list the reports, export one to a file with its signed manifest, verify
an export offline.

Exit codes: ``export`` 0 done, 1 interrupted (the file keeps its ``.partial`` name, no
manifest), 2 could not start (unknown report, bad parameters, no signing key); ``verify`` 0
intact, 1 NOT verified (the file or the manifest was changed, or another key signed it), 2
could not check (no key, unreadable files).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from idgov.audit.service import session_signer
from idgov.audit.signing import Verifier, load_signer, load_verifier
from idgov.cli_runtime import cli_runtime
from idgov.config import get_settings
from idgov.db.session import unit_of_work
from idgov.reports.definitions import register_core_reports
from idgov.reports.export import plan_export, run_export
from idgov.reports.formats import FORMATS
from idgov.reports.manifest import verify
from idgov.reports.registry import all_reports

app = typer.Typer(no_args_is_help=True)

EXIT_FAILED = 1
EXIT_UNUSABLE = 2


@app.callback()
def _reports() -> None:
    """Auditor reports: exports with signed manifests, verified offline."""
    register_core_reports()


def _fail(message: str, code: int = EXIT_UNUSABLE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Names, columns, filters as JSON")]
    = False,
) -> None:
    """The reports that can be exported, with their filters."""
    reports = all_reports()
    if as_json:
        typer.echo(json.dumps([{
            "name": r.name, "title": r.title, "columns": list(r.columns),
            "parameters": r.params.model_json_schema()} for r in reports], indent=2))
        return
    for report in reports:
        filters = ", ".join(report.params.model_fields) or "no filters"
        typer.echo(f"{report.name:<20} {report.title}  [{filters}]")


class _Progress:
    """Rows written so far, on standard error: rewritten in place on a terminal, a line
    every 100,000 rows otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.shown = 0
        self.at = 0.0

    def __call__(self, rows: int) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self.at >= 0.2:
                self.at = now
                typer.echo(f"\rexporting {self.name}: {rows:,} rows", err=True, nl=False)
        elif rows // 100_000 > self.shown // 100_000:
            typer.echo(f"exporting {self.name}: {rows:,} rows", err=True)
        self.shown = rows

    def end(self) -> None:
        if self.tty and self.at:
            typer.echo("", err=True)


def _pairs(params: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--param {item!r}: write it as NAME=VALUE")
        pairs.append((key.strip(), value))
    return pairs


@app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="The report (see `idgov reports list`)")],
    format: Annotated[str, typer.Option(
        "--format", "-f", help=f"One of {', '.join(sorted(FORMATS))}")] = "csv",
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A filter NAME=VALUE; repeat it (a list filter may repeat "
        "its name)")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the file and its manifest")]
    = Path("."),
) -> None:
    """Export a report to OUT: the file, then its signed manifest FILE.manifest.json.

    While it runs the file is named FILE.partial; it takes its final name only when
    complete. An interrupted export keeps the .partial name and gets no manifest."""
    progress = _Progress(name)
    settings = get_settings()
    with cli_runtime(EXIT_UNUSABLE, settings=settings) as runtime:
        plan = plan_export(report=name, params=_pairs(param or []), format=format, folder=out,
                           clock=runtime.clock)
        try:
            with unit_of_work(runtime.session_factory) as session:
                signer = session_signer(session) or load_signer(settings.signing_key_path)
                result = run_export(session, plan=plan, signer=signer, clock=runtime.clock,
                                    progress=progress)
        except OSError as exc:
            progress.end()
            raise _fail(f"the export was interrupted ({exc}); {plan.partial_path} is "
                        "incomplete and has no manifest", EXIT_FAILED) from exc
    progress.end()
    typer.echo(f"{result.path}")
    typer.echo(f"{result.manifest_path}")
    typer.echo(f"exported {result.rows:,} rows of {name} ({result.size:,} bytes, sha256 "
               f"{result.sha256})", err=True)


def _verifier(public_key: list[Path] | None) -> Verifier:
    settings = get_settings()
    try:
        if public_key:
            return load_verifier(*public_key)
        if settings.public_key_path.is_file():
            return load_verifier(settings.public_key_path)
        if settings.signing_key_path.is_file():
            signer = load_signer(settings.signing_key_path)
            return Verifier(keys={signer.key_id: signer.public_key})
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the public key: {exc}") from exc
    raise _fail(f"no public key: {settings.public_key_path} does not exist (give "
                "--public-key PEM, e.g. from GET /reports/public-key)")


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="The export file")],
    manifest: Annotated[Path, typer.Argument(help="Its manifest (FILE.manifest.json)")],
    public_key: Annotated[list[Path] | None, typer.Option(
        help="PEM public key; repeat it for every key after a rotation (default: "
        "var/audit-signing.pub)")] = None,
) -> None:
    """Check offline that FILE is the export its signed MANIFEST describes.

    Works without the service or its database: only the public key is needed. Exits 0
    when the signature verifies and the file's SHA-256 and size match, 1 with the reasons
    when not, 2 when the check cannot run."""
    verifier = _verifier(public_key)
    if not file.is_file():
        raise _fail(f"no export file at {file}")
    if not manifest.is_file():
        raise _fail(f"no manifest at {manifest}")
    check = verify(file, manifest, verifier)
    if not check.ok:
        typer.echo("export NOT verified:", err=True)
        for problem in check.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(check.summary())
