"""SCIM filters evaluated over representations: RFC 7644 §3.4.2.2's examples and more."""

from __future__ import annotations

from typing import Any

import pytest

from idgov.scim import schemas
from idgov.scim.errors import ScimError
from idgov.scim.filter import check, matches, parse_filter

ENT = schemas.ENTERPRISE

BJENSEN: dict[str, Any] = {
    "schemas": [schemas.USER, ENT],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "bjensen",
    "userName": "bjensen",
    "name": {"familyName": "O'Malley", "givenName": "Barbara", "formatted": "Ms. Barbara"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    "addresses": [{"type": "work", "locality": "Hollywood"}],
    ENT: {"employeeNumber": "701984", "department": "Tour Operations",
          "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
    "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
             "lastModified": "2011-05-13T04:42:34Z"},
}


@pytest.mark.parametrize(("text", "expected"), [
    # RFC 7644 §3.4.2.2 examples
    ('userName eq "bjensen"', True),
    ('name.familyName co "O\'Malley"', True),
    ('userName sw "J"', False),
    ('userName sw "b"', True),
    ("title pr", True),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True),
    ('meta.lastModified gt "2011-05-13T04:42:33Z"', True),
    ('title pr and userType eq "Employee"', True),
    ('title pr or userType eq "Intern"', True),
    ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', False),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
     True),
    ('userType ne "Employee" and not (emails co "example.com" or emails.value co '
     '"example.org")', False),
    ('userType eq "Employee" and (emails.type eq "work")', True),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True),
    ('emails[type eq "work" and value co "@example.com"] or '
     'ims[type eq "xmpp" and value co "@foo.com"]', True),
    # case-insensitive names and values (caseExact false), case-exact id/externalId
    ('USERNAME eq "BJENSEN"', True),
    ('externalId eq "BJENSEN"', False),
    ('externalId eq "bjensen"', True),
    ('userName ew "SEN"', True),
    ('userName ne "bjensen"', False),
    ('nickName pr', False),
    # the enterprise extension by its URN
    (f'{ENT}:employeeNumber eq "701984"', True),
    (f'{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"', True),
    (f'{ENT}:department sw "tour"', True),
    # Entra's form of a value filter with a sub-attribute
    ('emails[type eq "work"].value eq "bjensen@example.com"', True),
    ('addresses[type eq "work"].locality eq "hollywood"', True),
    ("active eq true", True),
    ("active eq false", False),
    ("not (active eq true)", False),
])
def test_filter_matches_as_rfc_7644_says(text: str, expected: bool) -> None:
    if "ims[" in text or "schemas eq" in text or "nickName" in text:
        # Attributes this service does not define are refused, not silently false.
        with pytest.raises(ScimError) as err:
            check(parse_filter(text), schemas.USER_KIND)
        assert err.value.scim_type == "invalidFilter"
        return
    check(parse_filter(text), schemas.USER_KIND)
    assert matches(parse_filter(text), BJENSEN, schemas.USER_KIND) is expected


@pytest.mark.parametrize("text", [
    'userName eq', 'userName xx "a"', '(userName eq "a"', 'userName eq "a" and',
    'active gt true', 'meta.lastModified gt "yesterday"', 'meta.created co "2010"',
])
def test_malformed_filters_are_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as err:
        matches(parse_filter(text), BJENSEN, schemas.USER_KIND)
    assert err.value.status == 400
    assert err.value.scim_type == "invalidFilter"


def test_group_members_filter() -> None:
    group = {"schemas": [schemas.GROUP], "id": "g1", "displayName": "Tour Guides",
             "members": [{"value": "u1", "display": "Babs"}]}
    assert matches(parse_filter('members[value eq "u1"]'), group, schemas.GROUP_KIND)
    assert matches(parse_filter('displayName eq "tour guides"'), group, schemas.GROUP_KIND)
    assert not matches(parse_filter('members.value eq "u2"'), group, schemas.GROUP_KIND)
