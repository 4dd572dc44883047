"""The audit scenario's certification part: a manager campaign created, launched, decided
(one item, in bulk, reassigned), signed off; a spare campaign cancelled.

Called by :func:`tests.audit_scenario.run_scenario` with people it made: ``manager`` reviews
``report``'s access; ``other`` takes over one item.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from idgov.assignments.service import grant
from idgov.db.session import unit_of_work
from idgov.types import Actor

if TYPE_CHECKING:
    from tests.audit_scenario import AuditedApi


def run_certification_scenario(api: AuditedApi, *, manager: tuple[str, str], report: str,
                               other: str, entitlements: list[str]) -> None:
    """Every mutating certification route once."""
    c = api.call
    with unit_of_work(api.factory) as session:
        for entitlement in entitlements:
            grant(session, identity_id=uuid.UUID(report), entitlement_id=uuid.UUID(entitlement),
                  source="admin", reason="for the review", valid_from=None, valid_until=None,
                  actor=Actor.system("setup"), clock=api.clock)
    api.new_events()  # the set-up's own events
    deadline = (api.clock.now() + timedelta(days=14)).isoformat()
    body = {"name": "Q1 manager review", "kind": "manager", "deadline_at": deadline,
            "scope": {"identity_ids": [report]}}
    campaign = c("POST", "/certification/campaigns", json=body, action="campaign.create",
                 object_type="campaign", change="create", shows={"state": "draft"})["id"]
    spare = c("POST", "/certification/campaigns", json=body | {"name": "Spare review"},
              action="campaign.create", object_type="campaign", change="create")["id"]
    c("POST", "/certification/campaigns/{campaign_id}/cancel", path={"campaign_id": spare},
      json={"reason": "created twice"}, action="campaign.cancel", object_type="campaign",
      change="update", shows={"state": "cancelled"}, was={"state": "draft"})
    at = {"campaign_id": campaign}
    c("POST", "/certification/campaigns/{campaign_id}/launch", path=at,
      action="campaign.launch", object_type="campaign", change="update",
      shows={"state": "active"}, was={"state": "draft"})
    headers = {"Authorization": f"Bearer person:{manager[0]}"}
    page = api.client.get(f"/certification/campaigns/{campaign}/items", headers=headers,
                          params={"limit": 500})
    assert page.status_code == 200, page.text
    items = [item["id"] for item in page.json()["items"]]
    assert len(items) >= 3, items
    first, moved, rest = items[0], items[1], items[2:]
    c("POST", "/certification/items/{item_id}/decision", path={"item_id": first},
      object_id=first, json={"decision": "certify", "comment": "still needed"},
      action="review_item.decide", object_type="review_item", change="update",
      shows={"decision": "certify"}, was={"decision": "pending"}, as_person=manager)
    c("POST", "/certification/items/{item_id}/reassign", path={"item_id": moved},
      object_id=moved, json={"to_identity_id": other, "comment": "knows this system"},
      action="review_item.reassign", object_type="review_item", change="update",
      shows={"reviewer_id": other}, as_person=manager)
    c("POST", "/certification/campaigns/{campaign_id}/bulk-decision", path=at,
      object_id=rest[0], json={"decision": "certify", "comment": "reviewed together",
                               "item_ids": rest},
      action="review_item.decide", object_type="review_item", change="update",
      shows={"decision": "certify"}, as_person=manager)
    c("POST", "/certification/campaigns/{campaign_id}/sign-off", path=at, object_id=campaign,
      action="review.sign_off", object_type="campaign", change="create",
      shows={"reviewer_id": manager[0]}, as_person=manager)
    schedule = c("POST", "/certification/schedules",
                 json={"name": "Quarterly manager review", "kind": "manager",
                       "scope": {"identity_ids": [manager[0]]}, "recurrence": "quarterly",
                       "time_zone": "Europe/Paris", "duration_days": 30},
                 action="campaign_schedule.create", object_type="campaign_schedule",
                 change="create", shows={"recurrence": "quarterly"})["id"]
    c("PATCH", "/certification/schedules/{schedule_id}", path={"schedule_id": schedule},
      json={"duration_days": 21, "description": "shorter"}, action="campaign_schedule.update",
      object_type="campaign_schedule", change="update", shows={"duration_days": 21},
      was={"duration_days": 30})
    c("POST", "/certification/schedules/{schedule_id}/run", path={"schedule_id": schedule},
      object_id=schedule, action="campaign_schedule.run", object_type="campaign_schedule",
      change="update")
