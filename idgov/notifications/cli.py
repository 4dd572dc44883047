"""``idgov notifications send``: mail every due notification now (run it from cron/a timer)."""

from __future__ import annotations

from typing import Annotated

import typer

from idgov.cli_runtime import cli_runtime
from idgov.config import get_settings
from idgov.notifications.tasks import DeliveryResult, deliver_pending

app = typer.Typer(no_args_is_help=True, help="Mail the notifications waiting in the outbox.")

BATCH = 100


@app.callback()
def _group() -> None:
    """Mail the notifications waiting in the outbox."""


@app.command("send")
def send(
    batch_size: Annotated[int, typer.Option(min=1, max=500,
                                            help="Messages per SMTP connection")] = BATCH,
) -> None:
    """Mail every due notification, batch after batch, and print what happened.

    Messages that fail are retried by a later run (2, 4, 8... minutes later) until
    IDGOV_NOTIFICATION_MAX_ATTEMPTS; without IDGOV_SMTP_HOST nothing is sent.
    """
    settings = get_settings()
    if not settings.smtp_host:
        typer.echo("SMTP is not configured (IDGOV_SMTP_HOST): nothing sent; notifications "
                   "stay in the in-app list and wait", err=True)
        typer.echo("sent 0, retried 0, failed 0")
        return
    total = DeliveryResult()
    with cli_runtime(1, settings=settings) as runtime:
        while True:
            result = deliver_pending(runtime.session_factory, settings=settings,
                                     clock=runtime.clock, limit=batch_size)
            total += result
            # A batch that was not full took every due row; rows put back are due later.
            if result.handled < batch_size:
                break
    typer.echo(f"sent {total.sent}, retried {total.retried}, failed {total.failed}")
