"""Aggregation and reconciliation: read a target whole, correlate it, compare it.

Both start by reading every account and every entitlement (with its members) through the
connector, page by page, before anything is written: a target that fails half-way changes
nothing but the run, which ends ``failed`` with the classified error. Then the application's
account rows are brought in line with the target (:func:`sync_accounts`): new accounts are
correlated to identities by the application's rules, accounts gone from the target are marked
``deleted``. Everything else is loaded once and compared in dictionaries, so a run costs a
fixed number of queries whatever the number of accounts.

- :func:`aggregate` (first connection, and on demand) also imports what the target holds:
  entitlements the catalog does not know yet are created (``requestable`` false, for an
  owner to review and open up), and memberships of correlated accounts that no assignment
  explains become assignments with source ``aggregation`` (to be confirmed by
  certification). Their provisioning operations are closed as succeeded at once: the
  access is already there. Uncorrelated accounts are reported as orphans.
- :func:`reconcile` reports drift against the desired state and, with ``remediate``, queues
  the operations that fix it (cause ``reconciliation``), never a second one for a fix that
  is still open (pending, running, waiting for a retry, or failed and not yet resolved).

Correlation rules: ``settings["correlation"]``, an ordered list of ``{"attribute": <target
attribute>, "identity_field": "employee_id" | "email" | "attributes.<key>"}``; the first
rule whose value names exactly one identity wins. Values are compared trimmed and
case-insensitively; multi-valued attributes match on any value. The attribute names
``username`` and ``native_id`` fall back to the account's own login name and id.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from connectors import registry
from connectors.base import (
    Connector,
    EntitlementInfo,
)
from connectors.errors import ConnectorError
from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.catalog import service as catalog
from idgov.catalog.schemas import EntitlementCreate
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.repository import Page as DbPage
from idgov.db.repository import get_or_404, paginate
from idgov.errors import Conflict, InvalidInput, NotFound
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.provisioning import (
    DriftItem,
    ProvisioningOperation,
    ReconciliationRun,
)
from idgov.provisioning import accounts as provisioning_accounts
from idgov.provisioning.connections import Target, build_connector
from idgov.provisioning.ordering import next_ordinal
from idgov.reconciliation import repository
from idgov.reconciliation.schemas import DriftFilter, RunFilter
from idgov.reconciliation.targets import (
    Memberships,
    Synced,
    check_capabilities,
    correlation_rules,
    count_kinds,
    norm_native,
    orphan_items,
    read_memberships,
    read_target,
    sync_accounts,
)
from idgov.types import Actor

ALREADY_PRESENT = "already present on the target (aggregation)"
INACTIVE_STATES = frozenset({"suspended", "terminated"})
ENTITLEMENT_KINDS = ("group", "role", "app_role")

# Remediation order within one identity (ordinals are handed out in this order): an account
# exists (and is enabled) before its memberships change; a disable comes last.
_ACTION_ORDER = {"create_account": 0, "enable_account": 1, "grant": 2, "revoke": 3,
                 "disable_account": 4}


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFailure:
    """Why a run failed, as the API answers it."""

    category: str
    transient: bool
    retry_after: float | None


def failure_of(run: ReconciliationRun) -> RunFailure | None:
    """The classified connector failure of a failed run (None for other runs)."""
    if run.state != "failed":
        return None
    counts = run.counts or {}
    retry_after = counts.get("retry_after")
    return RunFailure(category=str(counts.get("error_category", "data_error")),
                      transient=bool(counts.get("transient", False)),
                      retry_after=float(retry_after) if retry_after is not None else None)


def _start(session: Session, *, application: Application, kind: str, remediate: bool,
           actor: Actor, clock: Clock) -> ReconciliationRun:
    run = ReconciliationRun(id=uuid.uuid4(), application_id=application.id, kind=kind,
                            remediate=remediate, state="running", started_at=clock.now(),
                            counts={}, started_by=actor.label)
    session.add(run)
    session.flush()
    return run


def _finish(session: Session, run: ReconciliationRun, *, counts: dict[str, Any],
            actor: Actor, clock: Clock, error: ConnectorError | None = None) -> None:
    run.counts = counts
    run.finished_at = clock.now()
    if error is None:
        run.state = "succeeded"
    else:
        run.state = "failed"
        run.error = f"{error.category}: {error.message}"[:2000]
        run.counts = {"error_category": error.category, "transient": error.transient,
                      **({"retry_after": error.retry_after}
                         if error.retry_after is not None else {})}
    session.flush()
    action = "reconciliation.aggregate" if run.kind == "aggregation" else \
        "reconciliation.reconcile"
    record(session, actor=actor, action=action, object_type="reconciliation_run",
           object_id=run.id, clock=clock, after=snapshot(run))


# --- aggregation -----------------------------------------------------------------------------


def _import_entitlements(session: Session, *, application: Application,
                         unknown: Sequence[EntitlementInfo], known: dict[str, Entitlement],
                         actor: Actor, clock: Clock) -> int:
    """Add the target's entitlements the catalog lacks, not requestable until reviewed."""
    made = 0
    for info in unknown:
        key = norm_native(info.native_id)
        if key in known or not info.native_id.strip():
            continue
        entitlement = catalog.create_entitlement(session, entitlement_in=EntitlementCreate(
            application_id=application.id, native_id=info.native_id[:500],
            name=(info.name or info.native_id).strip()[:200] or info.native_id[:200],
            kind=info.kind if info.kind in ENTITLEMENT_KINDS else "group",
            description=f"Found on {application.name} by aggregation on "
                        f"{clock.now().date().isoformat()}; not requestable until reviewed",
            requestable=False), actor=actor, clock=clock)
        known[key] = entitlement
        made += 1
    return made


def _close_as_present(session: Session, assignment_ids: list[uuid.UUID], *, actor: Actor,
                      clock: Clock) -> int:
    """Mark the grant operations just recorded for aggregated assignments succeeded: the
    membership is already on the target, nothing must be sent."""
    now = clock.now()
    closed: list[tuple[ProvisioningOperation, dict[str, Any]]] = []
    for op in repository.pending_operations_of_assignments(session, assignment_ids):
        if op.action != "grant":
            continue
        closed.append((op, snapshot(op)))
        op.state = "succeeded"
        op.detail = {**(op.detail or {}), "note": ALREADY_PRESENT}
        op.completed_at = now
        op.updated_at = now
    session.flush()
    for op, before in closed:
        record(session, actor=actor, action="provisioning.complete",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               before=before, after=snapshot(op), context={"reason": ALREADY_PRESENT})
    return len(closed)


def aggregate(session: Session, *, application_id: uuid.UUID, connector: Connector,
              actor: Actor, clock: Clock) -> ReconciliationRun:
    """Import the target's accounts, entitlements and memberships (see the module doc).

    Raises NotFound for an unknown application, Conflict when the connector cannot list,
    InvalidInput for malformed correlation rules. A connector error ends the run
    ``failed`` (returned, not raised) with nothing else changed.
    """
    application = get_or_404(session, Application, application_id, what="application")
    rules = correlation_rules(application)
    check_capabilities(application, connector)
    run = _start(session, application=application, kind="aggregation", remediate=False,
                 actor=actor, clock=clock)
    try:
        target = read_target(connector)
    except ConnectorError as error:
        _finish(session, run, counts={}, actor=actor, clock=clock, error=error)
        return run
    synced = sync_accounts(session, application=application, target=target.accounts,
                            rules=rules, run=run, actor=actor, clock=clock)
    known = {norm_native(e.native_id): e for e in repository.entitlements_of(session,
                                                                              application.id)}
    first = read_memberships(target.entitlements, known, synced)
    created_entitlements = _import_entitlements(
        session, application=application, unknown=first.unknown_entitlements, known=known,
        actor=actor, clock=clock)
    memberships = (read_memberships(target.entitlements, known, synced)
                   if created_entitlements else first)
    now = clock.now()
    held = repository.holdings(session, application_id=application.id, at=now)
    live = repository.live_direct_assignments(session, application_id=application.id, at=now)
    made: list[uuid.UUID] = []
    skipped = {"assigned": 0, "terminated": 0, "refused": 0, "uncorrelated": 0}
    for account, entitlement in memberships.pairs:
        identity_id = account.identity_id
        if identity_id is None:
            skipped["uncorrelated"] += 1
            continue
        pair = (identity_id, entitlement.id)
        if pair in held or pair in live:
            skipped["assigned"] += 1
            continue
        if synced.states.get(identity_id) == "terminated":
            skipped["terminated"] += 1
            continue
        try:
            assignment = assignments.grant(
                session, identity_id=identity_id, entitlement_id=entitlement.id,
                source="aggregation",
                reason=f"found on {application.name} by aggregation: account "
                       f"{account.username or account.native_id} is a member of "
                       f"{entitlement.name}",
                valid_from=None, valid_until=None, actor=actor, clock=clock)
        except (Conflict, InvalidInput):
            skipped["refused"] += 1
            continue
        live.add(pair)
        made.append(assignment.id)
    closed = _close_as_present(session, made, actor=actor, clock=clock)
    items = orphan_items(run, synced, memberships)
    session.add_all(items)
    counts: dict[str, Any] = {
        **synced.counts,
        "orphans": len(synced.orphans),
        "entitlements": len(target.entitlements),
        "entitlements_created": created_entitlements,
        "memberships": len(memberships.pairs),
        "foreign_members": memberships.foreign_members,
        "assignments_created": len(made),
        "operations_closed_as_present": closed,
        "memberships_already_assigned": skipped["assigned"],
        "memberships_of_terminated_identities": skipped["terminated"],
        "memberships_of_uncorrelated_accounts": skipped["uncorrelated"],
        "memberships_refused": skipped["refused"],
    }
    _finish(session, run, counts=counts, actor=actor, clock=clock)
    return run


# --- reconciliation --------------------------------------------------------------------------


@dataclass
class _Fix:
    item: DriftItem
    identity_id: uuid.UUID
    action: str
    entitlement_id: uuid.UUID | None
    account_id: uuid.UUID | None


def _drift(run: ReconciliationRun, kind: str, *, account: Account | None = None,
           entitlement: Entitlement | None = None, identity_id: uuid.UUID | None = None,
           **detail: Any) -> DriftItem:
    return DriftItem(id=uuid.uuid4(), run_id=run.id, kind=kind,
                     account_native_id=account.native_id if account else None,
                     account_id=account.id if account else None,
                     entitlement_native_id=entitlement.native_id if entitlement else None,
                     entitlement_id=entitlement.id if entitlement else None,
                     identity_id=identity_id if identity_id is not None
                     else (account.identity_id if account else None),
                     detail={k: v for k, v in detail.items() if v is not None})


def _find_drift(run: ReconciliationRun, *, application: Application, synced: Synced,
                memberships: Memberships,
                held: set[tuple[uuid.UUID, uuid.UUID]],
                entitlements: Mapping[uuid.UUID, Entitlement]
                ) -> tuple[list[DriftItem], list[_Fix], int]:
    """Every difference, and the fix of each that remediation may queue."""
    items = orphan_items(run, synced, memberships)
    fixes: list[_Fix] = []
    states = synced.states
    account_of: dict[uuid.UUID, Account] = {}
    for account in synced.on_target.values():
        if account.identity_id is None:
            continue
        current = account_of.get(account.identity_id)
        if current is None or (account.account_type == "primary"
                               and current.account_type != "primary"):
            account_of[account.identity_id] = account
    actual: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for member, entitlement in memberships.pairs:
        identity_id = member.identity_id
        if identity_id is None:
            continue  # an orphan's or a service account's: reported with the account
        actual.add((identity_id, entitlement.id))
        if (identity_id, entitlement.id) in held:
            continue
        item = _drift(run, "unassigned_membership", account=member, entitlement=entitlement,
                      username=member.username)
        items.append(item)
        if application.remove_unassigned_access:
            fixes.append(_Fix(item, identity_id, "revoke", entitlement.id, member.id))
    desired: dict[uuid.UUID, list[uuid.UUID]] = {}
    inactive_holders = 0
    for identity_id, entitlement_id in sorted(held, key=lambda p: (str(p[0]), str(p[1]))):
        if states.get(identity_id) in INACTIVE_STATES:
            inactive_holders += 1
            continue  # lifecycle takes their access away; granting it would be wrong
        desired.setdefault(identity_id, []).append(entitlement_id)
    for identity_id, entitlement_ids in desired.items():
        holder = account_of.get(identity_id)
        if holder is None:
            item = _drift(run, "missing_account", identity_id=identity_id,
                          entitlements=sorted(entitlements[e].native_id
                                              for e in entitlement_ids))
            items.append(item)
            fixes.append(_Fix(item, identity_id, "create_account", None, None))
        for entitlement_id in entitlement_ids:
            if (identity_id, entitlement_id) in actual:
                continue
            item = _drift(run, "missing_grant", account=holder,
                          entitlement=entitlements[entitlement_id], identity_id=identity_id,
                          account_missing=True if holder is None else None)
            items.append(item)
            fixes.append(_Fix(item, identity_id, "grant", entitlement_id,
                              holder.id if holder else None))
    for account in sorted(synced.on_target.values(), key=lambda a: a.native_id):
        identity_id = account.identity_id
        if identity_id is None:
            continue
        state = states.get(identity_id)
        if account.status == "disabled" and state == "active" and identity_id in desired:
            item = _drift(run, "disabled_account_of_active_identity", account=account,
                          lifecycle_state=state)
            items.append(item)
            fixes.append(_Fix(item, identity_id, "enable_account", None, account.id))
        elif account.status == "active" and state in INACTIVE_STATES:
            item = _drift(run, "enabled_account_of_inactive_identity", account=account,
                          lifecycle_state=state)
            items.append(item)
            fixes.append(_Fix(item, identity_id, "disable_account", None, account.id))
    return items, fixes, inactive_holders


def _op_key(run: ReconciliationRun, fix: _Fix, application_id: uuid.UUID) -> str:
    if fix.entitlement_id is None:
        return provisioning_accounts.account_key(
            cause="reconciliation", cause_id=str(run.id), identity_id=fix.identity_id,
            application_id=application_id, action=fix.action)
    return (f"reconciliation:{run.id}:{fix.identity_id}:{fix.entitlement_id}:"
            f"{fix.action}")


def _remediate(session: Session, *, run: ReconciliationRun, application: Application,
               fixes: list[_Fix], actor: Actor, clock: Clock) -> dict[str, int]:
    """Queue the operations of ``fixes``, reusing any open operation for the same fix."""
    open_ops: dict[tuple[uuid.UUID, str, uuid.UUID | None], uuid.UUID] = {}
    for known in repository.open_operations(session, application.id):
        open_ops.setdefault((known.identity_id, known.action, known.entitlement_id), known.id)
    now = clock.now()
    queued: list[ProvisioningOperation] = []
    reused = not_possible = accounts_queued = 0
    fixes = sorted(fixes, key=lambda f: (str(f.identity_id), _ACTION_ORDER[f.action],
                                         str(f.entitlement_id)))
    for fix in fixes:
        wanted = (fix.identity_id, fix.action, fix.entitlement_id)
        if wanted in open_ops:
            fix.item.remediation_operation_id = open_ops[wanted]
            fix.item.detail = {**fix.item.detail, "operation": "already open"}
            reused += 1
            continue
        if fix.action == "create_account":
            # The accounts module names the account (collisions) and reserves the name.
            made = provisioning_accounts.ensure_account_operations(
                session, identity_id=fix.identity_id, application_id=application.id,
                cause="reconciliation", cause_id=str(run.id), actor=actor, clock=clock)
            if made is None:
                fix.item.detail = {**fix.item.detail,
                                   "operation": "none: the application does not manage "
                                                "accounts"}
                not_possible += 1
                continue
            op = made
            accounts_queued += 1
        else:
            op = ProvisioningOperation(
                id=uuid.uuid4(), idempotency_key=_op_key(run, fix, application.id),
                identity_id=fix.identity_id, application_id=application.id,
                entitlement_id=fix.entitlement_id, account_id=fix.account_id,
                action=fix.action, ordinal=next_ordinal(), state="pending", cause="reconciliation",
                cause_id=str(run.id), attempts=0,
                detail={"drift": fix.item.kind, "run_id": str(run.id)},
                created_at=now, updated_at=now)
            session.add(op)
            queued.append(op)
        open_ops[wanted] = op.id
        fix.item.remediation_operation_id = op.id
    session.flush()
    for op in queued:
        record(session, actor=actor, action="provisioning.record",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               after=snapshot(op), context={"run_id": str(run.id)})
    return {"operations_queued": len(queued) + accounts_queued,
            "operations_already_open": reused,
            "fixes_not_possible": not_possible}


def reconcile(session: Session, *, application_id: uuid.UUID, connector: Connector,
              remediate: bool, actor: Actor, clock: Clock) -> ReconciliationRun:
    """Compare the target with the desired state, store the drift, and with ``remediate``
    queue the operations that fix it (see the module doc).

    Drift kinds: orphan_account; unassigned_membership (a correlated account holds an
    entitlement no assignment in force gives its identity); missing_grant (an assignment's
    entitlement is not on the identity's account, or it has no account there);
    missing_account; disabled_account_of_active_identity (an active identity that should
    have access); enabled_account_of_inactive_identity (suspended or terminated). Memberships
    of entitlements the catalog does not know are counted (``unknown_entitlements``), not
    judged: aggregation imports them. Identities who are suspended or terminated get no
    missing_grant or missing_account.

    Raises NotFound, Conflict (the connector cannot list), InvalidInput (rules); a
    connector error ends the run ``failed`` (returned, not raised).
    """
    application = get_or_404(session, Application, application_id, what="application")
    rules = correlation_rules(application)
    check_capabilities(application, connector)
    run = _start(session, application=application, kind="reconciliation",
                 remediate=remediate, actor=actor, clock=clock)
    try:
        target = read_target(connector)
    except ConnectorError as error:
        _finish(session, run, counts={}, actor=actor, clock=clock, error=error)
        return run
    synced = sync_accounts(session, application=application, target=target.accounts,
                            rules=rules, run=run, actor=actor, clock=clock)
    catalog_rows = repository.entitlements_of(session, application.id)
    known = {norm_native(e.native_id): e for e in catalog_rows}
    memberships = read_memberships(target.entitlements, known, synced)
    held = repository.holdings(session, application_id=application.id, at=clock.now())
    items, fixes, inactive_holders = _find_drift(
        run, application=application, synced=synced, memberships=memberships, held=held,
        entitlements={e.id: e for e in catalog_rows})
    remediation = {"operations_queued": 0, "operations_already_open": 0,
                   "fixes_not_possible": 0}
    if remediate:
        remediation = _remediate(session, run=run, application=application, fixes=fixes,
                                 actor=actor, clock=clock)
    session.add_all(items)
    counts: dict[str, Any] = {
        **synced.counts,
        **count_kinds(items),
        "entitlements": len(target.entitlements),
        "unknown_entitlements": len(memberships.unknown_entitlements),
        "memberships": len(memberships.pairs),
        "foreign_members": memberships.foreign_members,
        "assignments_of_inactive_identities": inactive_holders,
        "fixable": len(fixes),
        **remediation,
    }
    _finish(session, run, counts=counts, actor=actor, clock=clock)
    return run


# --- with the application's own connector (endpoints, CLI) -----------------------------------


def connector_for(application: Application, settings: Settings) -> Connector:
    """A fresh connector for ``application`` (credentials decrypted with the configured keys,
    never kept or logged); the caller closes it. The one way the endpoints, the CLI and the
    periodic jobs build one. Failures to build are connector errors (permanent: an unknown
    kind, unreadable credentials, settings the connector refuses)."""
    return build_connector(Target.of(application), settings)


def run_for_application(session: Session, *, application_id: uuid.UUID, kind: str,
                        remediate: bool, settings: Settings, actor: Actor,
                        clock: Clock) -> ReconciliationRun:
    """Build the application's connector (:func:`connector_for`), run ``kind``
    ("aggregation" or "reconciliation"), close the connector.

    A connector that cannot even be built (unusable settings) ends the run ``failed`` too.
    """
    application = get_or_404(session, Application, application_id, what="application")
    if application.connector_kind not in registry.KINDS:
        raise Conflict(f"no connector is registered for kind {application.connector_kind!r}")
    try:
        connector = connector_for(application, settings)
    except ConnectorError as error:
        run = _start(session, application=application, kind=kind,
                     remediate=remediate and kind == "reconciliation", actor=actor,
                     clock=clock)
        _finish(session, run, counts={}, actor=actor, clock=clock, error=error)
        return run
    try:
        if kind == "aggregation":
            return aggregate(session, application_id=application_id, connector=connector,
                             actor=actor, clock=clock)
        return reconcile(session, application_id=application_id, connector=connector,
                         remediate=remediate, actor=actor, clock=clock)
    finally:
        # The run's outcome is what matters; the connection is dropped either way.
        with contextlib.suppress(ConnectorError):
            connector.close()


def get_run(session: Session, *, run_id: uuid.UUID) -> ReconciliationRun:
    return get_or_404(session, ReconciliationRun, run_id, what="reconciliation run")


def list_runs(session: Session, *, filters: RunFilter) -> DbPage[ReconciliationRun]:
    return paginate(session, repository.run_list_query(filters), ReconciliationRun,
                    limit=filters.limit, cursor=filters.cursor)


def list_drift(session: Session, *, run_id: uuid.UUID,
               filters: DriftFilter) -> DbPage[DriftItem]:
    get_run(session, run_id=run_id)
    return paginate(session, repository.drift_list_query(run_id, filters), DriftItem,
                    limit=filters.limit, cursor=filters.cursor)


def find_application(session: Session, *, key: str) -> uuid.UUID:
    """The application named ``key`` or with id ``key``; NotFound otherwise."""
    found = repository.find_application(session, key)
    if found is None:
        raise NotFound(f"no application is named {key!r} or has that id")
    return found

