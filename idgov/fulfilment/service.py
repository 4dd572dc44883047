"""Manual fulfilment: a manual application's operation becomes a task for its resolution group.

The engine calls :func:`open_task` instead of a connector; the operation stays ``running``
(without a lease) while the task is open. A member of the group completes the task (the
operation succeeds) or reports it failed with a note (the operation fails, category
``data_error`` unless the member says ``policy_violation`` or ``not_supported``, routed back
to the group's failed queue). The operation's request line follows through the provisioning
line hooks. Overdue tasks escalate (:mod:`idgov.fulfilment.tasks`).

Row rules: members of a task's group see and work it; readers (``fulfilment:read``:
administrators, auditors) see every task. A task the caller may not see does not exist for
them (404); one they see but may not work (not a member) is 403.

Audit: ``fulfilment_task.open`` / ``.reopen`` / ``.complete`` / ``.fail`` / ``.escalate``
(object ``fulfilment_task``), beside the operation's own ``provisioning.complete``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.base import AccountRef
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, Forbidden, NotFound
from idgov.fulfilment import repository
from idgov.fulfilment.schemas import TaskFilter
from idgov.models.application import Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import FulfilmentTask, ProvisioningOperation
from idgov.notifications.service import notify
from idgov.provisioning import accounts
from idgov.provisioning.service import complete_operation
from idgov.types import Actor

DUE_HOURS = 48


# --- what to do ------------------------------------------------------------------------------


def _describe_attributes(attributes: dict[str, Any], prefix: str = "") -> list[str]:
    parts: list[str] = []
    for key, value in sorted(attributes.items()):
        if isinstance(value, dict):
            parts += _describe_attributes(value, f"{prefix}{key}.")
        elif value is None:
            parts.append(f"clear {prefix}{key}")
        else:
            parts.append(f"{prefix}{key} = {value}")
    return parts


def describe(session: Session, operation: ProvisioningOperation) -> str:
    """What a person has to do, for whom, in the application's words."""
    application = session.get(Application, operation.application_id)
    identity = session.get(Identity, operation.identity_id)
    assert application is not None and identity is not None
    username = accounts.choose_username(session, identity=identity, application=application)
    person = f"{identity.display_name} ({username})"
    where = application.name
    has_account = accounts.account_ref(session, operation=operation) is not None
    first = ("" if has_account else
             f" Create the account {username} first if {identity.display_name} has none there.")
    entitlement = (session.get(Entitlement, operation.entitlement_id)
                   if operation.entitlement_id else None)
    ent = (f"{entitlement.name} [{entitlement.native_id}]" if entitlement is not None else "?")
    action = operation.action
    if action == "grant":
        return f"Grant {ent} to {person} in {where}.{first}"
    if action == "revoke":
        return f"Revoke {ent} from {person} in {where}."
    if action == "create_account":
        spec = accounts.account_spec(session, identity=identity, application=application)
        details = "; ".join(_describe_attributes(dict(spec.attributes)))
        return (f"Create the account {username} for {identity.display_name} in {where}"
                + (f" with {details}." if details else "."))
    if action == "update_account":
        changes = "; ".join(_describe_attributes(dict(operation.detail.get("attributes", {}))))
        return f"Update the account of {person} in {where}: {changes}."
    verb = {"enable_account": "Enable", "disable_account": "Disable",
            "delete_account": "Delete"}.get(action, action)
    return f"{verb} the account of {person} in {where}."


# --- opening ---------------------------------------------------------------------------------


def _notify_group(session: Session, task: FulfilmentTask, *, kind: str, subject: str,
                  clock: Clock) -> None:
    recipients: list[uuid.UUID] = []
    if task.group_id is not None:
        recipients = repository.member_ids(session, task.group_id)
    if not recipients:
        # Nobody to work it: its application's owner hears of it.
        application = session.get(Application, task.application_id)
        if application is not None and application.owner_id is not None:
            recipients = [application.owner_id]
    for person in recipients:
        notify(session, recipient_id=person, kind=kind, subject=subject, body=task.summary,
               object_type="fulfilment_task", object_id=str(task.id),
               dedupe_key=f"{kind}:{task.id}:{task.escalation_level}:"
                          f"{task.updated_at.isoformat()}:{person}",
               clock=clock)


def open_task(session: Session, *, operation: ProvisioningOperation, actor: Actor,
              clock: Clock) -> FulfilmentTask:
    """The task of a manual application's operation, opened now (idempotent: the open task
    of the operation is answered as it is; a task that ended before is reopened, e.g. when
    an administrator retries the failed operation). Due in 48 hours; the members of the
    application's resolution group are told (its owner when there is no one)."""
    application = session.get(Application, operation.application_id)
    assert application is not None
    now = clock.now()
    summary = describe(session, operation)[:2000]
    task = repository.task_of(session, operation.id)
    if task is not None and task.state == "open":
        return task
    if task is not None:
        before = snapshot(task)
        task.state = "open"
        task.summary = summary
        task.group_id = application.resolution_group_id
        task.due_at = now + timedelta(hours=DUE_HOURS)
        task.escalation_level = 0
        task.completed_by_id = None
        task.note = None
        task.completed_at = None
        task.updated_at = now
        session.flush()
        record(session, actor=actor, action="fulfilment_task.reopen",
               object_type="fulfilment_task", object_id=task.id, clock=clock, before=before,
               after=snapshot(task))
    else:
        task = FulfilmentTask(operation_id=operation.id, application_id=application.id,
                              group_id=application.resolution_group_id,
                              identity_id=operation.identity_id, summary=summary,
                              state="open", due_at=now + timedelta(hours=DUE_HOURS),
                              escalation_level=0, created_at=now, updated_at=now)
        session.add(task)
        session.flush()
        record(session, actor=actor, action="fulfilment_task.open",
               object_type="fulfilment_task", object_id=task.id, clock=clock,
               after=snapshot(task), context={"operation_id": str(operation.id)})
    _notify_group(session, task, kind="fulfilment.task",
                  subject=f"To do in {application.name}: {summary}", clock=clock)
    return task


# --- reading ---------------------------------------------------------------------------------


def can_see(session: Session, *, caller: Caller, task: FulfilmentTask) -> bool:
    if caller.can("fulfilment:read"):
        return True
    return caller.identity_id is not None and repository.is_member(
        session, group_id=task.group_id, identity_id=caller.identity_id)


def get_visible(session: Session, *, caller: Caller, task_id: uuid.UUID) -> FulfilmentTask:
    """A task the caller may see; NotFound otherwise."""
    task = session.get(FulfilmentTask, task_id)
    if task is None or not can_see(session, caller=caller, task=task):
        raise NotFound(f"fulfilment task {task_id} does not exist")
    return task


def list_tasks(session: Session, *, caller: Caller,
               filters: TaskFilter) -> Page[FulfilmentTask]:
    """Tasks matching ``filters`` (open ones by default): all of them for readers, those
    of the caller's groups for members."""
    if caller.can("fulfilment:read"):
        stmt = repository.list_query(filters)
    elif caller.identity_id is None:
        return Page(items=[], next_cursor=None)
    else:
        stmt = repository.list_query(filters, member_id=caller.identity_id)
    return paginate(session, stmt, FulfilmentTask, limit=filters.limit, cursor=filters.cursor)


# --- working ---------------------------------------------------------------------------------


def _workable(session: Session, *, caller: Caller, task_id: uuid.UUID) -> FulfilmentTask:
    task = get_visible(session, caller=caller, task_id=task_id)
    if caller.identity_id is None or not repository.is_member(
            session, group_id=task.group_id, identity_id=caller.identity_id):
        raise Forbidden("only a member of the task's resolution group may work it")
    if task.state != "open":
        raise Conflict(f"fulfilment task {task_id} is {task.state}", state=task.state)
    return task


def _end(session: Session, task: FulfilmentTask, *, state: str, caller: Caller,
         note: str | None, clock: Clock) -> None:
    assert caller.identity_id is not None
    before = snapshot(task)
    now = clock.now()
    task.state = state
    task.completed_by_id = caller.identity_id
    task.note = note
    task.completed_at = now
    task.updated_at = now
    session.flush()
    verb = "complete" if state == "completed" else "fail"
    record(session, actor=caller.actor, action=f"fulfilment_task.{verb}",
           object_type="fulfilment_task", object_id=task.id, clock=clock, before=before,
           after=snapshot(task))


def _apply_to_account(session: Session, operation: ProvisioningOperation, *, actor: Actor,
                      clock: Clock) -> None:
    """What a person did by hand, in the accounts idgov knows: the account now exists (a
    creation, or the first grant of someone without one), changed, or changed status."""
    ref = accounts.account_ref(session, operation=operation)
    if ref is None and operation.action in ("create_account", "grant"):
        application = session.get(Application, operation.application_id)
        identity = session.get(Identity, operation.identity_id)
        assert application is not None and identity is not None
        username = accounts.choose_username(session, identity=identity,
                                            application=application)
        accounts.record_account_created(
            session, operation=operation, ref=AccountRef(native_id=username, username=username),
            actor=actor, clock=clock)
        return
    status = {"enable_account": "active", "disable_account": "disabled",
              "delete_account": "deleted"}.get(operation.action)
    if ref is None or (status is None and operation.action != "update_account"):
        return
    account = accounts.primary_account(session, identity_id=operation.identity_id,
                                       application_id=operation.application_id)
    if account is None:
        return
    before = snapshot(account)
    if status is not None:
        account.status = status
    else:
        merged = dict(account.attributes or {})
        merged.update(operation.detail.get("attributes", {}))
        account.attributes = {k: v for k, v in merged.items() if v is not None}
    account.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="account.update", object_type="account",
           object_id=account.id, clock=clock, before=before, after=snapshot(account),
           context={"operation_id": str(operation.id)})


def complete_task(session: Session, *, task_id: uuid.UUID, caller: Caller, note: str | None,
                  clock: Clock) -> FulfilmentTask:
    """A member did it: the task is completed and its operation succeeds (its request line
    follows). 404 for a task the caller may not see, 403 for a non-member, 409 unless open."""
    task = _workable(session, caller=caller, task_id=task_id)
    operation = get_or_404(session, ProvisioningOperation, task.operation_id,
                           what="provisioning operation")
    _end(session, task, state="completed", caller=caller, note=note, clock=clock)
    _apply_to_account(session, operation, actor=caller.actor, clock=clock)
    complete_operation(session, operation_id=operation.id, succeeded=True, error=None,
                       actor=caller.actor, clock=clock,
                       context={"fulfilment_task_id": str(task.id)})
    return task


def fail_task(session: Session, *, task_id: uuid.UUID, caller: Caller, note: str,
              category: str, clock: Clock) -> FulfilmentTask:
    """A member could not do it: the task is failed and its operation fails with
    ``category`` and the note as its error, in the group's failed queue."""
    task = _workable(session, caller=caller, task_id=task_id)
    _end(session, task, state="failed", caller=caller, note=note, clock=clock)
    complete_operation(session, operation_id=task.operation_id, succeeded=False,
                       error=f"fulfilment task failed: {note}", error_category=category,
                       resolution_group_id=task.group_id, actor=caller.actor, clock=clock,
                       context={"fulfilment_task_id": str(task.id)})
    return task


def cancel_open_task(session: Session, *, operation_id: uuid.UUID, actor: Actor,
                     clock: Clock) -> FulfilmentTask | None:
    """Cancel the open task of an operation that was cancelled (by an administrator)."""
    task = repository.task_of(session, operation_id)
    if task is None or task.state != "open":
        return None
    before = snapshot(task)
    task.state = "cancelled"
    task.completed_at = task.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="fulfilment_task.cancel", object_type="fulfilment_task",
           object_id=task.id, clock=clock, before=before, after=snapshot(task))
    return task
