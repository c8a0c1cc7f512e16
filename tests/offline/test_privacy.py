"""Privacy at rest: what the kiosk's disk holds about a citizen, after a whole journey on the fakes.

The state directory is the kiosk's alone (0700, its files 0600); the citizen's national and card
numbers and names are never on it in clear (the database, its -wal and -shm are read as raw
bytes); and once the document is printed, nothing sealed about the citizen is left either.
"""

from __future__ import annotations

import json
import stat

import pytest

from kiosk.session import Step
from offline.database import StateDatabase
from offline.outbox import MessageState, Outbox
from offline.sealing import Sealer
from tests.offline.kiosk_on_fakes import IDENTITY, SECRETS, KioskOnFakes, clear_text_found, raw_state_bytes


@pytest.fixture
def kiosk(tmp_path):
    kiosk = KioskOnFakes(tmp_path / "state")
    yield kiosk
    kiosk.stop()


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_grep_finds_a_citizen_written_in_clear(tmp_path):
    """The check below can fail: a name written as text is found, in UTF-8 as in UTF-16."""
    (tmp_path / "clear.bin").write_bytes(b"x" + IDENTITY.given_name_ar.encode("utf-16-le") + b"y")
    (tmp_path / "other.bin").write_bytes(IDENTITY.national_number.encode())
    assert clear_text_found(raw_state_bytes(tmp_path)) == [("clear.bin", IDENTITY.given_name_ar),
                                                           ("other.bin", IDENTITY.national_number)]


def test_no_citizen_data_in_clear_on_the_disk_during_and_after_a_journey(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    kiosk.settle()
    # Sent, answered, the document on its way to the printer: the disk holds the citizen sealed only.
    assert clear_text_found(raw_state_bytes(kiosk.state_dir)) == []
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    kiosk.take_card()
    kiosk.outbox.housekeep()
    files = raw_state_bytes(kiosk.state_dir)
    assert {"kiosk.sqlite3", "kiosk.sqlite3-wal", "device.key"} <= set(files)
    assert clear_text_found(files) == []


def test_the_request_is_kept_sealed_until_central_answers_and_the_document_until_it_is_printed(kiosk):
    kiosk.start()
    kiosk.outbox.sync.stop()                             # the link is slow today: the request waits
    kiosk.pay()
    kiosk.run_until(Step.ISSUING)
    (request_id,) = kiosk.wait_until_sent()
    (pending,) = kiosk.store.pending()
    # The request names the presence the card proved to central, and nothing of the citizen.
    assert pending.payload["presence_id"] and not any(secret in json.dumps(pending.payload, ensure_ascii=False)
                                                      for secret in SECRETS)
    assert clear_text_found(raw_state_bytes(kiosk.state_dir)) == []

    kiosk.outbox.start()                                 # central takes it
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    message = kiosk.store.find(request_id)
    assert message.state is MessageState.DELIVERED and not message.payload_kept   # gone when central answered
    assert message.answer_kept                                                      # the document, until...
    kiosk.outbox.housekeep()
    assert not kiosk.store.find(request_id).answer_kept                            # ... the journal says printed
    assert kiosk.store.answer(request_id) == {"status": "issued"}


def test_a_copy_of_the_database_without_the_device_key_opens_nothing(kiosk, tmp_path):
    kiosk.start()
    kiosk.outbox.sync.stop()
    kiosk.pay()
    kiosk.run_until(Step.ISSUING)
    kiosk.wait_until_sent()
    kiosk.database.run("PRAGMA wal_checkpoint(TRUNCATE)")
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    (stolen / "kiosk.sqlite3").write_bytes((kiosk.state_dir / "kiosk.sqlite3").read_bytes())
    database = StateDatabase(stolen / "kiosk.sqlite3")
    (message,) = Outbox(database, sealer=Sealer.ephemeral()).pending()
    assert message.payload is None                                               # it does not open
    database.close()
    kiosk.outbox.start()
    kiosk.run_until(Step.TAKE_CARD, printed=True)


def test_the_state_directory_and_its_files_are_the_kiosks_alone(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    assert mode(kiosk.state_dir) == 0o700
    for path in kiosk.state_dir.iterdir():
        assert mode(path) == 0o600, path.name
    key = (kiosk.state_dir / "device.key").read_bytes()
    assert len(key) == 32 and all(key not in data for name, data in raw_state_bytes(kiosk.state_dir).items()
                                  if name != "device.key")

