"""Aggregation of a pre-filled target: correlation, orphans, aggregation assignments."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.errors import TargetUnavailable
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput
from idgov.models.catalog import Entitlement
from idgov.reconciliation.service import ALREADY_PRESENT
from tests.reconciliation.helpers import Lab


def _prefill(lab: Lab) -> None:
    """People, a catalog that knows g-vpn, and a target that existed before idgov."""
    lab.person("E100", email="alice@example.com", uid="asmith")
    lab.person("E200", email="bob@example.com")
    lab.person("E300", email="carol@example.com", uid="cjones")
    lab.person("E400", email="dave@example.com", state="terminated")
    lab.person("E500", email="erin@example.com")
    vpn = lab.entitlement("g-vpn", "VPN")
    lab.assign("E500", vpn)
    t = lab.target
    t.add_entitlement("g-vpn", "VPN users")
    t.add_entitlement("g-finance", "Finance")
    accounts = {
        # employeeNumber wins over a mail that names nobody
        "alice": {"employeeNumber": "E100", "mail": "nobody@example.com", "uid": "asmith"},
        # no employeeNumber: mail, compared case-insensitively and trimmed
        "bob": {"mail": " BOB@Example.com"},
        # neither: uid against the identity attribute uid
        "carol1": {"uid": "cjones"},
        # Alice by mail, but she already has "alice": kept as an orphan
        "alice2": {"mail": "alice@example.com"},
        "dave": {"employeeNumber": "E400"},
        "erin": {"mail": "erin@example.com"},
        "svc-backup": {"description": "backup job"},
    }
    refs = {name: t.add_account(name, attrs, enabled=name != "svc-backup")
            for name, attrs in accounts.items()}
    for name in ("alice", "bob", "dave", "erin", "svc-backup"):
        t.add_member("g-vpn", refs[name].native_id)
    for name in ("carol1", "svc-backup"):
        t.add_member("g-finance", refs[name].native_id)


def test_aggregation_correlates_by_employee_number_then_mail_and_keeps_orphans(
        lab: Lab) -> None:
    _prefill(lab)

    run = lab.aggregate()

    assert run.state == "succeeded"
    assert lab.accounts() == {
        "alice": ("E100", "active"),
        "bob": ("E200", "active"),
        "carol1": ("E300", "active"),
        "alice2": (None, "active"),
        "dave": ("E400", "active"),
        "erin": ("E500", "active"),
        "svc-backup": (None, "disabled"),
    }
    assert run.counts["correlated_now_by"] == {"employeeNumber": 2, "mail": 2, "uid": 1}
    orphans = {(d.kind, d.detail["username"], d.detail["reason"],
                tuple(d.detail["entitlements"])) for d in lab.drift(run.id)}
    alice = next(n for n, (e, _s) in lab.accounts().items() if e == "E100")
    assert alice == "alice"
    assert orphans == {
        ("orphan_account", "alice2",
         "correlates by mail->email to an identity that already has account "
         f"{lab.target.account('alice').native_id}", ()),  # type: ignore[union-attr]
        ("orphan_account", "svc-backup", "no correlation rule matched",
         ("g-finance", "g-vpn")),
    }
    assert run.counts["orphans"] == 2


def test_aggregation_records_memberships_as_aggregation_assignments_without_provisioning(
        lab: Lab) -> None:
    _prefill(lab)

    run = lab.aggregate()

    # Erin already held g-vpn; Dave is terminated; svc-backup belongs to nobody.
    assert lab.assignments() == {
        ("E100", "g-vpn", "aggregation"),
        ("E200", "g-vpn", "aggregation"),
        ("E300", "g-finance", "aggregation"),
        ("E500", "g-vpn", "admin"),
    }
    assert run.counts["assignments_created"] == 3
    assert run.counts["memberships_already_assigned"] == 1
    assert run.counts["memberships_of_terminated_identities"] == 1
    # The unknown group was imported, not requestable until someone reviews it.
    with unit_of_work(lab.factory) as session:
        finance = session.scalars(select(Entitlement).where(
            Entitlement.native_id == "g-finance")).one()
        assert (finance.name, finance.requestable) == ("Finance", False)
    assert run.counts["entitlements_created"] == 1
    # What aggregation found is on the target already: its operations are closed, and
    # nothing was sent.
    ops = lab.operations()
    assert sorted((lab.who(o.identity_id), o.action, lab.native(o.entitlement_id), o.state,
                   o.detail.get("note")) for o in ops) == [
        ("E100", "grant", "g-vpn", "succeeded", ALREADY_PRESENT),
        ("E200", "grant", "g-vpn", "succeeded", ALREADY_PRESENT),
        ("E300", "grant", "g-finance", "succeeded", ALREADY_PRESENT),
    ]
    assert lab.target.count("grant", None) == 0
    assert lab.target.count("create_account", None) == 0


def test_aggregating_again_changes_nothing_and_reports_the_orphans_again(lab: Lab) -> None:
    _prefill(lab)
    lab.aggregate()
    before = (lab.accounts(), lab.assignments(), len(lab.operations()))

    again = lab.aggregate()

    assert (lab.accounts(), lab.assignments(), len(lab.operations())) == before
    assert (again.counts["accounts_created"], again.counts["accounts_updated"],
            again.counts["assignments_created"], again.counts["entitlements_created"],
            again.counts["orphans"]) == (0, 0, 0, 0, 2)


def test_accounts_gone_or_disabled_on_the_target_are_marked_so(lab: Lab) -> None:
    _prefill(lab)
    lab.aggregate()
    bob = lab.target.account("bob")
    alice = lab.target.account("alice")
    assert bob is not None and alice is not None
    del lab.target.accounts[bob.native_id]
    lab.target.accounts[alice.native_id].enabled = False

    run = lab.aggregate()

    accounts = lab.accounts()
    assert (accounts["bob"], accounts["alice"]) == (("E200", "deleted"), ("E100", "disabled"))
    assert (run.counts["accounts_gone"], run.counts["accounts_updated"]) == (1, 1)


def test_an_unreachable_target_fails_the_run_and_changes_nothing(lab: Lab) -> None:
    _prefill(lab)
    lab.target.fail_next(TargetUnavailable("directory refused the connection"))

    run = lab.aggregate()

    assert run.state == "failed"
    assert run.error == "system_unavailable: directory refused the connection"
    assert run.counts == {"error_category": "system_unavailable", "transient": True}
    assert lab.accounts() == {}
    assert lab.assignments() == {("E500", "g-vpn", "admin")}


def test_correlation_rules_come_from_the_settings(lab: Lab) -> None:
    lab.person("E1", email="one@example.com", uid="u-one")
    lab.person("E2", email="two@example.com", uid="shared")
    lab.person("E3", email="three@example.com", uid="shared")
    lab.settings(settings={"correlation": [
        {"attribute": "login", "identity_field": "attributes.uid"},
        {"attribute": "username", "identity_field": "email"},
    ]})
    lab.target.add_account("acct-1", {"login": "U-ONE", "employeeNumber": "E2"})
    lab.target.add_account("acct-2", {"login": "shared"})
    lab.target.add_account("three@example.com", {"login": "shared"})

    run = lab.aggregate()

    assert lab.accounts() == {
        "acct-1": ("E1", "active"),            # the first rule; employeeNumber is no rule
        "acct-2": (None, "active"),            # two identities share uid "shared"
        "three@example.com": ("E3", "active"),  # ambiguous uid, then the login name
    }
    reasons = {d.detail["username"]: d.detail["reason"] for d in lab.drift(run.id)}
    assert reasons == {"acct-2": "ambiguous: several identities match login->attributes.uid"}


@pytest.mark.parametrize(("rules", "fields"), [
    ([], ["settings.correlation"]),
    ([{"attribute": "mail"}], ["settings.correlation[0].identity_field"]),
    ([{"attribute": "", "identity_field": "phone"}, "mail"],
     ["settings.correlation[0].attribute", "settings.correlation[0].identity_field",
      "settings.correlation[1]"]),
])
def test_malformed_correlation_rules_are_refused(lab: Lab, rules: object,
                                                 fields: list[str]) -> None:
    lab.settings(settings={"correlation": rules})
    with pytest.raises(InvalidInput) as caught:
        lab.aggregate()
    assert [e.field for e in caught.value.errors] == fields
