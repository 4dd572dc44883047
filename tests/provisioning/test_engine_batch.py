"""The engine with a connector that takes a batch: calls at once, grants to one entitlement
together (``grant_many``), every operation still with its own outcome and audited attempt."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from connectors import registry
from connectors.base import CAN_GRANT, AccountRef
from connectors.errors import ConnectorError, DataError, PolicyViolation
from connectors.memory import MemoryConnector
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from tests.provisioning.engine_env import Env, env_fixture

__all__ = ["env_fixture"]


class BatchMemoryConnector(MemoryConnector):
    """The memory connector, saying it takes 4 calls at once and grants together."""

    max_concurrency = 4

    def grant_many(self, pairs: Sequence[tuple[AccountRef, str]]) -> None:
        def effect() -> None:
            for ref, entitlement in pairs:
                self._account(ref)
                found = self.target.entitlements.get(entitlement)
                if found is None:
                    raise DataError(f"no entitlement {entitlement!r}")
            for ref, entitlement in pairs:
                self.target.entitlements[entitlement].members.add(ref.native_id)

        self._run("grant_many", tuple(sorted(f"{r.native_id}|{e}" for r, e in pairs)),
                  CAN_GRANT, effect)


@dataclass(frozen=True)
class ItemResult:
    ref: AccountRef
    entitlement: str
    error: ConnectorError | None = None


class PerItemConnector(BatchMemoryConnector):
    """Grants together answering one result per item (as Entra's $batch does): the account
    named in ``REFUSED`` is refused, the others granted."""

    REFUSED: set[str] = set()

    def grant_many(self, pairs: Sequence[tuple[AccountRef, str]]) -> list[ItemResult]:
        results = []
        for ref, entitlement in pairs:
            if ref.native_id in self.REFUSED:
                results.append(ItemResult(ref, entitlement, PolicyViolation("not this one")))
            else:
                self.grant(ref, entitlement)
                results.append(ItemResult(ref, entitlement))
        return results


@pytest.fixture(autouse=True)
def batch_connector() -> Iterator[None]:
    before = registry.KINDS["memory"]
    registry.register("memory", f"{__name__}:BatchMemoryConnector")
    yield
    registry.register("memory", before)


PEOPLE = ("Alice", "Bob", "Carol")


def _attempts(env: Env, action: str) -> dict[str, list[Any]]:
    """Per operation of ``action``: the outcomes of its audited attempts."""
    ids = {str(o.id) for o in env.ops() if o.action == action}
    found: dict[str, list[Any]] = {i: [] for i in ids}
    with unit_of_work(env.factory) as session:
        for event in session.scalars(select(AuditEvent)
                                     .where(AuditEvent.action == "provisioning.attempt")
                                     .order_by(AuditEvent.seq)):
            if event.object_id in found and event.context:
                found[event.object_id].append(event.context["outcome"])
    return found


def _grants_pending(env: Env) -> None:
    for person in PEOPLE:
        env.assign(person, "VPN")
    env.run(max_rounds=1)  # the three accounts, one claim


def test_grants_to_one_entitlement_go_together_each_with_its_own_outcome(env: Env) -> None:
    _grants_pending(env)

    env.run()

    assert set(env.states().values()) == {"succeeded"}
    natives = sorted(env.account_of(p) for p in PEOPLE)
    assert [(c.method, c.outcome) for c in env.target.calls] == [
        ("create_account", "ok")] * 3 + [("grant_many", "ok")]
    assert env.target.calls[-1].args == tuple(f"{n}|cn=VPN" for n in natives)
    assert env.target.members("cn=VPN") == set(natives)
    assert list(_attempts(env, "grant").values()) == [["succeeded"]] * 3


def test_when_grants_together_are_refused_they_are_sent_one_by_one(env: Env) -> None:
    _grants_pending(env)
    env.target.fail_next(DataError("one of them is refused"))

    env.run()

    assert set(env.states().values()) == {"succeeded"}
    assert [(c.method, c.outcome) for c in env.target.calls[3:]] == [
        ("grant_many", "data_error"), ("grant", "ok"), ("grant", "ok"), ("grant", "ok")]
    assert list(_attempts(env, "grant").values()) == [["succeeded"]] * 3


def test_one_refused_grant_fails_alone(env: Env) -> None:
    _grants_pending(env)
    env.target.fail_next(DataError("one of them is refused"), times=2)  # together, then one

    env.run()

    grants = sorted(o.state for o in env.ops() if o.action == "grant")
    assert grants == ["failed", "succeeded", "succeeded"]
    assert sorted(map(tuple, _attempts(env, "grant").values())) == [
        ("failed",), ("succeeded",), ("succeeded",)]


def test_a_target_down_fails_grants_together_once_and_each_is_retried(env: Env) -> None:
    _grants_pending(env)
    env.target.down = True

    env.run()

    assert sorted(o.state for o in env.ops() if o.action == "grant") == [
        "retry_scheduled"] * 3
    assert [c.method for c in env.target.calls[3:]] == ["grant_many"]
    assert list(_attempts(env, "grant").values()) == [["retry_scheduled"]] * 3


def test_grants_together_with_a_result_per_item_keep_each_outcome(env: Env) -> None:
    _grants_pending(env)
    registry.register("memory", f"{__name__}:PerItemConnector")
    env.cache.close()
    PerItemConnector.REFUSED = {env.account_of("Bob")}

    env.run()

    grants = {p: env.states()[(p, "grant", "VPN")] for p in PEOPLE}
    assert grants == {"Alice": "succeeded", "Bob": "failed", "Carol": "succeeded"}
    failed = next(o for o in env.ops("Bob") if o.action == "grant")
    assert (failed.error_category, failed.last_error) == ("policy_violation", "not this one")
    assert env.target.members("cn=VPN") == {env.account_of("Alice"), env.account_of("Carol")}
    assert sorted(map(tuple, _attempts(env, "grant").values())) == [
        ("failed",), ("succeeded",), ("succeeded",)]
