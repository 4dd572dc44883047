"""The engine: order per identity and target, retries, the circuit breaker, failures routed
to people, leases; each checked on the memory target's call log (nothing done twice)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from connectors.errors import DataError, TargetTimeout
from connectors.memory import Call
from idgov.db.session import unit_of_work
from idgov.models.application import Account
from idgov.models.audit import AuditEvent
from idgov.models.notifications import Notification
from idgov.provisioning import engine, outcomes
from tests.provisioning.engine_env import Env, env_fixture

__all__ = ["env_fixture"]


def _attempts(env: Env, operation_id: uuid.UUID) -> list[str]:
    """The outcomes of the audited attempts of one operation, oldest first."""
    with unit_of_work(env.factory) as session:
        events = session.scalars(select(AuditEvent)
                                 .where(AuditEvent.object_id == str(operation_id),
                                        AuditEvent.action == "provisioning.attempt")
                                 .order_by(AuditEvent.seq))
        return [e.context["outcome"] for e in events if e.context]


def test_an_account_is_created_before_its_memberships_each_call_made_once(env: Env) -> None:
    env.assign("Alice", "VPN", "ERP-Read")

    stats = env.run()

    assert env.states() == {
        ("Alice", "create_account", "-"): "succeeded",
        ("Alice", "grant", "VPN"): "succeeded",
        ("Alice", "grant", "ERP-Read"): "succeeded",
    }
    assert stats.succeeded == 3
    native = env.account_of("Alice")
    assert [c.method for c in env.target.calls] == ["create_account", "grant", "grant"]
    assert sorted(env.target.calls[1:], key=lambda c: c.args) == [
        Call("grant", (native, "cn=ERP-Read"), "ok"), Call("grant", (native, "cn=VPN"), "ok")]
    assert env.target.members("cn=VPN") == {native}
    with unit_of_work(env.factory) as session:
        account = session.scalars(select(Account)).one()
        assert (account.native_id, account.username, account.status) == (
            native, "talice", "active")
    for op in env.ops():
        assert _attempts(env, op.id) == ["succeeded"]
        assert op.attempts == 1

    assert env.run().claimed == 0  # nothing left, nothing sent again
    assert len(env.target.calls) == 3


def test_a_later_operation_waits_behind_an_unfinished_earlier_one_of_the_same_person(
        env: Env) -> None:
    env.assign("Alice", "VPN")
    env.assign("Bob", "VPN")
    env.target.timeout_next()  # the first call: Alice's account

    env.run()

    assert env.states() == {
        ("Alice", "create_account", "-"): "retry_scheduled",
        ("Alice", "grant", "VPN"): "pending",  # held back behind her account
        ("Bob", "create_account", "-"): "succeeded",  # another person passes
        ("Bob", "grant", "VPN"): "succeeded",
    }
    env.clock.advance(timedelta(minutes=1))
    env.run()

    assert set(env.states().values()) == {"succeeded"}
    assert env.target.members("cn=VPN") == {env.account_of("Alice"), env.account_of("Bob")}
    assert env.target.count("create_account", None) == 3  # Alice twice (one timed out), Bob
    assert env.target.count("grant") == 2


def test_transient_failures_back_off_exponentially_with_jitter_then_succeed(env: Env) -> None:
    env.assign("Alice", "VPN")
    create = env.ops("Alice")[0]
    env.target.fail_next(TargetTimeout("no answer"), times=2)
    start = env.clock.now()

    env.run()
    op = env.ops("Alice")[0]
    # 1st failure: jitter at half of base 30 s
    assert (op.state, op.next_attempt_at) == ("retry_scheduled", start + timedelta(seconds=15))
    assert (op.error_category, op.last_error) == ("timeout", "no answer")

    env.clock.advance(timedelta(seconds=14))
    assert env.run().claimed == 0  # not due yet
    env.clock.advance(timedelta(seconds=1))
    env.run()
    op = env.ops("Alice")[0]
    # 2nd failure: half of 60 s
    assert op.next_attempt_at == env.clock.now() + timedelta(seconds=30)

    env.clock.advance(timedelta(seconds=30))
    env.run()
    assert set(env.states().values()) == {"succeeded"}
    assert _attempts(env, create.id) == ["retry_scheduled", "retry_scheduled", "succeeded"]
    assert env.ops("Alice")[0].attempts == 3


def test_backoff_is_capped_and_full_jitter_spans_zero_to_the_ceiling() -> None:
    config = engine.EngineConfig(retry_base_seconds=30, retry_cap_seconds=600)
    from tests.provisioning.engine_env import FixedRandom

    table = [  # (failures, jitter fraction, seconds)
        (1, 1.0, 30), (2, 1.0, 60), (3, 1.0, 120), (5, 1.0, 480), (6, 1.0, 600),
        (20, 1.0, 600), (3, 0.0, 0), (3, 0.25, 30),
    ]
    for failures, fraction, seconds in table:
        assert outcomes.backoff_seconds(failures, config=config,
                                      rng=FixedRandom(fraction)) == seconds
    assert outcomes.backoff_seconds(1, config=config, rng=FixedRandom(0.5),
                                  retry_after=90) == 90


def test_a_throttled_target_is_retried_after_its_retry_after(env: Env) -> None:
    env.assign("Alice", "VPN")
    env.target.throttle(retry_after=120)

    env.run()
    op = env.ops("Alice")[0]
    assert (op.state, op.error_category) == ("retry_scheduled", "throttled")
    assert op.next_attempt_at == env.clock.now() + timedelta(seconds=120)
    breaker = env.breaker()
    assert breaker is not None and breaker.state == "closed"

    env.clock.advance(timedelta(seconds=119))
    assert env.run().claimed == 0
    env.clock.advance(timedelta(seconds=1))
    env.run()
    assert set(env.states().values()) == {"succeeded"}


def test_after_max_attempts_an_operation_fails_and_is_routed(env: Env) -> None:
    env.assign("Alice", "VPN")
    env.target.fail_next(TargetTimeout("no answer"), times=4)  # max_attempts is 4
    # A breaker threshold below that would take these failures for the target being down.
    env.config = replace(env.config, breaker_threshold=10)

    for _ in range(4):
        env.run()
        env.clock.advance(timedelta(hours=1))

    op = env.ops("Alice")[0]
    assert (op.state, op.error_category, op.attempts) == ("failed", "timeout", 4)
    assert str(op.resolution_group_id) == env.group_id
    assert _attempts(env, op.id) == ["retry_scheduled"] * 3 + ["failed"]
    assert env.states()[("Alice", "grant", "VPN")] == "failed"  # no account to grant to
    assert env.target.count("grant", None) == 0


def test_a_permanent_failure_is_classified_routed_and_its_group_notified(env: Env) -> None:
    env.assign("Alice", "VPN")
    env.run(max_rounds=1)  # the account
    env.target.fail_next(DataError("cn=VPN: no such object"))

    env.run()

    grant = env.ops("Alice")[1]
    assert (grant.state, grant.error_category, grant.last_error, grant.attempts) == (
        "failed", "data_error", "cn=VPN: no such object", 1)
    assert str(grant.resolution_group_id) == env.group_id
    assert _attempts(env, grant.id) == ["failed"]
    with unit_of_work(env.factory) as session:
        sent = session.scalars(select(Notification)
                               .where(Notification.kind == "provisioning.failed")).all()
        assert sorted(str(n.recipient_id) for n in sent) == sorted(env.members)
        assert {n.object_id for n in sent} == {str(grant.id)}
        assert all("data_error" in n.body for n in sent)
    assert env.target.count("grant", None) == 1  # not retried


def test_a_target_down_for_a_while_delays_and_then_completes_the_work(env: Env) -> None:
    for person in ("Alice", "Bob", "Carol"):
        env.assign(person, "VPN")
    env.target.down = True

    env.run()
    breaker = env.breaker()
    assert breaker is not None
    assert (breaker.state, breaker.consecutive_failures) == ("open", 3)  # threshold 3
    assert breaker.next_probe_at == env.clock.now() + timedelta(seconds=60)

    for _ in range(20):  # 20 cool-downs down: one probe each, nothing fails
        env.clock.advance(timedelta(seconds=61))
        env.run()
    # Once the target did not answer, the rest of the batch is not sent to it: one call
    # at first, then one probe per cool-down.
    assert env.target.count("create_account", "system_unavailable") == 1 + 20
    states = env.states()
    assert "failed" not in states.values()
    assert sorted(states.values()) == ["pending"] * 3 + ["retry_scheduled"] * 3
    waiting = env.api.ok("GET", "/provisioning/operations", params={"state": "pending"})
    for item in waiting["items"]:
        assert "circuit breaker" in item["waiting_reason"]
        assert "unavailable" in item["waiting_reason"]
    health = env.api.ok("GET", f"/applications/{env.application_id}/health")
    assert health["breaker"]["state"] == "open"
    assert (health["connection"]["ok"], health["connection"]["error_category"]) == (
        False, "system_unavailable")
    assert (health["waiting_operations"], health["failed_operations"]) == (6, 0)

    env.target.down = False
    env.clock.advance(timedelta(hours=2))
    env.run()

    assert set(env.states().values()) == {"succeeded"}
    breaker = env.breaker()
    assert breaker is not None and (breaker.state, breaker.consecutive_failures) == (
        "closed", 0)
    assert env.target.count("create_account") == 3
    assert env.target.count("grant") == 3
    assert len(env.target.members("cn=VPN")) == 3
    health = env.api.ok("GET", f"/applications/{env.application_id}/health")
    assert (health["breaker"]["state"], health["connection"]["ok"]) == ("closed", True)


def test_a_running_operation_whose_lease_ran_out_is_claimed_again(env: Env) -> None:
    env.assign("Alice", "VPN")
    first = engine.claim(env.factory, worker_id="w1", clock=env.clock, lease_seconds=300)
    assert len(first) == 1  # the grant waits behind the account
    assert engine.claim(env.factory, worker_id="w2", clock=env.clock) == []

    env.clock.advance(timedelta(seconds=301))  # w1 died
    again = engine.claim(env.factory, worker_id="w2", clock=env.clock)
    assert again == first

    # w1 wakes up: its claim is lost, it does not call the target
    assert engine.execute(env.factory, operation_id=first[0], worker_id="w1",
                          settings=env.settings, clock=env.clock, connectors=env.cache,
                          config=env.config) == "running"
    assert env.target.calls == []
    assert engine.execute(env.factory, operation_id=first[0], worker_id="w2",
                          settings=env.settings, clock=env.clock, connectors=env.cache,
                          config=env.config) == "succeeded"
    env.run()
    assert set(env.states().values()) == {"succeeded"}
    assert env.target.count("create_account", None) == 1
    op = env.ops("Alice")[0]
    assert (op.attempts, op.claimed_by) == (2, "w2")


def test_a_grant_starting_later_is_not_sent_before_then(env: Env) -> None:
    start = env.clock.now() + timedelta(days=3)
    env.assign("Alice", "VPN", valid_from=start.isoformat())
    env.assign("Alice", "ERP-Read")

    env.run()
    assert env.states() == {
        ("Alice", "create_account", "-"): "succeeded",
        ("Alice", "grant", "VPN"): "pending",
        ("Alice", "grant", "ERP-Read"): "succeeded",  # not held back by the later one
    }
    env.clock.set(start)
    env.run()
    assert env.states()[("Alice", "grant", "VPN")] == "succeeded"


def test_revocation_removes_the_membership(env: Env) -> None:
    [assignment] = env.assign("Alice", "VPN")
    env.run()
    env.api.ok("POST", f"/assignments/{assignment}/revoke", json={"reason": "left"})
    env.run()
    assert env.states()[("Alice", "revoke", "VPN")] == "succeeded"
    assert env.target.members("cn=VPN") == set()
