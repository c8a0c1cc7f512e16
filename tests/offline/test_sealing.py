"""The device key and the sealing of personal data: AES-GCM, a fresh nonce per value, bound to its place."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kiosk.errors import QueueError
from offline.sealing import KEY_BYTES, Sealer, SealError, load_or_create_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_device_key_is_made_once_private_and_kept(tmp_path):
    old_umask = os.umask(0o022)
    try:
        key = load_or_create_key(tmp_path / "var" / "kiosk" / "device.key")
    finally:
        os.umask(old_umask)
    path = tmp_path / "var" / "kiosk" / "device.key"
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)
    assert load_or_create_key(path) == key                           # the next start: the same key
    assert sorted(p.name for p in path.parent.iterdir()) == ["device.key"]     # no temporary file left


def test_a_key_file_left_readable_by_others_is_made_private(tmp_path):
    path = tmp_path / "device.key"
    path.write_bytes(os.urandom(KEY_BYTES))
    os.chmod(path, 0o644)
    load_or_create_key(path)
    assert mode(path) == 0o600


def test_a_damaged_key_is_moved_aside_reported_and_replaced(tmp_path):
    path = tmp_path / "device.key"
    path.write_bytes(b"short")
    alerts: list[str] = []
    key = load_or_create_key(path, alert=alerts.append)
    assert len(key) == KEY_BYTES and alerts == ["state.device_key_replaced"]
    assert [p.read_bytes() for p in tmp_path.glob("device.key.damaged-*")] == [b"short"]


def test_a_key_that_cannot_be_made_is_a_queue_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QueueError):
        load_or_create_key(blocker / "device.key")


def test_a_value_opens_only_where_it_was_sealed_and_only_with_its_key():
    sealer = Sealer.ephemeral()
    sealed = sealer.seal({"national_number": "01020345671"}, where="payload:req-1")
    assert b"01020345671" not in sealed
    assert sealer.unseal(sealed, where="payload:req-1") == {"national_number": "01020345671"}
    with pytest.raises(SealError):
        sealer.unseal(sealed, where="payload:req-2")                 # copied to another message
    with pytest.raises(SealError):
        sealer.unseal(sealed, where="answer:req-1")                  # or to another column
    with pytest.raises(SealError):
        Sealer.ephemeral().unseal(sealed, where="payload:req-1")     # another kiosk's key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.unseal(tampered, where="payload:req-1")


def test_every_value_gets_its_own_nonce():
    sealer = Sealer.ephemeral()
    sealed = [sealer.seal({"n": 1}, where="payload:req-1") for _ in range(100)]
    assert len({value[1:13] for value in sealed}) == 100 and len(set(sealed)) == 100


def test_neither_the_sealer_nor_its_errors_show_a_key_or_a_value():
    sealer = Sealer(b"\x07" * KEY_BYTES)
    assert repr(sealer) == "Sealer()"
    with pytest.raises(SealError) as raised:
        sealer.unseal(Sealer.ephemeral().seal({"name": "Khaled"}, where="answer:req-1"), where="answer:req-1")
    assert "Khaled" not in str(raised.value)
