"""The PATCH engine: RFC 7644 §3.5.2's examples, and what Entra ID and Okta send."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from idgov.scim import schemas
from idgov.scim.errors import ScimError
from idgov.scim.patch import apply_patch

ENT = schemas.ENTERPRISE
MGR = "26118915-6090-4610-87e4-49d8ca9f808d"

USER: dict[str, Any] = {
    "schemas": [schemas.USER, ENT], "id": "u1", "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"}, "displayName": "Babs Jensen",
    "title": "Tour Guide", "active": True,
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    ENT: {"employeeNumber": "701984", "department": "Tours", "manager": {"value": MGR}},
}
GROUP: dict[str, Any] = {
    "schemas": [schemas.GROUP], "id": "g1", "displayName": "Tour Guides",
    "members": [{"value": "2819c223", "display": "Babs"}, {"value": "902c246b"}],
}


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [schemas.PATCH_OP], "Operations": list(operations)}


def patched(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    kind = schemas.GROUP_KIND if resource["schemas"] == [schemas.GROUP] else schemas.USER_KIND
    before = copy.deepcopy(resource)
    after = apply_patch(resource, ops(*operations), kind)
    assert resource == before  # the input is left alone
    return after


# (operations, what to look at, expected)
USER_CASES: list[tuple[list[dict[str, Any]], Any, Any]] = [
    # RFC 7644 §3.5.2.1 add: a value without path, attributes merged
    ([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}],
                              "title": "Senior Guide"}}],
     lambda u: ([e["value"] for e in u["emails"]], u["title"]),
     (["bjensen@example.com", "babs@jensen.org"], "Senior Guide")),
    # §3.5.2.3 replace a sub-attribute of a filtered value
    ([{"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"}],
     lambda u: u["emails"], [{"value": "b@example.com", "type": "work", "primary": True}]),
    # §3.5.2.2 remove a single-valued attribute
    ([{"op": "remove", "path": "title"}], lambda u: "title" in u, False),
    # remove the values a filter selects
    ([{"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'}],
     lambda u: u["emails"], []),
    # sub-attribute of a complex attribute; names in any case
    ([{"op": "replace", "path": "NAME.givenname", "value": "Babs"}],
     lambda u: u["name"], {"givenName": "Babs", "familyName": "Jensen"}),
    # Entra: capitalised op, string booleans
    ([{"op": "Replace", "path": "active", "value": "False"}], lambda u: u["active"], False),
    ([{"op": "Replace", "path": "active", "value": "True"}], lambda u: u["active"], True),
    # Entra: the manager as a plain id, by the extension's attribute path
    ([{"op": "Add", "path": f"{ENT}:manager", "value": "m2"}],
     lambda u: u[ENT]["manager"]["value"], "m2"),
    ([{"op": "Remove", "path": f"{ENT}:manager"}], lambda u: "manager" in u[ENT], False),
    ([{"op": "Replace", "path": f"{ENT}:department", "value": "Finance"}],
     lambda u: u[ENT]["department"], "Finance"),
    # Entra: a work address that does not exist yet is created from the filter
    ([{"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Paris"}],
     lambda u: u["addresses"], [{"type": "work", "locality": "Paris"}]),
    # Entra: several attributes without path, by their paths
    ([{"op": "Replace", "value": {"displayName": "B J", "name.familyName": "J",
                                  f"{ENT}:employeeNumber": "9"}}],
     lambda u: (u["displayName"], u["name"]["familyName"], u[ENT]["employeeNumber"]),
     ("B J", "J", "9")),
    # Okta: replace without path, a value object
    ([{"op": "replace", "value": {"active": False}}], lambda u: u["active"], False),
    ([{"op": "replace", "value": {"id": "u1", "userName": "babs",
                                  ENT: {"department": "Sales"}}}],
     lambda u: (u["userName"], u[ENT]["department"], u[ENT]["employeeNumber"]),
     ("babs", "Sales", "701984")),
]


@pytest.mark.parametrize(("operations", "look", "expected"), USER_CASES)
def test_user_patch(operations: list[dict[str, Any]], look: Any, expected: Any) -> None:
    assert look(patched(USER, *operations)) == expected


GROUP_CASES: list[tuple[list[dict[str, Any]], list[str]]] = [
    # RFC 7644 §3.5.2.1: add members
    ([{"op": "add", "path": "members", "value": [{"display": "Babs", "value": "2819c223"},
                                                 {"value": "aaaa"}]}],
     ["2819c223", "902c246b", "aaaa"]),
    # §3.5.2.2: remove one member by filter, all members
    ([{"op": "remove", "path": 'members[value eq "2819c223"]'}], ["902c246b"]),
    ([{"op": "remove", "path": "members"}], []),
    # §3.5.2.2: remove all then add (replace the list in two steps)
    ([{"op": "remove", "path": "members"},
      {"op": "add", "path": "members", "value": [{"value": "cccc"}]}], ["cccc"]),
    # §3.5.2.3: replace all members
    ([{"op": "replace", "path": "members", "value": [{"value": "dddd"}]}], ["dddd"]),
    # Entra: Add/Remove members with a value list
    ([{"op": "Add", "path": "members", "value": [{"value": "eeee"}]}],
     ["2819c223", "902c246b", "eeee"]),
    ([{"op": "Remove", "path": "members", "value": [{"value": "902c246b"}]}], ["2819c223"]),
]


@pytest.mark.parametrize(("operations", "members"), GROUP_CASES)
def test_group_member_patch(operations: list[dict[str, Any]], members: list[str]) -> None:
    assert [m["value"] for m in patched(GROUP, *operations).get("members", [])] == members


def test_okta_renames_a_group_with_its_id_in_the_value() -> None:
    after = patched(GROUP, {"op": "replace", "value": {"id": "g1", "displayName": "Guides"}})
    assert after["displayName"] == "Guides"


@pytest.mark.parametrize(("body", "scim_type"), [
    (ops({"op": "move", "path": "title"}), "invalidSyntax"),
    ({"schemas": [schemas.PATCH_OP], "Operations": []}, "invalidSyntax"),
    ({"schemas": ["urn:other"], "Operations": [{"op": "add", "value": {}}]}, "invalidSyntax"),
    (ops({"op": "remove"}), "noTarget"),
    (ops({"op": "replace", "path": 'emails[type eq "home" or primary eq false].value',
          "value": "x"}), "noTarget"),
    (ops({"op": "replace", "path": "id", "value": "x"}), "mutability"),
    (ops({"op": "replace", "path": "meta.created", "value": "x"}), "mutability"),
    (ops({"op": "replace", "path": "nickName", "value": "x"}), "invalidPath"),
    (ops({"op": "replace", "path": "emails[type eq", "value": "x"}), "invalidPath"),
    (ops({"op": "replace", "path": "active", "value": "maybe"}), "invalidValue"),
    (ops({"op": "add", "path": "title"}), "invalidValue"),
])
def test_bad_patches_are_refused(body: dict[str, Any], scim_type: str) -> None:
    with pytest.raises(ScimError) as err:
        apply_patch(USER, body, schemas.USER_KIND)
    assert (err.value.status, err.value.scim_type) == (400, scim_type)
