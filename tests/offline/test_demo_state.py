"""What `make demo` leaves of the citizens in the kiosk's state directory: nothing readable.

The demo's stack with the state directory kept (as `make demo` keeps `demo-out/state/`), and one
whole paid journey through the real app; then every file of the state directory (the database,
its -wal and -shm, the device key) is read as raw bytes and searched for every seed citizen's
national number, card number and names.
"""

from __future__ import annotations

import json
import stat

import pytest

from drivers.demo.__main__ import keep_configuration
from drivers.demo.stack import DemoStack, VirtualScreen, run_journey
from kiosk import cli
from offline.database import StateDatabase
from offline.outbox import MessageState, Outbox
from tests.offline.kiosk_on_fakes import clear_text_found, raw_state_bytes
from tests.screens.conftest import JOURNEYS

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

NAME_FIELDS = ("given_name_ar", "family_name_ar", "given_name_latin", "family_name_latin", "father_name_ar",
               "mother_name_ar")


def citizens_secrets(stack: DemoStack) -> tuple[str, ...]:
    secrets: set[str] = set()
    for record in stack.citizens.values():
        secrets.update((record["national_number"], record["card_number"]))
        secrets.update(record[field] for field in NAME_FIELDS if record.get(field))
    return tuple(sorted(secrets))


def test_no_demo_citizen_is_readable_in_the_kept_state_directory(tmp_path, capsys):
    out = tmp_path / "demo-out"
    state = out / "state"
    with DemoStack(tmp_path / "stack", state_dir=state) as stack, VirtualScreen() as screen:
        kept = keep_configuration(stack, out)
        citizen = stack.citizen_numbers()[1]
        run = run_journey(stack, JOURNEYS / "english.json", tmp_path / "english", display=screen.display,
                          on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove},
                          timeout_s=180)
        assert run.exit_code == 0, "\n".join(run.output[-20:])
        assert "take_card" in run.screens_seen
        secrets = citizens_secrets(stack)
    files = raw_state_bytes(state)
    assert {"outbox.sqlite3", "device.key", "catalogue.json"} <= set(files)
    # The kept catalogue is central's public one, exactly as central signed it (a service's name may
    # share a word with a citizen's: "حسن" in good conduct): checked as such, and left out of the search.
    from kiosk.catalogue_supply import verify
    from central.signing import load_public_key_pem
    copy = json.loads(files["catalogue.json"])["document"]
    assert verify(copy, [load_public_key_pem(stack.document_key_pem)]).catalogue.get("non-conviction") is not None
    numbers = tuple(s for s in secrets if s.isascii() and any(ch.isdigit() for ch in s))
    assert numbers and clear_text_found({"catalogue.json": files["catalogue.json"]}, numbers) == []
    assert clear_text_found({k: v for k, v in files.items() if k != "catalogue.json"}, secrets) == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert {name: stat.S_IMODE((state / name).stat().st_mode) for name in files} == dict.fromkeys(files, 0o600)

    # Sealed or not, the citizen's request and document are gone once printed and the kiosk stopped.
    database = StateDatabase(state / "outbox.sqlite3", check=False)
    (request,) = Outbox(database).listing(MessageState.DELIVERED)
    assert request.outcome == "issued" and not request.payload_kept and not request.answer_kept
    database.close()

    # The kept configuration is the one the kiosk ran with: a technician's tool reads its state.
    capsys.readouterr()
    assert cli.main(["queue", "status", "--config", str(kept)]) == 0
    status = capsys.readouterr().out
    assert "pending               0" in status and "delivered, kept       1" in status
