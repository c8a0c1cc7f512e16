"""A kiosk's own identity: its device key, made here, and its enrolment at central.

A technician runs ``kiosk provision --central URL --code CODE`` on the device
with the one-time code central staff issued for its device id. The kiosk makes
an Ed25519 key pair, sends central the public key with the code
(`wire.ENROL`), and on success keeps:

- the private key at ``central.device_key_path`` (PEM, 0600 in a 0700
  directory; it never leaves the device, and a new provisioning replaces it);
- central's document and catalogue public key, at ``central.catalogue_key``
  when it is set, else as ``central-key.pem`` beside the device key;
- ``enrolment.json`` beside the device key: the device id, central's URL, the
  time of enrolment and the key ids (no secret).

The key is written only after central accepted it, so a refused code changes
nothing on the device. Central's URL must be https (or http to loopback, for
development); its certificate is checked against ``central.ca_file`` when set.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk import wire
from kiosk.atomic_file import write_atomically
from kiosk.config import KioskConfig, check_central_url
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

ENROLMENT_FILE = "enrolment.json"
CENTRAL_KEY_FILE = "central-key.pem"
TIMEOUT_S = (3.0, 15.0)


class ProvisioningError(Exception):
    """Provisioning did not happen; the message says why, for the technician (no secret in it)."""


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    enrolled_at: str
    device_key: Path
    central_key: Path


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """`data` at `path`, whole or not at all, in a directory only its owner may enter."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(path, data, mode=mode)


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _names_the_code(response: requests.Response) -> bool:
    """True when central's 400 (invalid input) is about the code: one too short or too long, as typed."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return isinstance(errors, list) and any(isinstance(e, dict) and e.get("field") == "code" for e in errors)


def provision(config: KioskConfig, central_url: str, code: str) -> Enrolment:
    """Enrol this device at `central_url` with `code`; ProvisioningError when it could not be."""
    try:
        check_central_url(central_url)
    except ConfigError as exc:
        raise ProvisioningError(str(exc)) from None
    key = Ed25519PrivateKey.generate()
    verify: str | bool = os.fspath(config.central.ca_file) if config.central.ca_file else True
    try:
        response = requests.post(central_url.rstrip("/") + wire.ENROL, timeout=TIMEOUT_S, verify=verify,
                                 allow_redirects=False,
                                 json={"device_id": config.device_id, "code": code, "public_key": public_key_hex(key)})
    except (requests.RequestException, OSError) as exc:
        raise ProvisioningError("central could not be reached at %s (%s)" % (central_url, type(exc).__name__)) \
            from None
    if response.status_code == 422 or (response.status_code == 400 and _names_the_code(response)):
        raise ProvisioningError("central refused the enrolment code: it is unknown, used, expired or for "
                                "another device id than %s" % config.device_id)
    if response.status_code != 200:
        raise ProvisioningError("central answered HTTP %d to the enrolment" % response.status_code)
    try:
        answer = response.json()
        central_key = serialization.load_pem_public_key(answer["signing_key"].encode("ascii"))
        if answer["device_id"] != config.device_id or not isinstance(central_key, Ed25519PublicKey):
            raise ValueError("another device, or not an Ed25519 key")
        enrolled_at = str(answer["enrolled_at"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError) as exc:
        raise ProvisioningError("central's answer to the enrolment is unreadable (%s)" % type(exc).__name__) \
            from None

    device_key_path = config.central.device_key_path
    central_key_path = config.central.catalogue_key or device_key_path.parent / CENTRAL_KEY_FILE
    _write_private(device_key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    _write_private(central_key_path, answer["signing_key"].encode("ascii"), mode=0o644)
    _write_private(device_key_path.parent / ENROLMENT_FILE, json.dumps({
        "device_id": config.device_id, "central_url": central_url, "enrolled_at": enrolled_at,
        "device_public_key": public_key_hex(key), "central_key_id": answer.get("signing_key_id", ""),
    }, indent=2).encode("utf-8"))
    log.info("provision.enrolled device=%s", config.device_id)
    return Enrolment(config.device_id, enrolled_at, device_key_path, central_key_path)


def load_device_key(path: Path) -> Ed25519PrivateKey | None:
    """The device key kept at `path`; None when the kiosk was never provisioned (central will refuse
    it: out of service). ConfigError when the file is there but unusable, or others may read it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        log.error("provision.no_device_key path=%s: run `kiosk provision` with an enrolment code", path)
        return None
    except OSError as exc:
        raise ConfigError("`central.device_key_path`: %s cannot be read (%s)" % (path, type(exc).__name__)) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("`central.device_key_path`: %s is not a file" % path)
    if info.st_mode & 0o077:
        raise ConfigError("`central.device_key_path`: %s may be read by others (mode %o): it must be 0600"
                          % (path, stat.S_IMODE(info.st_mode)))
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError("`central.device_key_path`: %s is not a PEM private key (%s)"
                          % (path, type(exc).__name__)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("`central.device_key_path`: %s is not an Ed25519 key" % path)
    return key
