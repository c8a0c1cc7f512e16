"""Central's own certificate authority, and the HTTPS certificate it signs for central.

Kiosks pin central's CA (the kiosk's ``[central] ca_file``) rather than trust
the system's authorities, so a small private CA is all central needs: an EC
P-256 key that signs one server certificate per deployment, naming in its
subjectAltName every host name and IP address the kiosks use to reach
central (a certificate is checked against the host of the URL, so a kiosk
given ``https://127.0.0.1:8700`` needs 127.0.0.1 there).

`init(directory, hosts)` writes the four PEM files below; private keys are
created 0600 and never readable by anyone else, even for a moment. The CA's
key is kept beside its certificate so that a later `init` on the same
directory issues a new server certificate (new hosts, or an expired one)
under the same CA, and no kiosk has to be given a new ``ca_file``.

Plain HTTP is for development on loopback only: ``kiosk-central serve`` and
`central.server.start_in_thread` ask `check_serving` before they bind, which
checks a certificate and key given, or refuses plain HTTP on any host but a
loopback one (`is_loopback`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"                 # given to every kiosk, as `[central] ca_file`
CA_KEY = "ca-key.pem"              # 0600; kept to issue server certificates later
SERVER_CERT = "server.pem"         # `kiosk-central serve --tls-cert`
SERVER_KEY = "server-key.pem"      # 0600; `kiosk-central serve --tls-key`

CA_DAYS = 3650                     # the CA outlives many server certificates: kiosks pin it
SERVER_DAYS = 825
_CLOCK_SKEW = datetime.timedelta(minutes=5)   # a kiosk whose clock is a little behind still accepts it
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)%s(\.%s)*" % (_LABEL, _LABEL))     # ASCII (A-label) host names


class TlsError(ValueError):
    """TLS material that cannot be made or used (a bad host, a missing or mismatched file);
    its text is one line meant for the operator."""


@dataclass(frozen=True)
class TlsFiles:
    """The paths of central's TLS material in one directory, as `init` writes it."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_directory(cls, directory: Path | str) -> TlsFiles:
        directory = Path(directory)
        return cls(directory / CA_CERT, directory / CA_KEY, directory / SERVER_CERT, directory / SERVER_KEY)


def is_loopback(host: str) -> bool:
    """Whether binding `host` only listens on this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(host: str, cert_path: Path | str | None, key_path: Path | str | None) -> bool:
    """Whether central serves HTTPS when bound to `host`: True with a certificate and its key (both
    checked), False for plain HTTP, which only a loopback host may have; TlsError otherwise."""
    if (cert_path is None) != (key_path is None):
        raise TlsError("a TLS certificate and its key go together: give both or neither")
    if cert_path is not None:
        check_server_files(cert_path, key_path)
        return True
    if not is_loopback(host):
        raise TlsError("refusing plain HTTP on %s: only a loopback address may serve without TLS; give a "
                       "certificate and key (`kiosk-central tls init` makes them)" % host)
    return False


def subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Each host as a SAN entry: an IP address (v4 or v6) or a DNS name; TlsError for anything else
    (and for none at all)."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            if not _HOST_NAME.fullmatch(host):
                raise TlsError("%r is neither an IP address nor a host name" % host) from None
            name = x509.DNSName(host.lower())
        if name not in names:
            names.append(name)
    if not names:
        raise TlsError("a server certificate needs at least one host name or IP address")
    return names


def certificate_hosts(certificate: x509.Certificate) -> list[str]:
    """The host names and IP addresses a certificate's subjectAltName holds, as text."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in san if isinstance(name, (x509.DNSName, x509.IPAddress))]


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - _CLOCK_SKEW, now + datetime.timedelta(days=days)


def make_ca(*, common_name: str = "Citizen kiosk central CA",
            days: int = CA_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA: an EC P-256 key and its self-signed certificate, which signs server certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    return key, certificate


def issue_server_certificate(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Sequence[str], *,
                             days: int = SERVER_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new EC P-256 key and its server certificate, signed by the CA, for `hosts` (host names
    and IP addresses, all in the subjectAltName; the first is also the common name)."""
    names = subject_alt_names(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(names[0].value))]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    return key, certificate


def write_certificate(path: Path | str, certificate: x509.Certificate) -> Path:
    path = Path(path)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def write_private_key(path: Path | str, key: ec.EllipticCurvePrivateKey) -> Path:
    """The key as unencrypted PKCS#8 PEM, in a file that is 0600 from its creation on (an existing
    file is made 0600 before it is written)."""
    path = Path(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return path


def load_certificate(path: Path | str) -> x509.Certificate:
    """The first certificate of a PEM file; TlsError when it is missing or not one."""
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as exc:
        raise TlsError("%s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    except ValueError:
        raise TlsError("%s: not a certificate in PEM" % path) from None


def load_private_key(path: Path | str) -> ec.EllipticCurvePrivateKey:
    """An unencrypted EC private key from a PEM file; TlsError when it is missing or not one."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise TlsError("%s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    except (ValueError, TypeError):
        raise TlsError("%s: not an unencrypted private key in PEM" % path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError("%s: not an EC private key" % path)
    return key


def check_server_files(cert_path: Path | str, key_path: Path | str) -> None:
    """That the certificate and key can serve HTTPS together (both readable, the key the
    certificate's), so that a bad pair stops start-up with one line; TlsError otherwise."""
    for path in (cert_path, key_path):
        if not Path(path).is_file():
            raise TlsError("%s: no such file" % path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        raise TlsError("%s and %s cannot serve HTTPS together (%s)" % (cert_path, key_path,
                                                                       exc.reason or "unreadable")) from None
    except OSError as exc:
        raise TlsError("%s or %s: %s" % (cert_path, key_path, exc.strerror or type(exc).__name__)) from None


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def init(directory: Path | str, hosts: Sequence[str], *, days: int = SERVER_DAYS) -> tuple[TlsFiles, bool]:
    """Central's TLS material in `directory` (made 0700 when created): the CA there, or a new one
    when there is none, and a new server certificate and key for `hosts`. Returns the files and
    whether the CA is new. TlsError for a bad host, or a CA certificate without its key."""
    subject_alt_names(hosts)                    # checked before anything is written
    files = TlsFiles.in_directory(directory)
    Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
    if files.ca_cert.exists() or files.ca_key.exists():
        ca_key, ca_cert = load_private_key(files.ca_key), load_certificate(files.ca_cert)
        if _public_der(ca_key.public_key()) != _public_der(ca_cert.public_key()):
            raise TlsError("%s is not the key of %s" % (files.ca_key, files.ca_cert))
        new_ca = False
    else:
        ca_key, ca_cert = make_ca()
        write_private_key(files.ca_key, ca_key)
        write_certificate(files.ca_cert, ca_cert)
        new_ca = True
    key, certificate = issue_server_certificate(ca_key, ca_cert, hosts, days=days)
    write_private_key(files.server_key, key)
    write_certificate(files.server_cert, certificate)
    return files, new_ca
