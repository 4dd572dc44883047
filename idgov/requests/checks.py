"""Checking a submission before anything is written: the form against the type's JSON
Schema, the items, the beneficiary and who may ask for them, durations, the data-handling
acknowledgement, duplicates, then the policy decision of every line (SoD against what is held
+ what is pending + what is asked). 422s are reported together, then 409s, then policy."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.access import repository as access_repository
from idgov.auth.caller import Caller
from idgov.catalog.snapshot import current_snapshot
from idgov.errors import Conflict, ErrorList, FieldError, Forbidden, InvalidInput
from idgov.identities.repository import manager_chain
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity
from idgov.models.requests import RequestType
from idgov.policy.decision import (
    ApprovalPolicy,
    Decision,
    Mitigation,
    StageSpec,
    decide,
    risk_at_most,
    violation_as_dict,
)
from idgov.policy.expansion import AssignmentRef
from idgov.policy.snapshot import ItemRef, PolicySnapshot
from idgov.request_types import repository as type_repository
from idgov.requests import repository
from idgov.requests.forms import form_errors
from idgov.requests.schemas import LineIn, MitigationIn

SENSITIVE_CLASSIFICATIONS = frozenset({"pii", "regulated"})
ACK_FIELD = "data_handling_acknowledged"

@dataclass
class Checked:
    """One line that passed every check, with what the policy decided about it."""

    index: int
    line: LineIn
    item: ItemRef
    name: str
    valid_from: datetime | None
    valid_until: datetime | None
    assignment_id: uuid.UUID | None
    decision: Decision | None = None
    fulfilment: str = "automatic"
    extra: dict[str, Any] = field(default_factory=dict)


def person_id(caller: Caller) -> uuid.UUID:
    if caller.identity_id is None:
        raise Forbidden("only a person can ask for access (sign in as yourself)")
    return caller.identity_id


def load_type(session: Session, key: str) -> RequestType:
    rtype = type_repository.by_key(session, key)
    if rtype is None or not rtype.active:
        raise InvalidInput(f"there is no active request type {key!r}",
                           errors=[FieldError("request_type", f"no active request type {key!r}")])
    return rtype


def load_beneficiary(session: Session, *, requester_id: uuid.UUID,
                      beneficiary_id: uuid.UUID) -> Identity:
    """The beneficiary: 422 when unknown or not active; 403 when the requester is neither
    them nor a manager above them."""
    beneficiary = session.get(Identity, beneficiary_id)
    if beneficiary is None:
        raise InvalidInput("the beneficiary does not exist",
                           errors=[FieldError("beneficiary_id", f"no identity {beneficiary_id}")])
    if beneficiary_id != requester_id and requester_id not in manager_chain(session,
                                                                            beneficiary_id):
        raise Forbidden(f"you may ask for access only for yourself or for people who report "
                        f"to you; {beneficiary.display_name} does not")
    if beneficiary.lifecycle_state != "active":
        raise InvalidInput(
            f"{beneficiary.display_name} is {beneficiary.lifecycle_state}: access can be asked "
            "for active people only",
            errors=[FieldError("beneficiary_id", f"is {beneficiary.lifecycle_state}, not active")])
    return beneficiary


def check_items(session: Session, lines: Sequence[LineIn], errors: ErrorList
           ) -> dict[int, tuple[ItemRef, str, Entitlement | None]]:
    """Each line's item, its name and (for an entitlement) the row; errors for unknown or
    non-requestable items and for an item named twice."""
    found: dict[int, tuple[ItemRef, str, Entitlement | None]] = {}
    seen: dict[tuple[str, ItemRef], int] = {}
    for n, line in enumerate(lines):
        if line.role_id is not None:
            role = session.get(Role, line.role_id)
            where = f"lines.{n}.role_id"
            if role is None:
                errors.add(where, f"no role {line.role_id}")
                continue
            ref, name, ent = ItemRef("role", role.id), role.name, None
            requestable = role.requestable
        else:
            assert line.entitlement_id is not None
            ent = session.get(Entitlement, line.entitlement_id)
            where = f"lines.{n}.entitlement_id"
            if ent is None:
                errors.add(where, f"no entitlement {line.entitlement_id}")
                continue
            ref, name, requestable = ItemRef("entitlement", ent.id), ent.name, ent.requestable
        if line.action == "grant" and not requestable:
            errors.add(where, f"{name} is not requestable")
            continue
        key = (line.action, ref)
        if key in seen:
            errors.add(where, f"{name} is already named by line {seen[key]}")
            continue
        seen[key] = n
        found[n] = (ref, name, ent)
    return found


def _window(*, n: int, line: LineIn, rtype: RequestType, ent: Entitlement | None, name: str,
            start: datetime, now: datetime, errors: ErrorList) -> datetime | None:
    """The end of a grant from valid_until or duration_days, within the caps."""
    where = f"lines.{n}.duration_days" if line.duration_days else f"lines.{n}.valid_until"
    until = line.valid_until
    if line.duration_days is not None:
        until = start + timedelta(days=line.duration_days)
    if until is None:
        if rtype.duration_required:
            errors.add(where, f"a {rtype.name} request is time-bound: give valid_until or "
                              "duration_days")
        return None
    if until <= now or until <= start:
        errors.add(where, "must be in the future")
        return until
    caps = [(rtype.max_duration_days, f"a {rtype.name} request")]
    if ent is not None:
        caps.append((ent.max_duration_days, name))
    for days, who in caps:
        if days and until > start + timedelta(days=days):
            errors.add(where, f"{who} may last at most {days} days "
                              f"(until {(start + timedelta(days=days)).isoformat()})")
    return until


def _check_mitigation(session: Session, *, n: int, mitigation: MitigationIn,
                      requester_id: uuid.UUID, beneficiary_id: uuid.UUID, now: datetime,
                      errors: ErrorList) -> None:
    owner = session.get(Identity, mitigation.owner_id)
    where = f"lines.{n}.mitigation"
    if owner is None:
        errors.add(f"{where}.owner_id", f"no identity {mitigation.owner_id}")
    elif owner.lifecycle_state != "active":
        errors.add(f"{where}.owner_id", f"is {owner.lifecycle_state}, not active")
    elif mitigation.owner_id in (requester_id, beneficiary_id):
        errors.add(f"{where}.owner_id",
                   "the control owner cannot be the requester or the beneficiary")
    if mitigation.expires_at <= now:
        errors.add(f"{where}.expires_at", "must be in the future")


def _duplicates(session: Session, checked: Sequence[Checked], *, beneficiary_id: uuid.UUID,
                exclude_request_id: uuid.UUID | None, window_days: int, now: datetime) -> None:
    """409 naming the pending request line or the held assignment a line repeats."""
    pending = repository.open_lines(session, beneficiary_id=beneficiary_id,
                                    exclude_request_id=exclude_request_id)
    for c in checked:
        for line, request in pending:
            if (line.action, line.role_id, line.entitlement_id) == (
                    c.line.action, c.line.role_id, c.line.entitlement_id):
                verb = "grant" if c.line.action == "grant" else "revocation"
                raise Conflict(
                    f"a {verb} of {c.name} for this person is already pending in "
                    f"{request.number}/{line.number} ({line.state})",
                    request_id=str(request.id), request_number=request.number,
                    line_number=line.number, line_state=line.state, line=c.index)
        if c.line.action != "grant":
            continue
        held = repository.live_assignment(session, identity_id=beneficiary_id,
                                          role_id=c.line.role_id,
                                          entitlement_id=c.line.entitlement_id, at=now)
        if held is None:
            continue
        renewable = (held.valid_until is not None
                     and held.valid_until <= now + timedelta(days=window_days))
        if not renewable:
            until = (f" until {held.valid_until.isoformat()}" if held.valid_until
                     else " with no end date")
            raise Conflict(
                f"this person already holds {c.name} through assignment {held.id}{until}",
                assignment_id=str(held.id),
                valid_until=held.valid_until.isoformat() if held.valid_until else None,
                line=c.index)
        # An extension: the new grant starts when the current one ends.
        assert held.valid_until is not None
        c.valid_from = held.valid_until
        c.extra["extends_assignment_id"] = str(held.id)


def _policy(rtype: RequestType) -> ApprovalPolicy:
    stages = tuple(
        StageSpec(approver=s["approver"],
                  group_id=uuid.UUID(s["group_id"]) if s.get("group_id") else None,
                  mode=s.get("mode", "any"))
        for s in rtype.approval_stages)
    return ApprovalPolicy(stages=stages, auto_approve_max_risk=rtype.auto_approve_max_risk,
                          dual_control_group_id=rtype.dual_control_group_id)


def _decide_lines(session: Session, checked: Sequence[Checked], *, rtype: RequestType,
                  beneficiary_id: uuid.UUID, exclude_request_id: uuid.UUID | None,
                  now: datetime) -> PolicySnapshot:
    """Run the policy decision of every line; 409 for a blocking SoD violation."""
    snap = current_snapshot(session, at=now)
    held = access_repository.assignments_at(session, beneficiary_id, now)
    exceptions = access_repository.exceptions_at(session, beneficiary_id, now)
    pending = [AssignmentRef(id=ln.id, source="pending", role_id=ln.role_id,
                             entitlement_id=ln.entitlement_id)
               for ln, _rq in repository.open_lines(session, beneficiary_id=beneficiary_id,
                                                    exclude_request_id=exclude_request_id)
               if ln.action == "grant" and ln.assignment_id is None]
    policy = _policy(rtype)
    for c in checked:
        m = c.line.mitigation
        mitigation = (Mitigation(control=m.control, owner_id=m.owner_id, expires_at=m.expires_at)
                      if m is not None else None)
        decision = decide(snap, item=c.item, action=c.line.action, held=held,
                          pending=pending, exceptions=exceptions, policy=policy,
                          mitigation=mitigation)
        if decision.blocking or not decision.allowed:
            explained = [violation_as_dict(v) for v in decision.blocking]
            rules = ", ".join(repr(v.rule.name) for v in decision.blocking) or "policy"
            raise Conflict(
                f"line {c.index} ({c.name}) would break separation of duties: {rules}"
                + ("" if any(v.rule.exception_allowed for v in decision.blocking)
                   else "; the rule allows no exception")
                + "; nothing was saved",
                line=c.index, violations=explained,
                reasons=list(decision.reasons))
        c.decision = decision
        if c.line.action == "grant":
            pending.append(AssignmentRef(id=uuid.uuid4(), source="pending",
                                         role_id=c.line.role_id,
                                         entitlement_id=c.line.entitlement_id))
    return snap


def _classifications(session: Session, checked: Sequence[Checked], *, rtype: RequestType,
                     form_data: dict[str, Any], errors: ErrorList) -> None:
    """Sensitive data needs the acknowledgement; sets each line's fulfilment mode."""
    for c in checked:
        assert c.decision is not None
        ents = set(c.decision.entitlements)
        if c.item.type == "entitlement":
            ents.add(c.item.id)
        found = repository.classifications(session, sorted(ents, key=str))
        classes = {cls for _name, cls in found.values()}
        sensitive = sorted(name for name, cls in found.values()
                           if cls in SENSITIVE_CLASSIFICATIONS)
        if (c.line.action == "grant" and sensitive and form_data.get(ACK_FIELD) is not True):
            message = ("must be true: " + ", ".join(sensitive)
                       + " hold(s) personal or regulated data")
            if not any(e.field == f"form_data.{ACK_FIELD}" for e in errors.items):
                errors.add(f"form_data.{ACK_FIELD}", message)
        allowed = set(rtype.automatic_classifications or []) | {"none"}
        automatic = (risk_at_most(c.decision.risk, rtype.automatic_max_risk)
                     and classes <= allowed)
        c.fulfilment = "automatic" if automatic else "manual"


def check_submission(session: Session, *, rtype: RequestType, requester_id: uuid.UUID,
                      beneficiary_id: uuid.UUID, form_data: dict[str, Any],
                      lines: Sequence[LineIn], exclude_request_id: uuid.UUID | None,
                      window_days: int, now: datetime) -> tuple[list[Checked], PolicySnapshot]:
    """Every check of a submission, in order: 422s together, then 409s, then policy."""
    errors = ErrorList(list(form_errors(rtype.form_schema or {"type": "object"}, form_data)))
    items = check_items(session, lines, errors)
    checked: list[Checked] = []
    for n, line in enumerate(lines):
        if n not in items:
            continue
        ref, name, ent = items[n]
        assignment_id = None
        if line.action == "revoke":
            held = repository.in_force_assignment(session, identity_id=beneficiary_id,
                                                  role_id=line.role_id,
                                                  entitlement_id=line.entitlement_id, at=now)
            if held is None:
                errors.add(f"lines.{n}", f"this person holds no assignment of {name} to revoke")
                continue
            assignment_id = held.id
        elif line.mitigation is not None:
            _check_mitigation(session, n=n, mitigation=line.mitigation,
                              requester_id=requester_id, beneficiary_id=beneficiary_id,
                              now=now, errors=errors)
        checked.append(Checked(index=n, line=line, item=ref, name=name, valid_from=None,
                                valid_until=None, assignment_id=assignment_id,
                                extra={"entitlement": ent}))
    errors.raise_if_any("the request is invalid")
    _duplicates(session, checked, beneficiary_id=beneficiary_id,
                exclude_request_id=exclude_request_id, window_days=window_days, now=now)
    for c in checked:
        if c.line.action == "grant":
            ent = c.extra.get("entitlement")
            c.valid_until = _window(n=c.index, line=c.line, rtype=rtype, ent=ent, name=c.name,
                                    start=c.valid_from or now, now=now, errors=errors)
        c.extra.pop("entitlement", None)
    errors.raise_if_any("the request is invalid")
    snap = _decide_lines(session, checked, rtype=rtype, beneficiary_id=beneficiary_id,
                         exclude_request_id=exclude_request_id, now=now)
    _classifications(session, checked, rtype=rtype, form_data=form_data, errors=errors)
    errors.raise_if_any("the request is invalid")
    return checked, snap
