"""A syslog receiver on loopback for the SIEM tests: TCP (optionally TLS), octet-counted
frames (RFC 6587 3.4.1 / RFC 5425 4.3), each connection read by a thread of its own; and a
throwaway CA with a server certificate for 127.0.0.1, made with ``cryptography``."""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_LENGTH = re.compile(rb"[1-9][0-9]*")


class SyslogReceiver:
    """Listens on 127.0.0.1:``port`` (0: any free port) until :meth:`stop`."""

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.messages: list[bytes] = []
        self.errors: list[str] = []
        self.connections = 0
        self.closed = 0
        self._cond = threading.Condition()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen()
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with self._cond:
            self.connections += 1
        sock = conn
        try:
            conn.settimeout(10)
            if self.tls is not None:
                sock = self.tls.wrap_socket(conn, server_side=True)
            self._read_frames(sock)
        except (OSError, ValueError) as error:
            with self._cond:
                self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            sock.close()
            conn.close()
            with self._cond:
                self.closed += 1
                self._cond.notify_all()

    def _read_frames(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                if buffer:
                    raise ValueError(f"stream ended inside a frame: {buffer[:40]!r}")
                return
            buffer += chunk
            while b" " in buffer:
                length_text, rest = buffer.split(b" ", 1)
                if not _LENGTH.fullmatch(length_text):
                    raise ValueError(f"bad MSG-LEN {length_text[:20]!r}")
                length = int(length_text)
                if len(rest) < length:
                    break
                with self._cond:
                    self.messages.append(rest[:length])
                    self._cond.notify_all()
                buffer = rest[length:]

    def wait_for(self, count: int, *, closed: int | None = None, timeout: float = 10) -> None:
        """Block until ``count`` messages have arrived (and ``closed`` connections ended)."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: len(self.messages) >= count
                and (closed is None or self.closed >= closed), timeout=timeout)
        assert done, f"{len(self.messages)} messages, {self.closed} closed; errors {self.errors}"

    def stop(self) -> None:
        with suppress(OSError):  # wakes the accepting thread (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)


@dataclass(frozen=True)
class Pki:
    """A CA file and a server context whose certificate it signed (127.0.0.1, localhost)."""

    ca_file: Path
    server: ssl.SSLContext


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(folder: Path, label: str = "test") -> Pki:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(_name(f"{label} CA"))
               .issuer_name(_name(f"{label} CA")).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=True,
                   crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / f"{label}-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = folder / f"{label}-server.pem"
    key_file = folder / f"{label}-server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return Pki(ca_file=ca_file, server=server)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
