"""The ``idgov`` command: the CLI composition root (with main.py, the only wiring place)."""

from __future__ import annotations

import typer

from certification.plugin import register as register_certification
from idgov.approvals.roles import install as install_approver_role
from idgov.audit.cli import app as audit_app
from idgov.auth.cli import app as tokens_app
from idgov.lifecycle.cli import app as hr_app
from idgov.notifications.cli import app as notifications_app
from idgov.provisioning.cli import register as register_worker
from idgov.reconciliation.cli import register as register_reconciliation
from idgov.reports.cli import app as reports_app
from idgov.reports.definitions import register_core_reports
from idgov.reports.tasks import register_jobs as register_report_jobs
from idgov.requests.cli import app as requests_app
from idgov.setup.cli import register as register_setup
from idgov.siem.tasks import register_jobs as register_siem_jobs
from idgov.sod_scan.cli import app as sod_app

app = typer.Typer(help="idgov: identity governance.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
install_approver_role()  # derive "approver" from waiting approval steps
register_certification()  # certification's jobs (reminders, deadlines...) and reports
register_core_reports()  # idgov reports export, and the workers' scheduled exports
register_report_jobs()  # workers drop scheduled exports into folders
register_siem_jobs()  # workers feed the audit trail to the syslog sinks
register_setup(app)  # init, demo, serve
register_reconciliation(app)  # aggregate APPLICATION, reconcile APPLICATION [--remediate]
register_worker(app)  # worker: claim and run provisioning operations
app.add_typer(audit_app, name="audit", help="Verify and export the signed audit trail.")
app.add_typer(reports_app, name="reports", help="Export auditor reports; verify exports.")
app.add_typer(tokens_app, name="tokens", help="Create, list and revoke API tokens.")
app.add_typer(requests_app, name="requests",
              help="Periodic request work: escalations, expiry warnings, expiries.")
app.add_typer(sod_app, name="sod", help="Detective separation-of-duties scan.")
app.add_typer(notifications_app, name="notifications",
              help="Mail the notifications waiting in the outbox.")
app.add_typer(hr_app, name="hr", help="HR feeds: import files, decide held runs, apply due "
              "lifecycle events.")


def main() -> None:
    """Entry point of the ``idgov`` console script."""
    app()
