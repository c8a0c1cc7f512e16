"""`kiosk provision`: the kiosk makes its device key and enrols it at central with a one-time code.

Central runs for real on loopback (over plain HTTP, and over HTTPS under its own CA for the
pinning); its staff's side (codes, revocation) is central.devices.Devices on its database."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import tls
from central.db import Database
from central.devices import Devices, new_code
from central.server import RunningCentral, start_in_thread
from kiosk import cli, wire
from kiosk import config as kiosk_config
from kiosk.central_client import CentralClient
from kiosk.config import KioskConfig
from kiosk.errors import ConfigError
from kiosk.provisioning import ENROLMENT_FILE, ProvisioningError, load_device_key, provision, public_key_hex
from tests.central.stub_http import StubHttpServer, raw_reply

pytestmark = pytest.mark.realstack   # central over HTTP(S) on loopback, stubs (no card reader): see README

REFUSED = "central refused the enrolment code"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def central_key_pem(central: RunningCentral) -> str:
    """Central's public key as anyone may fetch it."""
    return requests.get(central.url + wire.SIGNING_KEY, timeout=10).text


@pytest.fixture
def kiosk_dir(tmp_path: Path) -> Path:
    (tmp_path / "issuer.pub.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\n")   # only its presence is checked
    return tmp_path


def write_config(directory: Path, device_id: str, central_url: str, *, catalogue_key: Path | None = None,
                 ca_file: Path | None = None) -> Path:
    """A kiosk.toml in `directory` whose state (the device key) is kept in `directory`/state."""
    state = directory / "state"
    central = ['url = "%s"' % central_url, "device_key_path = %s" % json.dumps(str(state / "device-key.pem"))]
    if catalogue_key is not None:
        central.append("catalogue_key = %s" % json.dumps(str(catalogue_key)))
    if ca_file is not None:
        central.append("ca_file = %s" % json.dumps(str(ca_file)))
    path = directory / "kiosk.toml"
    path.write_text('config_version = 1\ndevice_id = "%s"\n\n[central]\n%s\n\n[card]\ntrusted_issuers = '
                    '["issuer.pub.pem"]\n\n[printer]\nhost = "127.0.0.1"\n\n[outbox]\npath = %s\n'
                    % (device_id, "\n".join(central), json.dumps(str(state / "outbox.sqlite3"))), encoding="utf-8")
    return path


@pytest.fixture
def kiosk_config_for(kiosk_dir: Path, central: RunningCentral) -> Callable[..., KioskConfig]:
    """`kiosk_config_for(device_id, **options)`: this kiosk's configuration, loaded as the kiosk loads it."""
    return lambda device_id, url=None, **options: kiosk_config.load(
        write_config(kiosk_dir, device_id, url or central.url, **options))


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# -- a good code ---------------------------------------------------------------------------------------

def test_a_good_code_enrols_the_kiosk_and_keeps_its_key_to_itself(central, devices, kiosk_config_for, kiosk_dir,
                                                                   central_key_pem) -> None:
    config = kiosk_config_for("kiosk-prov-01")
    code, _expires = devices.issue_code("kiosk-prov-01")
    enrolment = provision(config, central.url, code)

    state = kiosk_dir / "state"
    assert enrolment.device_id == "kiosk-prov-01" and enrolment.device_key == config.central.device_key_path
    assert files_in(state) == ["central-key.pem", "device-key.pem", ENROLMENT_FILE]    # no temporary file left
    assert mode(state) == 0o700 and mode(config.central.device_key_path) == 0o600
    assert config.central.device_key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_device_key(config.central.device_key_path)
    assert isinstance(key, Ed25519PrivateKey)
    # Central's key, beside the device key when the configuration names no place for it.
    assert enrolment.central_key == state / "central-key.pem"
    assert enrolment.central_key.read_text(encoding="ascii") == central_key_pem

    text = (state / ENROLMENT_FILE).read_text(encoding="utf-8")
    record = json.loads(text)
    assert record["device_id"] == "kiosk-prov-01" and record["central_url"] == central.url
    assert record["enrolled_at"] == enrolment.enrolled_at and record["device_public_key"] == public_key_hex(key)
    assert record["central_key_id"]
    raw_private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    assert "PRIVATE" not in text and raw_private.hex() not in text and code not in text
    assert "kiosk-prov-01" in [row.device_id for row in devices.list()]

    with CentralClient(central.url, device_id=config.device_id, device_key=key) as client:
        assert client.fetch_catalogue().services and client.device_refused() is None


def test_centrals_key_goes_where_the_configuration_says(central, devices, kiosk_config_for, kiosk_dir,
                                                        central_key_pem) -> None:
    catalogue_key = kiosk_dir / "keys" / "central.pub.pem"
    catalogue_key.parent.mkdir()
    catalogue_key.write_text("a key from another deployment\n")
    config = kiosk_config_for("kiosk-prov-02", catalogue_key=catalogue_key)
    enrolment = provision(config, central.url, devices.issue_code("kiosk-prov-02")[0])
    assert enrolment.central_key == catalogue_key
    assert catalogue_key.read_text(encoding="ascii") == central_key_pem
    assert not (kiosk_dir / "state" / "central-key.pem").exists()


def test_provisioning_again_replaces_the_key_and_only_the_new_one_is_served(central, devices, kiosk_config_for,
                                                                            kiosk_dir) -> None:
    config = kiosk_config_for("kiosk-prov-03")
    provision(config, central.url, devices.issue_code("kiosk-prov-03")[0])
    old = load_device_key(config.central.device_key_path)
    provision(config, central.url, devices.issue_code("kiosk-prov-03")[0])
    new = load_device_key(config.central.device_key_path)
    assert public_key_hex(new) != public_key_hex(old)
    assert mode(config.central.device_key_path) == 0o600
    with CentralClient(central.url, device_id=config.device_id, device_key=new) as client:
        assert client.fetch_catalogue().services
    with CentralClient(central.url, device_id=config.device_id, device_key=old) as client:
        client.challenge()
        assert client.device_refused() == "unauthenticated"


# -- a code central refuses: nothing changes on the device ----------------------------------------------

def _used(devices: Devices, config: KioskConfig, url: str) -> str:
    code = devices.issue_code(config.device_id)[0]
    provision(config, url, code)        # this kiosk took it already: its key is on the device
    return code


# How a technician ends up with a code central will not take for the device: the device's id, and the code.
REFUSED_CODES: dict[str, tuple[str, Callable[[Devices, KioskConfig, str], str]]] = {
    "used": ("kiosk-ref-used", _used),
    "expired": ("kiosk-ref-expired", lambda devices, config, url: devices.issue_code(config.device_id,
                                                                                       timedelta(minutes=-1))[0]),
    "another device's": ("kiosk-ref-other", lambda devices, config, url: devices.issue_code("kiosk-ref-else")[0]),
    "never issued": ("kiosk-ref-unknown", lambda devices, config, url: new_code()),
}


@pytest.mark.parametrize("device_id, make_code", list(REFUSED_CODES.values()), ids=list(REFUSED_CODES))
def test_a_refused_code_tells_the_technician_and_leaves_the_kiosk_as_it_was(central, devices, kiosk_config_for,
                                                                            kiosk_dir, device_id, make_code) -> None:
    config = kiosk_config_for(device_id)
    code = make_code(devices, config, central.url)
    state = kiosk_dir / "state"
    before = {name: (state / name).read_bytes() for name in files_in(state)}

    with pytest.raises(ProvisioningError) as refused:
        provision(config, central.url, code)
    message = str(refused.value)
    assert message.startswith(REFUSED) and device_id in message and code not in message
    assert {name: (state / name).read_bytes() for name in files_in(state)} == before   # nothing written
    if before:      # a kiosk enrolled already keeps its key, and central still serves it
        key = load_device_key(config.central.device_key_path)
        with CentralClient(central.url, device_id=device_id, device_key=key) as client:
            assert client.fetch_catalogue().services and client.device_refused() is None
    else:
        assert not state.exists()


def test_another_devices_code_stays_good_for_its_own_device(central, devices, kiosk_config_for) -> None:
    code = devices.issue_code("kiosk-prov-04")[0]
    with pytest.raises(ProvisioningError, match=REFUSED):
        provision(kiosk_config_for("kiosk-prov-04-wrong"), central.url, code)
    assert provision(kiosk_config_for("kiosk-prov-04"), central.url, code).device_id == "kiosk-prov-04"


def test_a_mistyped_code_is_refused_as_a_code(central, devices, kiosk_config_for, kiosk_dir) -> None:
    config = kiosk_config_for("kiosk-prov-05")
    # A group short, or less; pasted many times over: the technician is told it is the code.
    for typed in ("ABCD-EFG", "ABC", "ABCD-" * 10):
        with pytest.raises(ProvisioningError, match=REFUSED):
            provision(config, central.url, typed)
    assert not (kiosk_dir / "state").exists()


def test_a_code_typed_in_lower_case_and_spaces_is_taken(central, devices, kiosk_config_for) -> None:
    code = devices.issue_code("kiosk-prov-06")[0]
    assert provision(kiosk_config_for("kiosk-prov-06"), central.url, code.lower().replace("-", " ")).device_id == \
        "kiosk-prov-06"


# -- central unreachable, or not central ---------------------------------------------------------------

@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A loopback URL whose port is held but never listens: a connection to it is refused at once."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        yield "http://127.0.0.1:%d" % holder.getsockname()[1]
    finally:
        holder.close()


def test_central_unreachable_is_a_provisioning_error_and_nothing_is_written(kiosk_config_for, kiosk_dir) -> None:
    with closed_port() as url:
        config = kiosk_config_for("kiosk-prov-07", url=url)
        with pytest.raises(ProvisioningError, match="could not be reached"):
            provision(config, url, new_code())
    assert not (kiosk_dir / "state").exists()


def _document(**changes: object) -> bytes:
    key_pem = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    answer = {"device_id": "kiosk-prov-08", "enrolled_at": "2026-01-01T00:00:00Z", "signing_key": key_pem,
              "signing_key_id": "00ff", **changes}
    return raw_reply("200 OK", json.dumps(answer).encode())


NOT_CENTRAL = {
    "a well-formed answer": (_document(), None),      # the stub is read as central: the ones below are not
    "not JSON": (raw_reply("200 OK", b"<html>captive portal</html>", content_type="text/html"), "unreadable"),
    "another device's enrolment": (_document(device_id="kiosk-someone-else"), "unreadable"),
    "a key that is not Ed25519": (_document(signing_key=ec.generate_private_key(ec.SECP256R1()).public_key()
                                            .public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
                                            .decode("ascii")), "unreadable"),
    "no key": (_document(signing_key=None), "unreadable"),
    "a 500": (raw_reply("500 Internal Server Error", b"{}"), "HTTP 500"),
    "a redirect": (raw_reply("302 Found", b"", headers={"Location": "https://elsewhere.invalid/"}), "HTTP 302"),
    "no answer": (None, "could not be reached"),
}


@pytest.mark.parametrize("reply, problem", list(NOT_CENTRAL.values()), ids=list(NOT_CENTRAL))
def test_an_answer_that_is_not_an_enrolment_writes_nothing(kiosk_config_for, kiosk_dir, reply, problem) -> None:
    stub = StubHttpServer(reply)
    try:
        config = kiosk_config_for("kiosk-prov-08", url=stub.url)
        if problem is None:
            provision(config, stub.url, "ABCD-EFGH-JKMN-PQRS-TVWX")
            assert load_device_key(config.central.device_key_path) is not None
            return
        with pytest.raises(ProvisioningError, match=problem):
            provision(config, stub.url, "ABCD-EFGH-JKMN-PQRS-TVWX")
        assert stub.request_lines == ["POST " + wire.ENROL]
    finally:
        stub.stop()
    assert not (kiosk_dir / "state").exists()


@pytest.fixture(scope="module")
def tls_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCentral, Devices, Path, Path]]:
    """Central over HTTPS under its own CA; its devices; its CA, and another deployment's CA."""
    root = tmp_path_factory.mktemp("tls")
    files, _new = tls.init(root / "central", ["127.0.0.1"])
    other, _new = tls.init(root / "other", ["127.0.0.1"])
    central_db_url = "sqlite:///%s" % (root / "central.sqlite3")
    running = start_in_thread(central_db_url, tls_cert=files.server_cert, tls_key=files.server_key)
    database = Database(central_db_url)
    yield running, Devices(database), files.ca_cert, other.ca_cert
    database.dispose()
    running.stop()


def test_over_https_centrals_certificate_is_checked_against_the_pinned_ca(tls_central, kiosk_config_for,
                                                                          kiosk_dir) -> None:
    central, devices, central_ca, other_ca = tls_central
    assert central.url.startswith("https://")
    code = devices.issue_code("kiosk-prov-09")[0]
    for ca_file in (other_ca, None):            # another deployment's CA; the system's authorities
        config = kiosk_config_for("kiosk-prov-09", url=central.url, ca_file=ca_file)
        with pytest.raises(ProvisioningError, match="could not be reached .*SSLError"):
            provision(config, central.url, code)
        assert not (kiosk_dir / "state").exists()
    # The code was never shown to a server the kiosk did not trust: it still enrols, under central's CA.
    config = kiosk_config_for("kiosk-prov-09", url=central.url, ca_file=central_ca)
    provision(config, central.url, code)
    key = load_device_key(config.central.device_key_path)
    with CentralClient(central.url, device_id="kiosk-prov-09", device_key=key, ca_file=central_ca) as client:
        assert client.fetch_catalogue().services


@pytest.mark.parametrize("url", ["http://192.0.2.10:8080", "http://central.example.sy", "ftp://127.0.0.1/",
                                 "https://user:secret@central.example.sy", "https:///nohost"])
def test_a_url_the_kiosk_may_not_use_is_refused_before_anything_is_sent(kiosk_config_for, kiosk_dir, url,
                                                                         monkeypatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(requests.Session, "send", lambda _session, request, **_kw: sent.append(request.url))
    config = kiosk_config_for("kiosk-prov-10", url="https://central.example.sy")
    with pytest.raises(ProvisioningError) as refused:
        provision(config, url, "ABCD-EFGH-JKMN-PQRS-TVWX")
    assert "\n" not in str(refused.value) and "secret" not in str(refused.value)
    assert sent == [] and not (kiosk_dir / "state").exists()


# -- the key as the kiosk reads it at start-up ----------------------------------------------------------

def test_no_device_key_is_none_and_logged(tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert load_device_key(tmp_path / "device-key.pem") is None
    assert "provision.no_device_key" in caplog.text and "kiosk provision" in caplog.text


def _written(path: Path, data: bytes, file_mode: int) -> Path:
    path.write_bytes(data)
    os.chmod(path, file_mode)
    return path


@pytest.mark.parametrize("file_mode", [0o640, 0o604, 0o644, 0o660])
def test_a_device_key_others_may_read_is_refused(tmp_path, file_mode) -> None:
    key = _written(tmp_path / "device-key.pem", key_pem(Ed25519PrivateKey.generate()), file_mode)
    with pytest.raises(ConfigError, match="must be 0600"):
        load_device_key(key)
    os.chmod(key, 0o600)
    assert load_device_key(key) is not None


NOT_A_DEVICE_KEY = {
    "text": (b"not a key\n", "not a PEM private key"),
    "empty": (b"", "not a PEM private key"),
    "a public key": (Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), "not a PEM private key"),
    "an EC key": (ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "not an Ed25519 key"),
}


@pytest.mark.parametrize("data, problem", list(NOT_A_DEVICE_KEY.values()), ids=list(NOT_A_DEVICE_KEY))
def test_a_file_that_is_not_a_device_key_is_refused(tmp_path, data, problem) -> None:
    with pytest.raises(ConfigError, match=problem) as refused:
        load_device_key(_written(tmp_path / "device-key.pem", data, 0o600))
    assert "device_key_path" in str(refused.value)


def test_a_directory_is_not_a_device_key(tmp_path) -> None:
    (tmp_path / "device-key.pem").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a file"):
        load_device_key(tmp_path / "device-key.pem")


# -- the command ---------------------------------------------------------------------------------------

def kiosk_lines(err: str) -> list[str]:
    """What the command wrote to its standard error; central, running in this process for the test, logs
    there too (its lines begin with its logger's name)."""
    return [line for line in err.splitlines() if not line.startswith("central.")]


def test_kiosk_provision_says_enrolled_in_one_line_and_exits_0(central, devices, kiosk_dir, capsys) -> None:
    config_path = write_config(kiosk_dir, "kiosk-cli-01", central.url)
    code = devices.issue_code("kiosk-cli-01")[0]
    assert cli.main(["provision", "--central", central.url, "--code", code, "--config", str(config_path)]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith("enrolled: device kiosk-cli-01 at ")
    assert str(kiosk_dir / "state" / "device-key.pem") in out and code not in out + err
    assert load_device_key(kiosk_dir / "state" / "device-key.pem") is not None


def test_kiosk_provision_refused_says_why_in_one_line_and_exits_1(central, devices, kiosk_dir, capsys) -> None:
    config_path = write_config(kiosk_dir, "kiosk-cli-02", central.url)
    code = devices.issue_code("kiosk-cli-02", timedelta(minutes=-1))[0]     # expired
    assert cli.main(["provision", "--central", central.url, "--code", code, "--config", str(config_path)]) == 1
    out, err = capsys.readouterr()
    kiosk_says = kiosk_lines(err)
    assert out == "" and len(kiosk_says) == 1 and kiosk_says[0].startswith("kiosk provision: " + REFUSED)
    assert code not in err and not (kiosk_dir / "state").exists()


def test_kiosk_provision_with_central_unreachable_exits_1(kiosk_dir, capsys) -> None:
    with closed_port() as url:
        config_path = write_config(kiosk_dir, "kiosk-cli-03", url)
        assert cli.main(["provision", "--central", url, "--code", new_code(), "--config", str(config_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(kiosk_lines(err)) == 1 and "could not be reached" in err


def test_kiosk_provision_without_a_configuration_exits_2(tmp_path, capsys) -> None:
    assert cli.main(["provision", "--central", "http://127.0.0.1:9", "--code", new_code(),
                     "--config", str(tmp_path / "nothing.toml")]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_a_new_kiosk_configured_with_a_place_for_centrals_key_can_be_provisioned(central, devices, kiosk_dir,
                                                                                 central_key_pem, capsys) -> None:
    catalogue_key = kiosk_dir / "state" / "central.pub.pem"      # written by provisioning, not before
    config_path = write_config(kiosk_dir, "kiosk-cli-04", central.url, catalogue_key=catalogue_key)
    code = devices.issue_code("kiosk-cli-04")[0]
    assert cli.main(["provision", "--central", central.url, "--code", code, "--config", str(config_path)]) == 0
    assert catalogue_key.read_text(encoding="ascii") == central_key_pem
