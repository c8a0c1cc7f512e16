"""`kiosk selftest`'s outbox line (offline/outbox_check.py): what a technician reads about the state database."""

from __future__ import annotations

import textwrap

import pytest

from kiosk import backends
from kiosk import config as kiosk_config
from kiosk.selftest import Outcome
from offline import outbox_check
from offline.outbox import Outbox


@pytest.fixture
def config(tmp_path):
    (tmp_path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    path = tmp_path / "kiosk.toml"
    path.write_text(textwrap.dedent("""\
        device_id = "kiosk-test-08"
        [central]
        url = "http://127.0.0.1:9"
        [card]
        trusted_issuers = ["issuer.pub.pem"]
        [printer]
        host = "127.0.0.1"
        [outbox]
        path = "state/outbox.sqlite3"
        """))
    return kiosk_config.load(path)


def test_it_is_the_outbox_backends_tool():
    assert backends.load_tool("outbox-check") is outbox_check.check


def test_no_state_database_yet_is_skipped_and_none_is_made(config):
    verdict = outbox_check.check(config)
    assert verdict.outcome is Outcome.SKIPPED
    assert "no state database yet" in verdict.detail
    assert not config.outbox.path.exists()


def test_a_healthy_database_is_ok_with_its_counts(config):
    with_store = Outbox(config.outbox.path)
    with_store.put("msg-1", "certificate_request", {"request_id": "req-1"})
    with_store.close()
    verdict = outbox_check.check(config)
    assert verdict.outcome is Outcome.OK
    assert verdict.detail == ("integrity ok; 1 pending (oldest 0 min), 0 dead letters, 0 transactions open, "
                              "0 settlements refused")


def test_dead_letters_are_a_warning(config):
    store = Outbox(config.outbox.path)
    store.put("msg-1", "certificate_request", {"request_id": "req-1"})
    store.dead_letter("msg-1", "invalid_request")
    store.close()
    verdict = outbox_check.check(config)
    assert verdict.outcome is Outcome.WARNING
    assert "1 dead letters" in verdict.detail and verdict.detail.endswith("(kiosk queue dead)")


def test_a_file_that_is_not_a_database_fails_and_is_left_where_it_is(config):
    config.outbox.path.parent.mkdir(mode=0o700)
    config.outbox.path.write_bytes(b"not a database, a torn write " * 200)
    verdict = outbox_check.check(config)
    assert verdict.outcome is Outcome.FAILED
    assert "state database" in verdict.detail
    assert config.outbox.path.read_bytes().startswith(b"not a database")      # never moved aside by the check
