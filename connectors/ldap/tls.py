"""TLS for ldap3 with the standard library's own certificate and hostname checks.

ldap3 2.9.1 switches the context's hostname check off and calls ``ssl.match_hostname``
itself, which Python 3.7 deprecated (and 3.12 removed). This ``Tls`` wraps the socket with a
default context instead: certificate chain and hostname are verified during the handshake.
"""

from __future__ import annotations

import ssl
from typing import Any

from ldap3 import Tls


class VerifiedTls(Tls):
    def __init__(self, ca_file: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=self.ca_certs_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        connection.socket = context.wrap_socket(connection.socket, server_side=False,
                                                do_handshake_on_connect=do_handshake,
                                                server_hostname=connection.server.host)
