"""Micro-certification of unused access: aggregation stores the last sign-in the target
tells of, and access whose account has been idle longer than the setting goes to the
holder's manager (else the application's owner), once per idle period."""

from __future__ import annotations

from datetime import timedelta

from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from tests.certification.micro_world import Micro, loop_fixture, micro_fixture

__all__ = ["loop_fixture", "micro_fixture"]

UNUSED = {"unused": 90}


def test_idle_access_goes_to_the_manager_and_a_revoke_takes_it_off_the_target(
        micro: Micro) -> None:
    loop = micro.loop
    alice = loop.grant("Alice", "ERP-Read")
    loop.grant("Bob", "ERP-Read")
    carol = loop.grant("Carol", "ERP-Read")
    loop.provision()
    loop.update(Identity, micro.ids["Carol"], manager_id=None)
    loop.update(Application, loop.application_id, owner_id=micro.ids["Boss"])
    micro.advance(days=100)
    alice_seen = micro.signed_in("Alice", days_ago=95)
    micro.signed_in("Bob", days_ago=5)
    carol_seen = micro.signed_in("Carol", days_ago=91)
    loop.grant("Alice", "VPN")  # granted today: not idle for 90 days, whatever the account
    micro.aggregate()

    report = micro.run(**UNUSED)

    assert report["unused"] == {"items": 2, "campaigns": 2, "under_review": 0, "ended": 0,
                                "no_reviewer": 0}
    items = {i.assignment_id: i for i in micro.items("unused")}
    assert set(items) == {alice, carol}
    assert (items[alice].reviewer_id, items[alice].context["reviewer_rule"]) == (
        micro.ids["Mia"], "manager")
    assert (items[carol].reviewer_id, items[carol].context["reviewer_rule"]) == (
        micro.ids["Boss"], "application_owner")
    assert items[alice].trigger_key == f"unused:{alice}:{alice_seen.isoformat()}"
    assert items[carol].trigger_key == f"unused:{carol}:{carol_seen.isoformat()}"
    assert (items[alice].context["last_sign_in"], items[alice].context["idle_days"]) == (
        alice_seen.isoformat(), 95)
    assert micro.campaign(items[alice]).trigger == "unused"
    assert micro.made(**UNUSED) == 0

    assert micro.decide(items[alice], "revoke", "Mia",
                        comment="no sign-in for three months").status_code == 200
    done = micro.sign_off(items[alice].campaign_id, "Mia")
    assert (done["applied"]["requested"], done["campaign_state"]) == (1, "closed")
    assert micro.assignment(alice).revoked_at == micro.now
    loop.provision()
    assert loop.members_of("ERP-Read") == {"tbob", "tcarol"}
    assert micro.made(**UNUSED) == 0


def test_a_new_sign_in_then_a_new_idle_period_is_reviewed_again(micro: Micro) -> None:
    loop = micro.loop
    alice = loop.grant("Alice", "ERP-Read")
    loop.provision()
    micro.advance(days=100)
    micro.signed_in("Alice", days_ago=95)
    micro.aggregate()
    assert micro.made(**UNUSED) == 1
    [first] = micro.items("unused")
    assert micro.decide(first, "certify", "Mia").status_code == 200
    micro.sign_off(first.campaign_id, "Mia")
    assert micro.assignment(alice).last_certified_at == micro.now

    micro.aggregate()  # the target tells of the same sign-in: the same idle period
    assert micro.made(**UNUSED) == 0
    seen = micro.signed_in("Alice", days_ago=0)
    micro.aggregate()
    assert micro.made(**UNUSED) == 0  # in use again
    micro.advance(days=91)
    micro.aggregate()

    assert micro.made(**UNUSED) == 1
    again = [i for i in micro.items("unused") if i.id != first.id]
    assert [i.trigger_key for i in again] == [f"unused:{alice}:{seen.isoformat()}"]


def test_a_role_is_unused_only_when_every_application_it_reaches_is_idle(
        micro: Micro) -> None:
    loop = micro.loop
    with unit_of_work(loop.factory) as session:
        ledger = Application(name="Ledger", connector_kind="manual", settings={})
        session.add(ledger)
        session.flush()
        posting = Entitlement(application_id=ledger.id, native_id="post", name="Ledger-Post",
                              kind="group")
        account = Account(application_id=ledger.id, native_id="alice", username="alice",
                          identity_id=micro.ids["Alice"], attributes={})
        session.add_all([posting, account])
        session.flush()
        ledger_id, posting_id, account_id = ledger.id, posting.id, account.id
    clerk = micro.role("Clerk", "ERP-Read")
    loop.env.api.grant(str(clerk), str(posting_id))
    held = loop.grant("Alice", role_id=clerk)
    loop.provision()
    micro.advance(days=100)
    erp_seen = micro.signed_in("Alice", days_ago=95)
    micro.aggregate()

    def ledger_seen(days_ago: int) -> None:
        when = (micro.now - timedelta(days=days_ago)).isoformat()
        loop.update(Account, account_id, attributes={"last_sign_in": when})

    assert micro.made(**UNUSED) == 0  # no sign-in known in Ledger: not unused
    ledger_seen(10)
    assert micro.made(**UNUSED) == 0  # Ledger is in use
    ledger_seen(120)

    assert micro.made(**UNUSED) == 1
    [item] = micro.items("unused")
    assert (item.assignment_id, item.role_id, item.application_id) == (held, clerk, None)
    assert item.trigger_key == f"unused:{held}:{erp_seen.isoformat()}"  # the latest sign-in
    assert item.reviewer_id == micro.ids["Mia"]
    assert ledger_id != loop.application_id


def test_zero_days_turns_the_trigger_off_and_no_known_sign_in_is_not_unused(
        micro: Micro) -> None:
    loop = micro.loop
    loop.grant("Alice", "ERP-Read")
    loop.grant("Bob", "ERP-Read")
    loop.provision()
    micro.advance(days=100)
    micro.signed_in("Alice", days_ago=95)
    micro.aggregate()
    assert micro.account("Bob").attributes.get("last_sign_in") is None

    assert "unused" not in micro.run(unused=0)
    assert micro.items() == []
    assert micro.made(**UNUSED) == 1
    assert {i.identity_id for i in micro.items("unused")} == {micro.ids["Alice"]}
