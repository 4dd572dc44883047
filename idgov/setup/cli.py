"""``idgov init``, ``idgov demo`` and ``idgov serve``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from idgov.applications.crypto import CredentialCipher
from idgov.config import Settings, get_settings
from idgov.db.session import unit_of_work
from idgov.runtime import open_runtime
from idgov.setup.demo import load_demo
from idgov.setup.directory import demo_directory
from idgov.setup.init import run_init

console = Console(highlight=False, soft_wrap=True)


def _base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def init() -> None:
    """Create the var folder, migrate the database, create the keys and an admin API token."""
    settings = get_settings()
    result = run_init(settings)
    base = _base_url(settings)
    database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    token_state = "new" if result.token_created else "kept, still valid"
    console.print("[bold]idgov is initialised.[/bold]")
    console.print(f"  database          {database} (migrated to the latest version)")
    console.print(f"  audit signing key {settings.signing_key_path} (private, 0600)"
                  + (" (new)" if result.signing_keys_created else ""))
    console.print(f"  audit public key  {settings.public_key_path} (give it to auditors)")
    console.print(f"  credentials key   {settings.secret_key_path} (0600)"
                  + (" (new)" if result.secret_key_created else ""))
    console.print(f"  admin API token   {result.token_path} (0600, {token_state})")
    console.print("")
    console.print("Start the service with [bold]idgov serve[/bold], then:")
    console.print(f"  API documentation  {base}/docs")
    console.print(f"  OpenAPI document   {base}/openapi.json")
    console.print(f"  health             {base}/healthz")
    console.print("")
    console.print("Call the API with the admin token, for example:")
    console.print(f'  curl -H "Authorization: Bearer $(cat {result.token_path})" '
                  f"{base}/identities?limit=5")
    console.print("Load a demo organisation with [bold]idgov demo[/bold].")


def demo() -> None:
    """Load the demo organisation (people, systems, roles, SoD rules, access). Idempotent."""
    settings = get_settings()
    if not settings.signing_key_path.exists():
        console.print(f"[red]No audit signing key at {settings.signing_key_path}: "
                      "run `idgov init` first.[/red]")
        raise typer.Exit(code=1)
    runtime = open_runtime(settings)
    try:
        with unit_of_work(runtime.session_factory) as session:
            created = load_demo(session, clock=runtime.clock,
                                cipher=CredentialCipher.from_file(settings.secret_key_path))
    finally:
        runtime.close()
    if not created:
        console.print("The demo organisation is already loaded; nothing changed.")
        return
    table = Table(title="Demo organisation loaded")
    table.add_column("object")
    table.add_column("created", justify="right")
    for kind, count in sorted(created.items()):
        table.add_row(kind.replace("_", " "), str(count))
    console.print(table)
    console.print(f"Browse it at {_base_url(settings)}/docs after `idgov serve`.")


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on "
                                                  "(default: IDGOV_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: IDGOV_PORT or 8000)")] = None,
    worker: Annotated[bool, typer.Option(
        help="Run a provisioning worker thread in this process (the embedded mode); "
             "turn it off when `idgov worker` processes do the work")] = True,
) -> None:
    """Serve the API and the web pages with uvicorn."""
    os.environ["IDGOV_EMBEDDED_WORKER"] = "1" if worker else "0"
    settings = get_settings()
    with demo_directory(settings) as directory:
        if directory is not None:
            console.print(f"Demo directory (slapd) at {directory.url}, data in "
                          f"{directory.folder}")
        uvicorn.run("idgov.main:create_app", factory=True, host=host or settings.host,
                    port=port or settings.port)


def register(app: typer.Typer) -> None:
    """Add init, demo and serve to app."""
    app.command("init")(init)
    app.command("demo")(demo)
    app.command("serve")(serve)
