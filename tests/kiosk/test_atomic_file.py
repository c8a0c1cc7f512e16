"""A file written whole or not at all, with its mode from the start."""

from __future__ import annotations

import stat

import pytest

from kiosk.atomic_file import write_atomically


def test_the_file_is_replaced_whole_with_its_mode_and_nothing_left_beside_it(tmp_path):
    path = tmp_path / "device-key.pem"
    path.write_bytes(b"old")
    write_atomically(path, b"new key", mode=0o600)
    assert path.read_bytes() == b"new key" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["device-key.pem"]


def test_a_check_that_refuses_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_bytes(b"old")
    seen = []

    def refuse(temporary):
        seen.append(temporary.read_bytes())
        raise ValueError("not a configuration")
    with pytest.raises(ValueError):
        write_atomically(path, b"broken", mode=0o644, check=refuse)
    assert seen == [b"broken"] and path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk.toml"]
