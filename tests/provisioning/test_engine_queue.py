"""The failed-operations queue over HTTP (retry, cancel, resolve), and the rate limiter."""

from __future__ import annotations

from connectors.errors import DataError, PolicyViolation
from idgov.provisioning.connections import RateLimiter
from tests.catalog.factories import add_identity, audit_actions
from tests.conftest import PersonHeaders
from tests.provisioning.engine_env import Env, env_fixture

__all__ = ["env_fixture"]


def _fail_grants(env: Env, *people: str) -> list[str]:
    for person in people:
        env.assign(person, "VPN")
    env.run(max_rounds=1)  # the accounts
    env.target.fail_next(PolicyViolation("insufficient access rights"), times=len(people))
    env.run()
    failed = env.api.ok("GET", "/provisioning/failed")["items"]
    return [f["id"] for f in failed]


def test_the_failed_queue_lists_failures_for_admins_and_the_group_members(
        env: Env, people: PersonHeaders) -> None:
    [failed] = _fail_grants(env, "Alice")
    item = env.api.ok("GET", f"/provisioning/operations/{failed}")
    assert (item["state"], item["error_category"], item["resolution_group_id"]) == (
        "failed", "policy_violation", env.group_id)

    member = env.api.client.get("/provisioning/failed", headers=people[env.members[0]])
    assert [i["id"] for i in member.json()["items"]] == [failed]
    outsider = add_identity(env.factory, "OUTSIDER")
    other = env.api.client.get("/provisioning/failed", headers=people[outsider])
    assert (other.status_code, other.json()["items"]) == (200, [])
    by_category = env.api.ok("GET", "/provisioning/failed",
                             params={"error_category": "data_error"})
    assert by_category["items"] == []
    refused = env.api.client.post(f"/provisioning/operations/{failed}/retry",
                                  headers=people[env.members[0]])
    assert refused.status_code == 403


def test_retry_puts_a_failed_operation_back_and_it_completes(env: Env) -> None:
    [failed] = _fail_grants(env, "Alice")

    retried = env.api.ok("POST", f"/provisioning/operations/{failed}/retry")
    assert (retried["state"], retried["error_category"]) == ("pending", None)
    env.run()

    assert env.api.ok("GET", f"/provisioning/operations/{failed}")["state"] == "succeeded"
    assert env.target.members("cn=VPN") == {env.account_of("Alice")}
    assert env.target.count("grant", None) == 2  # the refused one, the retried one
    assert env.api.ok("GET", "/provisioning/failed")["items"] == []
    assert audit_actions(env.factory, failed)[-4:] == [
        "provisioning.complete", "provisioning.retry", "provisioning.attempt",
        "provisioning.complete"]


def test_cancel_and_resolve_take_operations_out_of_the_queue(env: Env) -> None:
    cancel_id, resolve_id = _fail_grants(env, "Alice", "Bob")

    cancelled = env.api.ok("POST", f"/provisioning/operations/{cancel_id}/cancel")
    resolved = env.api.ok("POST", f"/provisioning/operations/{resolve_id}/resolve",
                          json={"note": "added to the group by hand, ticket 4711"})

    assert cancelled["state"] == "cancelled"
    assert (resolved["state"], resolved["resolution_note"]) == (
        "succeeded", "added to the group by hand, ticket 4711")
    assert resolved["resolved_by"].startswith("service_principal:")
    assert env.api.ok("GET", "/provisioning/failed")["items"] == []
    assert env.run().claimed == 0  # neither is sent again
    assert audit_actions(env.factory, cancel_id)[-1] == "provisioning.cancel"
    assert audit_actions(env.factory, resolve_id)[-1] == "provisioning.resolve"

    for url, body in ((f"/provisioning/operations/{resolve_id}/retry", None),
                      (f"/provisioning/operations/{resolve_id}/cancel", None),
                      (f"/provisioning/operations/{cancel_id}/resolve", {"note": "x"})):
        resp = env.api.client.post(url, headers=env.api.headers, json=body)
        assert resp.status_code == 409, url
    empty = env.api.client.post(f"/provisioning/operations/{cancel_id}/resolve",
                                headers=env.api.headers, json={"note": ""})
    assert empty.status_code == 422
    missing = env.api.client.post(
        "/provisioning/operations/00000000-0000-0000-0000-000000000000/retry",
        headers=env.api.headers)
    assert missing.status_code == 404


def test_a_pending_operation_can_be_cancelled_but_not_a_running_one(env: Env) -> None:
    env.assign("Alice", "VPN")
    create, grant = (str(o.id) for o in env.ops("Alice"))
    from idgov.provisioning import engine

    assert engine.claim(env.factory, worker_id="w", clock=env.clock) == [env.ops()[0].id]
    running = env.api.client.post(f"/provisioning/operations/{create}/cancel",
                                  headers=env.api.headers)
    assert running.status_code == 409
    assert env.api.ok("POST", f"/provisioning/operations/{grant}/cancel")["state"] == (
        "cancelled")


def test_a_data_error_is_not_retried_and_says_what_was_wrong(env: Env) -> None:
    env.assign("Alice", "VPN")
    env.target.fail_next(DataError("username talice is taken by another account"))
    env.run()
    failed = env.api.ok("GET", "/provisioning/failed",
                        params={"error_category": "data_error"})["items"]
    assert {(f["action"], f["last_error"]) for f in failed} == {
        ("create_account", "username talice is taken by another account"),
        ("grant", f"the identity has no account in Directory {env.target.name} "
                  "(needed to grant)"),
    }
    assert env.target.count("create_account", None) == 1
    assert env.target.count("grant", None) == 0


def test_the_rate_limiter_spaces_calls_per_target() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(time_source=lambda: now[0], sleep=sleep)
    import uuid

    a, b = uuid.uuid4(), uuid.uuid4()
    waits = [limiter.acquire(a, 2.0) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.5, 0.5, 0.5]  # a burst of 2, then one every half second
    assert limiter.acquire(b, 2.0) == 0.0  # another target has its own bucket
    assert limiter.acquire(a, None) == 0.0
    now[0] += 10  # idle: the bucket refills up to its burst, no more
    assert [limiter.acquire(a, 2.0) for _ in range(3)] == [0.0, 0.0, 0.5]
