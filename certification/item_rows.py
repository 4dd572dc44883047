"""Review item rows from assignment rows, in the database's own text form.

A chunk of assignments (stored ids, as :func:`certification.writer.id_text` gives them) and
its look-ups (:class:`Lookups`, loaded by generation with a few queries) become tuples in
:data:`FIELDS` order, ready for :meth:`certification.writer.ItemWriter.submit`. Everything an
item shares with others is computed once and kept: per role or entitlement
(:class:`certification.generation_facts.ItemPlan`), per person (the reviewer when the rule
settles before any owner step), per (peer group, item) the peers' share, per grant instant
the "granted" part. The context JSON is joined from those parts: the same document
``json.dumps`` of the context dict writes, at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from certification.context import PeerTable, iso
from certification.generation_facts import DUMPS, Catalog, People
from certification.scoping import Reviewer, ReviewerRule, identity_reviewer, resolve_reviewer
from certification.writer import ItemIds, canonical

FIELDS = ("id", "assignment_id", "identity_id", "role_id", "entitlement_id", "application_id",
          "source", "risk", "privileged", "sod_conflict", "reviewer_id", "reviewer_group_id",
          "original_reviewer_id", "context")
# An assignment row as generation streams it: stored ids, raw instants.
AssignmentRow = tuple[str, str, str | None, str | None, str, str | None, Any, str | None, Any,
                      str | None]
_MOD = 2**256
_UNSET = Reviewer(None, None, "unset")
_NONE: dict[int, int] = {}


@dataclass
class Tally:
    """The counts of a generation, and the digest of its items."""

    items: int = 0
    unresolved: int = 0
    sod_conflicts: int = 0
    privileged: int = 0
    high_risk: int = 0
    digest: int = 0
    reviewers: set[Hashable] = field(default_factory=set)
    groups: set[Hashable] = field(default_factory=set)
    by_rule: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "reviewers": len(self.reviewers),
                "reviewer_groups": len(self.groups), "unresolved": self.unresolved,
                "by_rule": dict(sorted(self.by_rule.items())),
                "sod_conflicts": self.sod_conflicts, "privileged": self.privileged,
                "high_risk": self.high_risk, "pending": self.items,
                "items_digest": f"{self.digest % _MOD:064x}"}


@dataclass
class Lookups:
    """What one chunk needs from the database beyond its rows, keyed by stored ids."""

    requests: dict[str, dict[str, Any]]  # request line -> request, line, approvers
    sod: dict[Hashable, list[dict[str, Any]]]  # assignment -> violated rules
    signed_in: dict[tuple[Hashable, Hashable], str]  # (identity, application) -> instant


class RowBuilder:
    """Turns chunks of assignment rows into review item rows, counting as it goes."""

    def __init__(self, *, catalog: Catalog, people: People, peers: PeerTable,
                 rule: ReviewerRule, ids: ItemIds, postgres: bool,
                 instant: Callable[[Any], Any]) -> None:
        self.catalog, self.people, self.peers, self.rule = catalog, people, peers, rule
        self.ids, self.postgres = ids, postgres
        self.instant = instant  # a raw instant from the driver -> aware UTC datetime
        self.tally = Tally()
        self._person: dict[str, Reviewer | None] = {}
        self._granted: dict[tuple[str, Any, str | None], str] = {}
        self._certified: dict[tuple[Any, str | None], str] = {}
        self._counts = peers.counts  # keyed by stored item id (PeerTable.load(stored=))
        self._sizes = peers.group_sizes
        self._shares: dict[tuple[int, int], str] = {}
        self._canonical: dict[Hashable, str] = {}

    def _stamp(self, raw: Any) -> str | None:
        return iso(self.instant(raw))

    def granted(self, source: str, valid_from: Any, by: str | None) -> str:
        """The "granted" part without a request: ``{"source", "at", "by"}`` (memoised)."""
        key = (source, valid_from, by)
        found = self._granted.get(key)
        if found is None:
            if len(self._granted) > 100_000:
                self._granted.clear()
            found = self._granted[key] = DUMPS(
                {"source": source, "at": self._stamp(valid_from), "by": by})
        return found

    def certified(self, at: Any, by: str | None) -> str:
        key = (at, by)
        found = self._certified.get(key)
        if found is None:
            if len(self._certified) > 100_000:
                self._certified.clear()
            found = self._certified[key] = DUMPS({"at": self._stamp(at), "by": by})
        return found

    def peer_share(self, identity: str, item: str | None) -> str:
        """The "peers" part (:meth:`PeerTable.share`), from the group's counts keyed by
        stored item id and kept per (peers, holding)."""
        group = self.people.group_of.get(identity)
        if group is None:
            return "null"
        mine = 1 if identity in self.people.active else 0
        key = (self._sizes.get(group, 0) - mine,
               max(0, self._counts.get(item, _NONE).get(group, 0) - mine))
        found = self._shares.get(key)
        if found is None:
            found = self._shares[key] = DUMPS(PeerTable.share_of(*key))
        return found

    def person_reviewer(self, identity: str) -> Reviewer | None:
        found = self._person.get(identity, _UNSET)
        if found is _UNSET:
            people = self.people
            found = identity_reviewer(self.rule, identity_id=identity,
                                      manager_of=people.manager.get,
                                      is_active=people.active.__contains__)
            self._person[identity] = found
        return found

    def _canon(self, value: Hashable | None) -> str:
        if value is None:
            return "None"
        found = self._canonical.get(value)
        if found is None:
            found = self._canonical[value] = canonical(str(value))
        return found

    def items(self, rows: Sequence[AssignmentRow], found: Lookups) -> list[tuple[Any, ...]]:
        """The review item rows (:data:`FIELDS`) of ``rows``, all in scope."""
        plan_of, people, rule, tally = self.catalog.plan, self.people, self.rule, self.tally
        requests, sod, signed_in = found.requests, found.sod, found.signed_in
        person_reviewer, granted_of, peer_share = self.person_reviewer, self.granted, \
            self.peer_share
        manager_of, is_active = people.manager.get, people.active.__contains__
        next_id, postgres, canon = self.ids.next, self.postgres, self._canon
        sha256, from_bytes = hashlib.sha256, int.from_bytes
        rules: dict[str | None, str] = {None: "null"}
        rules.update((step, DUMPS(step)) for step in (*rule.chain, "group"))
        by_rule, reviewers, groups = tally.by_rule, tally.reviewers, tally.groups
        digest = count = unresolved = conflicts_n = privileged_n = high_n = 0
        out: list[tuple[Any, ...]] = []
        for a_id, identity, role, ent, source, line, valid_from, by, cert_at, cert_by in rows:
            plan = plan_of(role, ent)
            facts = plan.facts
            reviewer = person_reviewer(identity)
            if reviewer is None:
                reviewer = resolve_reviewer(rule, identity_id=identity, manager_of=manager_of,
                                            is_active=is_active, item_owner=plan.owner,
                                            application_owner=plan.application_owner)
            if line is not None and line in requests:
                granted = DUMPS({"source": source, "at": self._stamp(valid_from), "by": by,
                                 **requests[line]})
            else:
                granted = granted_of(source, valid_from, by)
            conflicts = sod.get(a_id)
            if conflicts:
                conflict = any(not c["mitigated"] for c in conflicts)
                sod_text = DUMPS(conflicts)
            else:
                conflict, sod_text = False, "[]"
            app = plan.application
            seen = signed_in.get((identity, app)) if app is not None and signed_in else None
            context = (f'{plan.head}{granted}, "last_certified": '
                       f'{"null" if cert_at is None else self.certified(cert_at, cert_by)}'
                       f'{plan.middle}{sod_text}, "peers": {peer_share(identity, role or ent)}, '
                       f'"last_sign_in": {"null" if seen is None else DUMPS(seen)}, '
                       f'"reviewer_rule": {rules[reviewer.rule]}}}')
            item_id = next_id()
            reviewer_id, group_id = reviewer.reviewer_id, reviewer.group_id
            out.append((item_id, a_id, identity, role, ent, app, source, facts.risk,
                        facts.privileged, conflict, reviewer_id, group_id, reviewer_id,
                        context))
            digest += from_bytes(sha256(
                f"{item_id}|{a_id if postgres else canonical(a_id)}|"
                f"{canon(reviewer_id)}|{canon(group_id)}".encode()).digest())
            count += 1
            if reviewer_id is not None:
                reviewers.add(reviewer_id)
            elif group_id is not None:
                groups.add(group_id)
            else:
                unresolved += 1
            name = reviewer.rule or "none"
            by_rule[name] = by_rule.get(name, 0) + 1
            conflicts_n += conflict
            privileged_n += facts.privileged
            high_n += plan.high
        tally.items += count
        tally.digest += digest
        tally.unresolved += unresolved
        tally.sod_conflicts += conflicts_n
        tally.privileged += privileged_n
        tally.high_risk += high_n
        return out
