"""The settings of an LDAP application, read once and checked at construction (no I/O).

Settings (``Application.settings``)::

    url                  "ldap://host:389" or "ldaps://host:636" (required)
    start_tls            upgrade an ldap:// connection with StartTLS before binding (False)
    ca_file              PEM file of the CA(s) to trust for LDAPS/StartTLS (system store if absent)
    bind_dn              the service account (required; its password is the credential
                         "bind_password")
    base_dn              optional; relative OUs below are completed with it
    users_ou             where accounts are created (required)
    groups_ou            where groups are listed (required)
    user_object_classes  default inetOrgPerson, organizationalPerson, person, top
    rdn_attribute        default "uid"
    group_object_class   "groupOfNames" (member) or "groupOfUniqueNames" (uniqueMember)
    empty_group_member   the value that keeps a group valid once its last member is revoked
                         (both object classes require one); default: the group's own DN
    disable_method       "move" (to disabled_ou) or "attribute" (disable_attribute = {name: value})
    disabled_ou          required for "move"
    disable_attribute    required for "attribute", e.g. {"employeeType": "disabled"}
    identifying_attributes  attributes that tell one person's account from another's when a
                         create finds the name taken; default ["employeeNumber", "mail"]
    last_sign_in_attribute  e.g. "authTimestamp"; the capability is declared only with it
    pool_size            bound connections kept open (default 4)
    timeout_seconds      connect and receive timeout (default 10)
    page_size            server page size of the paged searches (default 500)
    initial_password     "random" (default): a new account gets a random userPassword that is
                         never stored, logged or returned (the person sets their own through
                         the directory's reset flow); "none": no password attribute at all
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import DataError

DEFAULT_USER_CLASSES = ("inetOrgPerson", "organizationalPerson", "person", "top")
GROUP_MEMBER_ATTRIBUTE = {"groupofnames": "member", "groupofuniquenames": "uniqueMember"}


@dataclass(frozen=True)
class LdapSettings:
    url: str
    use_ssl: bool
    start_tls: bool
    ca_file: str | None
    bind_dn: str
    users_ou: str
    groups_ou: str
    user_object_classes: tuple[str, ...]
    rdn_attribute: str
    group_object_class: str
    member_attribute: str
    empty_group_member: str | None
    disable_method: str
    disabled_ou: str | None
    disable_attribute: tuple[str, str] | None
    identifying_attributes: tuple[str, ...]
    last_sign_in_attribute: str | None
    pool_size: int
    timeout_seconds: float
    page_size: int
    random_initial: bool = True  # the "initial_password" setting is "random"

    @property
    def account_bases(self) -> tuple[str, ...]:
        """Where accounts live: the users OU, and the disabled OU for the move method."""
        if self.disable_method == "move" and self.disabled_ou:
            return (self.users_ou, self.disabled_ou)
        return (self.users_ou,)


def _under(base_dn: str | None, ou: str) -> str:
    """``ou`` completed with ``base_dn`` unless it already ends with it."""
    if not base_dn or ou.casefold().endswith(base_dn.casefold()):
        return ou
    return f"{ou},{base_dn}"


def _required(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"LDAP setting {name!r} is required")
    return value.strip()


def parse_settings(settings: Mapping[str, Any]) -> LdapSettings:
    """Check and complete the settings; DataError names the first wrong one."""
    url = _required(settings, "url")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("ldap", "ldaps"):
        raise DataError("LDAP setting 'url' must start with ldap:// or ldaps://")
    start_tls = bool(settings.get("start_tls", False))
    if start_tls and scheme == "ldaps":
        raise DataError("LDAP settings: start_tls applies to ldap:// URLs, not ldaps://")
    base_dn = settings.get("base_dn") or None
    users_ou = _under(base_dn, _required(settings, "users_ou"))
    groups_ou = _under(base_dn, _required(settings, "groups_ou"))
    group_class = str(settings.get("group_object_class") or "groupOfNames")
    if group_class.lower() not in GROUP_MEMBER_ATTRIBUTE:
        raise DataError("LDAP setting 'group_object_class' must be groupOfNames or "
                        "groupOfUniqueNames")
    method = str(settings.get("disable_method") or "move")
    disabled_ou: str | None = None
    disable_attribute: tuple[str, str] | None = None
    if method == "move":
        disabled_ou = _under(base_dn, _required(settings, "disabled_ou"))
    elif method == "attribute":
        pair = settings.get("disable_attribute")
        if not isinstance(pair, Mapping) or len(pair) != 1:
            raise DataError("LDAP setting 'disable_attribute' must be one {name: value} pair")
        ((name, value),) = pair.items()
        disable_attribute = (str(name), str(value))
    else:
        raise DataError("LDAP setting 'disable_method' must be 'move' or 'attribute'")
    classes = tuple(settings.get("user_object_classes") or DEFAULT_USER_CLASSES)
    identifying = tuple(settings.get("identifying_attributes")
                        or ("employeeNumber", "mail"))
    try:
        pool_size = max(1, int(settings.get("pool_size", 4)))
        timeout = float(settings.get("timeout_seconds", 10))
        page_size = max(1, int(settings.get("page_size", 500)))
    except (TypeError, ValueError) as exc:
        raise DataError("LDAP settings pool_size, timeout_seconds and page_size must be "
                        "numbers") from exc
    return LdapSettings(
        url=url, use_ssl=scheme == "ldaps", start_tls=start_tls,
        ca_file=settings.get("ca_file") or None,
        bind_dn=_required(settings, "bind_dn"),
        users_ou=users_ou, groups_ou=groups_ou,
        user_object_classes=classes,
        rdn_attribute=str(settings.get("rdn_attribute") or "uid"),
        group_object_class=group_class,
        member_attribute=GROUP_MEMBER_ATTRIBUTE[group_class.lower()],
        empty_group_member=settings.get("empty_group_member") or None,
        disable_method=method, disabled_ou=disabled_ou, disable_attribute=disable_attribute,
        identifying_attributes=identifying,
        last_sign_in_attribute=settings.get("last_sign_in_attribute") or None,
        pool_size=pool_size, timeout_seconds=timeout, page_size=page_size,
        random_initial=_initial_password(settings) == "random",
    )


def _initial_password(settings: Mapping[str, Any]) -> str:
    value = str(settings.get("initial_password") or "random")
    if value not in ("random", "none"):
        raise DataError("LDAP setting 'initial_password' must be 'random' or 'none'")
    return value
