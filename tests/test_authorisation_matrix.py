"""The authorisation matrix: for every route and every service role, allowed or refused.

The table is written out here by hand, not derived from the code: it is the specification.
A route the application serves that the table lacks (or the reverse) fails the test, so a
new endpoint cannot ship without a decision on who may call it.

Authentication is replaced by a caller holding exactly one service role; what is checked is
the route-level decision (403 or not). Row rules (a manager sees only their reports) are
tested with each module.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idgov.auth.caller import Caller
from idgov.web.deps import get_caller

ROLES = ("administrator", "auditor", "hr-system", "requester", "manager", "approver", "owner")

# One column per role, in the order of ROLES: A = allowed, . = refused with 403.
#                                                         adm aud hr  req mgr apr own
MATRIX_TEXT = """
GET    /me                                                 A   A   A   A   A   A   A
POST   /service-principals                                 A   .   .   .   .   .   .
GET    /service-principals                                 A   A   .   .   .   .   .
GET    /service-principals/{principal_id}                  A   A   .   .   .   .   .
PATCH  /service-principals/{principal_id}                  A   .   .   .   .   .   .
POST   /tokens                                             A   .   .   .   .   .   .
GET    /tokens                                             A   A   .   .   .   .   .
GET    /tokens/{token_id}                                  A   A   .   .   .   .   .
POST   /tokens/{token_id}/revoke                           A   .   .   .   .   .   .
POST   /service-role-grants                                A   .   .   .   .   .   .
GET    /service-role-grants                                A   A   .   .   .   .   .
DELETE /service-role-grants/{grant_id}                     A   .   .   .   .   .   .
GET    /identities                                         A   A   A   A   A   A   A
POST   /identities                                         A   .   A   .   .   .   .
GET    /identities/{identity_id}                           A   A   A   A   A   A   A
PATCH  /identities/{identity_id}                           A   .   A   .   .   .   .
DELETE /identities/{identity_id}                           A   .   A   .   .   .   .
GET    /identities/{identity_id}/access                    A   A   A   A   A   A   A
GET    /groups                                             A   A   A   .   .   .   .
POST   /groups                                             A   .   .   .   .   .   .
GET    /groups/{group_id}                                  A   A   A   .   .   .   .
PATCH  /groups/{group_id}                                  A   .   .   .   .   .   .
DELETE /groups/{group_id}                                  A   .   .   .   .   .   .
GET    /groups/{group_id}/members                          A   A   A   .   .   .   .
POST   /groups/{group_id}/members                          A   .   .   .   .   .   .
DELETE /groups/{group_id}/members/{identity_id}            A   .   .   .   .   .   .
GET    /applications                                       A   A   .   A   A   A   A
POST   /applications                                       A   .   .   .   .   .   .
GET    /applications/{application_id}                      A   A   .   A   A   A   A
PATCH  /applications/{application_id}                      A   .   .   .   .   .   .
DELETE /applications/{application_id}                      A   .   .   .   .   .   .
GET    /accounts                                           A   A   .   .   .   .   .
POST   /accounts                                           A   .   .   .   .   .   .
GET    /accounts/{account_id}                              A   A   .   .   .   .   .
PATCH  /accounts/{account_id}                              A   .   .   .   .   .   .
DELETE /accounts/{account_id}                              A   .   .   .   .   .   .
GET    /entitlements                                       A   A   .   A   A   A   A
POST   /entitlements                                       A   .   .   .   .   .   .
GET    /entitlements/{entitlement_id}                      A   A   .   A   A   A   A
PATCH  /entitlements/{entitlement_id}                      A   .   .   .   .   .   .
DELETE /entitlements/{entitlement_id}                      A   .   .   .   .   .   .
GET    /roles                                              A   A   .   A   A   A   A
POST   /roles                                              A   .   .   .   .   .   .
GET    /roles/{role_id}                                    A   A   .   A   A   A   A
PATCH  /roles/{role_id}                                    A   .   .   .   .   .   .
DELETE /roles/{role_id}                                    A   .   .   .   .   .   .
POST   /roles/{role_id}/included-roles                     A   .   .   .   .   .   .
DELETE /roles/{role_id}/included-roles/{child_role_id}     A   .   .   .   .   .   .
POST   /roles/{role_id}/entitlements                       A   .   .   .   .   .   .
DELETE /roles/{role_id}/entitlements/{entitlement_id}      A   .   .   .   .   .   .
GET    /sod-rules                                          A   A   .   .   .   .   A
POST   /sod-rules                                          A   .   .   .   .   .   .
GET    /sod-rules/{rule_id}                                A   A   .   .   .   .   A
PATCH  /sod-rules/{rule_id}                                A   .   .   .   .   .   .
DELETE /sod-rules/{rule_id}                                A   .   .   .   .   .   .
GET    /sod-rules/{rule_id}/exceptions                     A   A   .   .   .   .   A
POST   /sod-rules/{rule_id}/exceptions                     A   .   .   .   .   .   .
POST   /sod-rules/{rule_id}/exceptions/{exception_id}/revoke A .   .   .   .   .   .
GET    /assignments                                        A   A   .   .   A   .   A
POST   /assignments                                        A   .   .   .   .   .   .
GET    /assignments/{assignment_id}                        A   A   .   .   A   .   A
POST   /assignments/{assignment_id}/revoke                 A   .   .   .   .   .   .
GET    /request-types                                      A   A   .   A   A   A   A
POST   /request-types                                      A   .   .   .   .   .   .
GET    /request-types/{request_type_id}                    A   A   .   A   A   A   A
PATCH  /request-types/{request_type_id}                    A   .   .   .   .   .   .
DELETE /request-types/{request_type_id}                    A   .   .   .   .   .   .
POST   /requests                                           .   .   .   A   A   A   A
GET    /requests                                           A   A   .   A   A   A   A
GET    /requests/{request_id}                              A   A   .   A   A   A   A
POST   /requests/{request_id}/submit                       .   .   .   A   A   A   A
POST   /requests/{request_id}/cancel                       .   .   .   A   A   A   A
GET    /approvals                                          A   A   .   A   A   A   A
GET    /approvals/{step_id}                                A   A   .   A   A   A   A
POST   /approvals/{step_id}/decision                       .   .   .   A   A   A   A
POST   /delegations                                        .   .   .   A   A   A   A
GET    /delegations                                        A   A   .   A   A   A   A
POST   /delegations/{delegation_id}/revoke                 .   .   .   A   A   A   A
PUT    /approval-authorities/{identity_id}                 A   .   .   .   .   .   .
GET    /approval-authorities                               A   A   .   .   .   .   .
DELETE /approval-authorities/{identity_id}                 A   .   .   .   .   .   .
GET    /sod/violations                                     A   A   .   .   .   .   .
POST   /roles/{role_id}/impact                             A   .   .   .   .   .   .
POST   /applications/{application_id}/aggregate            A   .   .   .   .   .   .
POST   /applications/{application_id}/reconcile            A   .   .   .   .   .   .
GET    /reconciliation/runs                                A   A   .   .   .   .   .
GET    /reconciliation/runs/{run_id}                       A   A   .   .   .   .   .
GET    /reconciliation/runs/{run_id}/drift                 A   A   .   .   .   .   .
GET    /provisioning/operations                            A   A   .   .   .   .   .
GET    /provisioning/operations/{operation_id}             A   A   .   .   .   .   .
GET    /fulfilment/tasks                                   A   A   .   A   A   A   A
GET    /fulfilment/tasks/{task_id}                         A   A   .   A   A   A   A
POST   /fulfilment/tasks/{task_id}/complete                .   .   .   A   A   A   A
POST   /fulfilment/tasks/{task_id}/fail                    .   .   .   A   A   A   A
GET    /provisioning/failed                                A   A   .   A   A   A   A
POST   /provisioning/operations/{operation_id}/retry       A   .   .   .   .   .   .
POST   /provisioning/operations/{operation_id}/cancel      A   .   .   .   .   .   .
POST   /provisioning/operations/{operation_id}/resolve     A   .   .   .   .   .   .
GET    /applications/{application_id}/health               A   A   .   .   .   .   .
GET    /audit/events                                       A   A   .   .   .   .   .
GET    /audit/events/{event_id}                            A   A   .   .   .   .   .
GET    /audit/verify                                       A   A   .   .   .   .   .
GET    /audit/export                                       A   A   .   .   .   .   .
GET    /me/notifications                                   .   .   .   A   A   A   A
POST   /me/notifications/{notification_id}/read            .   .   .   A   A   A   A
GET    /birthright-rules                                   A   A   .   .   .   .   .
POST   /birthright-rules                                   A   .   .   .   .   .   .
POST   /birthright-rules/preview                           A   A   .   .   .   .   .
GET    /birthright-rules/{rule_id}                         A   A   .   .   .   .   .
PATCH  /birthright-rules/{rule_id}                         A   .   .   .   .   .   .
DELETE /birthright-rules/{rule_id}                         A   .   .   .   .   .   .
GET    /hr/sources                                         A   A   A   .   .   .   .
POST   /hr/sources                                         A   .   .   .   .   .   .
GET    /hr/sources/{source_id}                             A   A   A   .   .   .   .
PATCH  /hr/sources/{source_id}                             A   .   .   .   .   .   .
DELETE /hr/sources/{source_id}                             A   .   .   .   .   .   .
POST   /hr/sources/{source_id}/upload                      A   .   A   .   .   .   .
POST   /hr/sources/{source_id}/push                        A   .   A   .   .   .   .
GET    /hr/runs                                            A   A   A   .   .   .   .
GET    /hr/runs/{run_id}                                   A   A   A   .   .   .   .
GET    /hr/runs/{run_id}/changes                           A   A   A   .   .   .   .
POST   /hr/runs/{run_id}/confirm                           A   .   .   .   .   .   .
POST   /hr/runs/{run_id}/reject                            A   .   .   .   .   .   .
GET    /review-flags                                       A   A   .   A   A   A   A
GET    /review-flags/{flag_id}                             A   A   .   A   A   A   A
POST   /review-flags/{flag_id}/decision                    A   .   .   A   A   A   A
POST   /certification/campaigns                            A   .   .   .   .   .   .
GET    /certification/campaigns                            A   A   .   A   A   A   A
GET    /certification/campaigns/{campaign_id}              A   A   .   A   A   A   A
POST   /certification/campaigns/{campaign_id}/launch       A   .   .   .   .   .   .
POST   /certification/campaigns/{campaign_id}/cancel       A   .   .   .   .   .   .
GET    /certification/campaigns/{campaign_id}/items        A   A   .   A   A   A   A
GET    /certification/items/{item_id}                      A   A   .   A   A   A   A
POST   /certification/items/{item_id}/decision             A   .   .   A   A   A   A
POST   /certification/campaigns/{campaign_id}/bulk-decision A  .   .   A   A   A   A
POST   /certification/items/{item_id}/reassign             A   .   .   A   A   A   A
POST   /certification/campaigns/{campaign_id}/sign-off     A   .   .   A   A   A   A
GET    /certification/campaigns/{campaign_id}/progress     A   A   .   A   A   A   A
GET    /certification/campaigns/{campaign_id}/rubber-stamping A A  .   .   .   .   .
GET    /certification/campaigns/{campaign_id}/report       A   A   .   .   .   .   .
POST   /certification/schedules                            A   .   .   .   .   .   .
GET    /certification/schedules                            A   A   .   .   .   .   .
GET    /certification/schedules/{schedule_id}              A   A   .   .   .   .   .
PATCH  /certification/schedules/{schedule_id}              A   .   .   .   .   .   .
POST   /certification/schedules/{schedule_id}/run          A   .   .   .   .   .   .
GET    /certification/schedules/{schedule_id}/campaigns    A   A   .   .   .   .   .
GET    /siem/events                                        A   A   .   .   .   .   .
GET    /siem/sinks                                         A   A   .   .   .   .   .
POST   /siem/sinks                                         A   .   .   .   .   .   .
GET    /siem/sinks/{sink_id}                               A   A   .   .   .   .   .
PATCH  /siem/sinks/{sink_id}                               A   .   .   .   .   .   .
DELETE /siem/sinks/{sink_id}                               A   .   .   .   .   .   .
GET    /reports                                            A   A   .   .   .   .   .
GET    /reports/public-key                                 A   A   .   .   .   .   .
GET    /reports/exports                                    A   A   .   .   .   .   .
GET    /reports/exports/{export_id}                        A   A   .   .   .   .   .
GET    /reports/exports/{export_id}/manifest               A   A   .   .   .   .   .
GET    /reports/{name}/export                              A   A   .   .   .   .   .
GET    /scim/v2/ServiceProviderConfig                      A   .   A   .   .   .   .
GET    /scim/v2/ResourceTypes                              A   .   A   .   .   .   .
GET    /scim/v2/ResourceTypes/{name}                       A   .   A   .   .   .   .
GET    /scim/v2/Schemas                                    A   .   A   .   .   .   .
GET    /scim/v2/Schemas/{schema_id}                        A   .   A   .   .   .   .
GET    /scim/v2/Users                                      A   .   A   .   .   .   .
POST   /scim/v2/Users/.search                              A   .   A   .   .   .   .
POST   /scim/v2/Users                                      A   .   A   .   .   .   .
GET    /scim/v2/Users/{user_id}                            A   .   A   .   .   .   .
PUT    /scim/v2/Users/{user_id}                            A   .   A   .   .   .   .
PATCH  /scim/v2/Users/{user_id}                            A   .   A   .   .   .   .
DELETE /scim/v2/Users/{user_id}                            A   .   A   .   .   .   .
GET    /scim/v2/Groups                                     A   .   A   .   .   .   .
POST   /scim/v2/Groups/.search                             A   .   A   .   .   .   .
POST   /scim/v2/Groups                                     A   .   A   .   .   .   .
GET    /scim/v2/Groups/{group_id}                          A   .   A   .   .   .   .
PUT    /scim/v2/Groups/{group_id}                          A   .   A   .   .   .   .
PATCH  /scim/v2/Groups/{group_id}                          A   .   A   .   .   .   .
DELETE /scim/v2/Groups/{group_id}                          A   .   A   .   .   .   .
"""

# Served to anyone, without credentials.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
# Served without credentials because the body carries a one-time token that is the credential
# (a joiner's day-one link): an unknown token is 404, whoever calls.
TOKEN_ROUTES = {("POST", "/day-one/lookup"), ("POST", "/day-one/redeem")}


def _parse() -> dict[tuple[str, str], dict[str, bool]]:
    table: dict[tuple[str, str], dict[str, bool]] = {}
    for line in MATRIX_TEXT.strip().splitlines():
        method, path, *marks = line.split()
        assert len(marks) == len(ROLES), line
        assert (method, path) not in table, f"duplicate row {method} {path}"
        table[(method, path)] = {role: mark == "A" for role, mark in zip(ROLES, marks,
                                                                          strict=True)}
    return table


MATRIX = _parse()


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the application documents in its OpenAPI document."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


@pytest.fixture
def role_client(app: FastAPI) -> Iterator[tuple[TestClient, list[str]]]:
    current: list[str] = ["administrator"]

    def caller() -> Caller:
        return Caller.build(kind="oidc", name=f"matrix-{current[0]}",
                            roles=frozenset({current[0]}), identity_id=uuid.uuid4())

    app.dependency_overrides[get_caller] = caller
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, current
    app.dependency_overrides.clear()


def test_every_served_route_is_in_the_matrix(app: FastAPI) -> None:
    served = served_routes(app) - PUBLIC - TOKEN_ROUTES
    assert served - set(MATRIX) == set(), "routes served but missing from the matrix"
    assert set(MATRIX) - served == set(), "matrix rows for routes the app does not serve"


def test_every_route_allows_exactly_the_roles_in_the_matrix(
    role_client: tuple[TestClient, list[str]],
) -> None:
    client, current = role_client
    wrong: list[str] = []
    for (method, path), allowed in sorted(MATRIX.items()):
        url = _url(path)
        for role in ROLES:
            current[0] = role
            body = {} if method in {"POST", "PATCH", "PUT"} else None
            resp = client.request(method, url, json=body)
            refused = resp.status_code == 403
            if resp.status_code == 401 or resp.status_code >= 500:
                wrong.append(f"{method} {path} as {role}: unexpected {resp.status_code}")
            elif allowed[role] == refused:
                want = "allowed" if allowed[role] else "403"
                wrong.append(f"{method} {path} as {role}: want {want}, got {resp.status_code}")
    assert wrong == []


def test_public_routes_need_no_credentials(client: TestClient) -> None:
    for method, path in PUBLIC:
        assert client.request(method, path).status_code == 200


def test_token_routes_refuse_an_unknown_token_without_credentials(client: TestClient) -> None:
    for method, path in sorted(TOKEN_ROUTES):
        body = {"token": "x" * 43}
        if path.endswith("/redeem"):
            body["password"] = "long enough passphrase 1"
        resp = client.request(method, path, json=body)
        assert resp.status_code == 404, f"{method} {path}: {resp.status_code}"


def test_no_credentials_is_401_on_every_protected_route(client: TestClient) -> None:
    for method, path in sorted(MATRIX):
        body = {} if method in {"POST", "PATCH", "PUT"} else None
        resp = client.request(method, _url(path), json=body)
        assert resp.status_code == 401, f"{method} {path}: {resp.status_code}"
        # SCIM answers errors in its own format (RFC 7644 section 3.12).
        media = ("application/scim+json" if path.startswith("/scim/v2/")
                 else "application/problem+json")
        assert resp.headers["content-type"].startswith(media), f"{method} {path}"
