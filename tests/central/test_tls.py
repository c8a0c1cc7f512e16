"""Central over HTTPS under its own CA: `kiosk-central tls init` makes the CA and the server
certificate, central serves with them, and the kiosk's client pins the CA; plain HTTP is for
loopback only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from central import cli, tls
from central.server import RunningCentral, start_in_thread
from kiosk import wire
from kiosk.central_client import CentralClient, CentralUnreachable
from tests.central.stub_http import StubHttpServer, raw_reply, server_tls

DEVICE_ID = "kiosk-tls-test"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tls.TlsFiles:
    files, _new = tls.init(tmp_path_factory.mktemp("tls") / "central", ["127.0.0.1"])
    return files


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another deployment's CA, which signed nothing central serves."""
    files, _new = tls.init(tmp_path_factory.mktemp("tls") / "other", ["127.0.0.1"])
    return files.ca_cert


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory, material: tls.TlsFiles) -> Iterator[RunningCentral]:
    running = start_in_thread("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"),
                              tls_cert=material.server_cert, tls_key=material.server_key)
    yield running
    running.stop()


# -- kiosk-central tls init ---------------------------------------------------------------------------------

def test_tls_init_writes_the_ca_and_a_server_certificate_for_the_hosts(tmp_path: Path, capsys) -> None:
    directory = tmp_path / "tls"
    assert cli.main(["tls", "init", str(directory), "--host", "127.0.0.1", "--host", "central.example.sy",
                     "--host", "::1"]) == 0
    assert sorted(p.name for p in directory.iterdir()) == ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    assert mode(directory) == 0o700
    assert mode(directory / "ca-key.pem") == 0o600 and mode(directory / "server-key.pem") == 0o600
    assert mode(directory / "ca.pem") & 0o022 == 0 and mode(directory / "server.pem") & 0o022 == 0

    ca = tls.load_certificate(directory / "ca.pem")
    server = tls.load_certificate(directory / "server.pem")
    assert tls.certificate_hosts(server) == ["127.0.0.1", "central.example.sy", "::1"]
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    for key_file, certificate in (("ca-key.pem", ca), ("server-key.pem", server)):
        key = tls.load_private_key(directory / key_file)
        assert key.curve.name == "secp256r1" and key.public_key() == certificate.public_key()
    out = capsys.readouterr().out
    assert "ca.pem: a new CA" in out and "--tls-cert %s" % (directory / "server.pem") in out


def test_tls_init_again_keeps_the_ca_and_issues_a_new_server_certificate(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    assert cli.main(["tls", "init", str(directory), "--host", "127.0.0.1"]) == 0
    ca_before, server_before = (directory / "ca.pem").read_bytes(), (directory / "server.pem").read_bytes()
    assert cli.main(["tls", "init", str(directory), "--host", "central.example.sy"]) == 0
    assert (directory / "ca.pem").read_bytes() == ca_before        # the kiosks' pinned CA stays the same
    server = tls.load_certificate(directory / "server.pem")
    assert server.public_bytes(serialization.Encoding.PEM) != server_before
    assert tls.certificate_hosts(server) == ["central.example.sy"]
    server.verify_directly_issued_by(tls.load_certificate(directory / "ca.pem"))
    assert mode(directory / "server-key.pem") == 0o600


@pytest.mark.parametrize("host", ["central example", "-central.sy", "http://central.sy", ""])
def test_tls_init_refuses_a_host_that_is_neither_a_name_nor_an_address(tmp_path: Path, capsys, host: str) -> None:
    assert cli.main(["tls", "init", str(tmp_path / "tls"), "--host", "127.0.0.1", "--host=" + host]) == 2
    assert "neither an IP address nor a host name" in capsys.readouterr().err
    assert not (tmp_path / "tls").exists()


def test_tls_init_refuses_a_ca_without_its_key(tmp_path: Path, capsys) -> None:
    directory = tmp_path / "tls"
    assert cli.main(["tls", "init", str(directory), "--host", "127.0.0.1"]) == 0
    (directory / "ca-key.pem").unlink()
    assert cli.main(["tls", "init", str(directory), "--host", "127.0.0.1"]) == 2
    assert "ca-key.pem" in capsys.readouterr().err


# -- serving: HTTPS, or plain HTTP on loopback only ----------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "central.example.sy"])
def test_serve_refuses_plain_http_on_an_address_that_is_not_loopback(tmp_path: Path, capsys, host: str) -> None:
    db = tmp_path / "central.sqlite3"
    assert cli.main(["serve", "--host", host, "--port", "0", "--db", "sqlite:///%s" % db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kiosk-central serve: refusing plain HTTP on %s" % host)
    assert not db.exists()                      # refused before anything was started
    with pytest.raises(tls.TlsError, match="refusing plain HTTP"):
        start_in_thread("sqlite:///%s" % db, host=host)


def test_serve_refuses_a_certificate_without_its_key_or_a_key_that_is_not_its(tmp_path: Path, capsys,
                                                                            material: tls.TlsFiles) -> None:
    db = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    assert cli.main(["serve", "--host", "0.0.0.0", "--tls-cert", str(material.server_cert), "--db", db]) == 2
    assert "give both or neither" in capsys.readouterr().err
    assert cli.main(["serve", "--host", "0.0.0.0", "--tls-cert", str(material.server_cert),
                     "--tls-key", str(material.ca_key), "--db", db]) == 2
    assert "cannot serve HTTPS together" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_addresses_may_serve_plain_http(host: str) -> None:
    assert tls.check_serving(host, None, None) is False


# -- the kiosk's client, pinning central's CA ----------------------------------------------------------------

@pytest.mark.realstack   # central on loopback (no card reader): see README
def test_the_kiosk_reaches_central_over_https_with_its_ca_pinned(central: RunningCentral,
                                                                 material: tls.TlsFiles) -> None:
    """Through the client's own calls (its session, its timeouts, the pinned CA passed on each call), on
    the public routes: the others want an enrolled kiosk, which is not what this test is about."""
    assert central.url.startswith("https://127.0.0.1:")
    with CentralClient(central.url, device_id=DEVICE_ID, timeout_s=5, ca_file=material.ca_cert) as client:
        health = client._call("GET", wire.HEALTH)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.url.startswith("https://")
        key = client._call("GET", wire.SIGNING_KEY)
        assert key.status_code == 200 and key.text.startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.realstack   # central on loopback (no card reader): see README
def test_a_central_whose_certificate_another_ca_signed_is_refused(central: RunningCentral, other_ca: Path) -> None:
    """Refused at the handshake (SSLError), not by an answer: the same CentralUnreachable as a link down."""
    with CentralClient(central.url, device_id=DEVICE_ID, timeout_s=5, ca_file=other_ca) as client:
        with pytest.raises(CentralUnreachable, match=r"unreachable \(SSLError\)"):
            client.fetch_catalogue()
        with pytest.raises(requests.exceptions.SSLError):
            client._call("GET", wire.HEALTH)
    with CentralClient(central.url, device_id=DEVICE_ID, timeout_s=5) as unpinned:   # the system's CAs
        with pytest.raises(CentralUnreachable, match=r"unreachable \(SSLError\)"):
            unpinned.fetch_catalogue()
    with CentralClient(central.url.replace("https://", "http://"), device_id=DEVICE_ID, timeout_s=5) as plain:
        with pytest.raises(CentralUnreachable, match="unreachable"):
            plain.fetch_catalogue()


def test_nothing_is_sent_to_a_server_another_ca_signed(material: tls.TlsFiles, other_ca: Path) -> None:
    """The refusal comes at the handshake: the request never leaves, and no answer is read."""
    catalogue = b'{"version": "v1", "categories": [], "services": []}'
    stub = StubHttpServer(raw_reply("200 OK", catalogue), tls=server_tls(material.server_cert, material.server_key))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, timeout_s=5, ca_file=other_ca) as client:
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
        assert stub.requests == []
        with CentralClient(stub.url, device_id=DEVICE_ID, timeout_s=5, ca_file=material.ca_cert) as client:
            assert client.fetch_catalogue().version == "v1"
        assert stub.request_lines == ["GET %s" % wire.CATALOGUE]
    finally:
        stub.stop()
