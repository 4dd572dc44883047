"""LDAP directories (OpenLDAP, 389 DS, ...) through ldap3."""

import warnings

with warnings.catch_warnings():
    # pyasn1 0.6 deprecated two names that ldap3 2.9.1 imports; nothing here can act on it,
    # and test runs turn warnings into errors.
    warnings.filterwarnings("ignore", message="(tagMap|typeMap) is deprecated",
                            category=DeprecationWarning)
    import ldap3  # noqa: F401

from connectors.ldap.connector import LdapConnector

__all__ = ["LdapConnector"]
