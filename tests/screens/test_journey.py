"""Whole citizen journeys through the real app: touch events on a real window,
the card through pcscd, the fee at the nexo payment terminal, the certificate
on the printer, central over HTTP."""

import json
import re

import pytest
import zxingcpp
from PIL import Image

from sqlalchemy import select

from central.db import Database
from central.models import ClaimRecord, IssuedDocumentRecord
from tests.central.stub_http import ApiClient
from tests.screens.conftest import JOURNEYS

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

ARABIC_JOURNEY = ["attract", "insert_card", "reading_card", "pin_entry", "verifying", "identity", "catalogue",
                  "confirm", "preparing", "paying", "issuing", "printing", "take_card", "attract"]



def waiting_at_central(stack, national_number: str) -> list[dict]:
    """The documents claimed for this citizen that wait for them, as central's records hold them (only a
    kiosk with the citizen's card in its reader may ask central for them)."""
    database = Database(stack.central_db_url)
    try:
        with database.reading() as session:
            rows = session.scalars(
                select(IssuedDocumentRecord.document)
                .join(ClaimRecord, ClaimRecord.serial == IssuedDocumentRecord.serial)
                .where(ClaimRecord.national_number == national_number, ClaimRecord.collected_at.is_(None),
                       IssuedDocumentRecord.voided_at.is_(None))).all()
    finally:
        database.dispose()
    return [json.loads(row) for row in rows]

def qr_payloads(png_path):
    return [r.text for r in zxingcpp.read_barcodes(Image.open(png_path))]


def charges(central, stack):
    """The payments the terminal's acquirer holds, oldest first."""
    return stack.terminal.statement()["payments"]


def test_arabic_journey_prints_a_verifiable_certificate(stack, journey, central):
    citizen = stack.citizen_numbers()[0]
    run = journey("arabic", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-len(ARABIC_JOURNEY):] == ARABIC_JOURNEY

    # One paid charge, nothing given back.
    (charge,) = charges(central, stack)
    assert charge["status"] == "approved" and charge["amount_minor"] == 200000 and charge["given_back"] == ""

    # The certificate and its receipt came out; the QR read off the paper verifies at central.
    certificate, receipt = stack.printer.wait_for_jobs(2, timeout=10)
    assert certificate.complete and receipt.complete and certificate.cuts and receipt.cuts
    (payload,) = qr_payloads(certificate.png_path)
    assert payload.encode() == certificate.qr_codes[0].data
    verdict = central.get("/documents/verify", params={"payload": payload}).json()
    assert verdict["valid"] and verdict["status"] == "issued" and verdict["service_code"] == "family-statement"

    # Every step left a screenshot, and the journey log names them.
    script = json.loads((JOURNEYS / "arabic.json").read_text())["steps"]
    report = json.loads((run.out_dir / "journey.json").read_text())
    shots = [step["screenshot"] for step in report["steps"] if "screenshot" in step]
    assert len(shots) == sum(1 for step in script if "await" in step or "screenshot" in step)
    assert all((run.out_dir / shot).stat().st_size > 10_000 for shot in shots)


def test_english_journey_greets_the_citizen_by_latin_name(stack, journey, central):
    citizen = stack.citizen_numbers()[1]
    run = journey("english", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert "take_card" in run.screens_seen and run.screens_seen[-1] == "attract"
    (charge,) = charges(central, stack)
    assert charge["amount_minor"] == 150000 and charge["given_back"] == ""
    certificate, _receipt = stack.printer.wait_for_jobs(2, timeout=10)
    (payload,) = qr_payloads(certificate.png_path)
    assert central.get("/documents/verify", params={"payload": payload}).json()["service_code"] == \
        "civil-status-extract"


def test_card_pulled_mid_journey_ends_the_session_and_charges_nothing(stack, journey, central):
    citizen = stack.citizen_numbers()[0]
    run = journey("card-pulled", {"insert_card": lambda: stack.insert(citizen), "catalogue": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-2:] == ["catalogue", "attract"]
    assert charges(central, stack) == []
    assert stack.printer.jobs == []


def test_forged_card_is_refused_with_its_own_message_and_nothing_is_charged(stack, journey, central):
    from drivers.card_sim.card import CardProfile
    citizen = stack.citizen_numbers()[2]
    run = journey("refused-card", {"insert_card": lambda: stack.insert(citizen, profile=CardProfile.FORGED),
                                   "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert "identity" not in run.screens_seen and run.screens_seen[-3:] == ["card_refused", "take_card", "attract"]
    assert any("audit.card.refused detail=card_forged" in line for line in run.output)
    assert charges(central, stack) == [] and stack.printer.jobs == []


def test_declined_payment_can_be_paid_again(stack, journey, central):
    citizen = stack.citizen_numbers()[4]
    stack.terminal.present("insufficient-funds")      # the first card presented has too little on it
    run = journey("payment-declined", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    declined, paid = charges(central, stack)
    assert declined["status"] == "declined" and paid["status"] == "approved"
    assert declined["sale_id"] != paid["sale_id"] and paid["given_back"] == ""
    assert len(stack.printer.wait_for_jobs(2, timeout=10)) == 2


def test_paper_out_mid_certificate_waits_for_the_paper_and_prints_a_copy(stack, journey, central):
    citizen = stack.citizen_numbers()[0]
    run = journey("paper-out", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove,
                                **stack.paper_runs_out_mid_certificate()})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-4:] == ["print_waiting", "printing", "take_card", "attract"]
    (charge,) = charges(central, stack)
    assert charge["status"] == "approved" and charge["given_back"] == ""
    certificate, receipt = [job for job in stack.printer.wait_for_jobs(2, timeout=10) if job.complete]
    (payload,) = qr_payloads(certificate.png_path)
    assert central.get("/documents/verify", params={"payload": payload}).json()["valid"]


def test_wrong_pin_shows_the_tries_left_then_the_right_pin_opens(stack, journey):
    citizen = stack.citizen_numbers()[3]
    run = journey("wrong-pin", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-7:] == ["pin_entry", "verifying", "pin_entry", "verifying", "identity", "take_card",
                                     "attract"]
    # Neither PIN reaches the kiosk's log (ports and ids may hold the digits, not the number alone).
    assert not any(re.search(r"\b(9999|1234)\b", line) for line in run.output)


def test_silence_at_the_pin_screen_warns_then_ends_the_session(tmp_path, screen):
    from drivers.demo.stack import DemoStack, run_journey
    with DemoStack(tmp_path / "stack", pin_timeout_s=2, idle_warning_s=2) as stack:
        citizen = stack.citizen_numbers()[0]
        run = run_journey(stack, JOURNEYS / "idle.json", tmp_path / "idle", display=screen.display,
                          on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-3:] == ["pin_entry", "take_card", "attract"]
    warned = next(step for step in run.report["steps"] if step["step"].get("view") == {"idle_warning": True})
    assert (run.out_dir / warned["screenshot"]).is_file()


@pytest.fixture(scope="session")
def built_prompts(tmp_path_factory):
    """The spoken prompts `make prompts` wrote, or made now when some are not there."""
    from drivers.demo.stack import BUILT_PROMPTS
    from screens import prompts
    if not prompts.missing(BUILT_PROMPTS):
        return BUILT_PROMPTS
    out = tmp_path_factory.mktemp("prompts")
    prompts.build(out, report=lambda _line: None)
    return out


def test_audio_guidance_speaks_every_screen_in_the_session_language_and_nothing_on_the_pin(
        tmp_path, screen, built_prompts):
    from drivers.demo.stack import DemoStack, run_journey
    with DemoStack(tmp_path / "stack", prompts=built_prompts, audio_guidance=True) as stack:
        citizen = stack.citizen_numbers()[1]
        run = run_journey(stack, JOURNEYS / "english.json", tmp_path / "audio", display=screen.display,
                          on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    audio = [line.split(" ", 2)[2] for line in run.output if line.startswith("screens.audio ")]
    # Each screen shown said its own prompt once, in the session's language: Arabic until the citizen
    # touched English, and again once the session had ended.
    assert "pin_entry" in run.screens_seen and run.screens_seen[-1] == "attract"
    spoken_in = {"starting": "ar", "attract": "ar"}
    assert audio == ["audio.played screen=%s language=%s" % (name, spoken_in.get(name, "en"))
                     for name in run.screens_seen]
    assert all((built_prompts / lang / (name + ".wav")).is_file() for name, lang in
               (re.fullmatch(r"audio\.played screen=(\w+) language=(ar|en)", line).groups() for line in audio))
    # On the PIN screen, with four digits typed, nothing was played but its own prompt.
    start = next(i for i, line in enumerate(run.output) if line.endswith("screen.shown name=pin_entry"))
    end = next(i for i in range(start + 1, len(run.output)) if " screen.shown name=" in run.output[i])
    assert [line for line in run.output[start:end] if line.startswith("screens.audio ")] == \
        ["screens.audio INFO audio.played screen=pin_entry language=en"]


def test_the_citizen_switches_audio_on_at_the_pin_screen_and_asks_to_listen(tmp_path, screen, built_prompts):
    from drivers.demo.stack import DemoStack, run_journey
    script = tmp_path / "audio-switch.json"
    script.write_text(json.dumps({"name": "audio-switch", "steps": [
        {"await": "attract", "timeout": 60}, {"tap": "lang_ar"}, {"await": "insert_card"},
        {"await": "pin_entry", "timeout": 20}, {"tap": "audio"}, {"tap": "listen"}, {"pin": "1234"},
        {"tap": "key_ok"}, {"await": "identity", "timeout": 20}, {"tap": "cancel"}, {"await": "take_card"},
        {"await": "attract", "timeout": 20}]}))
    with DemoStack(tmp_path / "stack", prompts=built_prompts) as stack:
        citizen = stack.citizen_numbers()[0]
        run = run_journey(stack, script, tmp_path / "audio", display=screen.display,
                          on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    audio = [line.split(" ", 2)[2] for line in run.output if line.startswith("screens.audio ")]
    # Silent until switched on; then the PIN screen's prompt at once and again on request (the digits typed
    # after it said nothing), and every screen after it, "take your card" included: the citizen's choices
    # go with the card, and end when it is out.
    assert audio == ["audio.played screen=%s language=ar" % name
                     for name in ("pin_entry", "pin_entry", "verifying", "identity", "take_card")]
    assert run.screens_seen[-1] == "attract"


def test_arabic_indic_digits_journey_and_a_touch_gives_more_time(tmp_path, screen):
    """Arabic with Arabic-Indic digits; the idle warning counts down, and a touch on it
    gives more time without pressing the key under it."""
    from drivers.demo.stack import DemoStack, run_journey
    with DemoStack(tmp_path / "stack", pin_timeout_s=3, idle_warning_s=20, digits="arabic-indic") as stack:
        assert 'digits = "arabic-indic"' in stack.config_path.read_text(encoding="utf-8")
        citizen = stack.citizen_numbers()[0]
        run = run_journey(stack, JOURNEYS / "arabic-indic.json", tmp_path / "arabic-indic", display=screen.display,
                          on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
        assert run.exit_code == 0, "\n".join(run.output[-20:])
        assert stack.printer.wait_for_jobs(2, timeout=10)
    assert run.screens_seen[-3:] == ["printing", "take_card", "attract"]
    assert "take_card" in run.screens_seen and "failed" not in run.screens_seen
    shots = [step["screenshot"] for step in run.report["steps"] if "screenshot" in step]
    assert any(shot.endswith("idle_countdown.png") for shot in shots)


def test_printer_down_before_paying_fails_with_what_to_do_and_charges_nothing(stack, journey, central):
    from drivers.printer_sim.server import PaperLevel
    citizen = stack.citizen_numbers()[0]
    stack.printer.set_paper(PaperLevel.OUT)
    run = journey("printer-down", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-4:] == ["preparing", "failed", "take_card", "attract"]
    assert charges(central, stack) == [] and stack.printer.jobs == []


def taps_between(report, first, last):
    """The tap ids touched after the screen `first` came and before `last` did, as the report lists them."""
    steps = [entry["step"] for entry in report["steps"]]
    start = next(i for i, step in enumerate(steps) if step.get("await") == first)
    end = next(i for i in range(start + 1, len(steps)) if steps[i].get("await") == last)
    return [step["tap"] for step in steps[start:end] if "tap" in step]


def test_a_certificate_on_the_second_page_of_its_category_in_arabic(stack, journey, central):
    citizen = stack.citizen_numbers()[0]
    run = journey("category-arabic", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert run.screens_seen[-8:] == ["catalogue", "confirm", "preparing", "paying", "issuing", "printing",
                                     "take_card", "attract"]
    # From the name on screen to the confirmation: a category, a page turned, the certificate.
    assert taps_between(run.report, "identity", "confirm") == [
        "continue", "category_civil-status", "page_next", "service_id-card-statement"]
    (charge,) = charges(central, stack)
    assert charge["status"] == "approved" and charge["amount_minor"] == 100000 and charge["given_back"] == ""
    certificate, _receipt = stack.printer.wait_for_jobs(2, timeout=10)
    (payload,) = qr_payloads(certificate.png_path)
    assert central.get("/documents/verify", params={"payload": payload}).json()["service_code"] == "id-card-statement"
    shots = [entry["screenshot"] for entry in run.report["steps"] if entry["step"].get("await") == "catalogue"]
    assert len(shots) == 3 and all((run.out_dir / shot).stat().st_size > 10_000 for shot in shots)


def test_the_citizen_pages_a_category_goes_back_and_takes_another_in_english(stack, journey, central):
    citizen = stack.citizen_numbers()[1]
    run = journey("category-english", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert "take_card" in run.screens_seen and run.screens_seen[-1] == "attract"
    (charge,) = charges(central, stack)
    assert charge["amount_minor"] == 200000 and charge["given_back"] == ""
    certificate, _receipt = stack.printer.wait_for_jobs(2, timeout=10)
    (payload,) = qr_payloads(certificate.png_path)
    assert central.get("/documents/verify", params={"payload": payload}).json()["service_code"] == "good-conduct"
    # Straight from the categories, a certificate is two touches away.
    assert taps_between(run.report, "identity", "confirm")[-3:] == ["back", "category_justice", "service_good-conduct"]


def test_extra_large_text_and_high_contrast_last_the_whole_journey_and_end_with_it(stack, journey, central):
    citizen = stack.citizen_numbers()[0]
    run = journey("large-contrast", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    (charge,) = charges(central, stack)
    assert charge["amount_minor"] == 150000 and charge["given_back"] == ""
    # Every screen of the journey has its screenshot, at extra large and in high contrast.
    shots = [step["screenshot"] for step in run.report["steps"] if "screenshot" in step]
    assert len(shots) >= 10 and all((run.out_dir / shot).stat().st_size > 10_000 for shot in shots)


# ---------------------------------------------------------------- at the payment terminal


def test_paid_by_mobile_app_the_citizen_scans_the_code_and_gets_the_document(stack, journey):
    citizen = stack.citizen_numbers()[0]
    stack.terminal.set_auto_present(None)             # nobody taps a bank card: the wallet pays
    run = journey("mobile-wallet", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove,
                                    "paying": stack.terminal.pay_wallet})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    (payment,) = charges(None, stack)
    assert (payment["method"], payment["status"], payment["given_back"]) == ("wallet", "approved", "")
    certificate, receipt = stack.printer.wait_for_jobs(2, timeout=10)
    assert certificate.complete and receipt.complete


@pytest.mark.parametrize("card, journey_name, reason", [
    ("wrong-pin", "terminal-wrong-pin", "wrong_pin"),
    ("removed", "terminal-card-removed", "card_removed"),
])
def test_a_card_the_terminal_did_not_take_says_why_and_charges_nothing(stack, journey, card, journey_name, reason):
    citizen = stack.citizen_numbers()[1]
    stack.terminal.present(card)                      # the first card presented: its PIN typed wrong, or pulled
    run = journey(journey_name, {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove,
                                 "paying": stack.terminal.pay_wallet})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    first = charges(None, stack)[0]
    assert first["status"] != "approved"
    if reason == "card_removed":                      # then paid by mobile app, and printed
        (paid,) = [p for p in charges(None, stack) if p["status"] == "approved"]
        assert paid["method"] == "wallet" and paid["given_back"] == ""
        assert len(stack.printer.wait_for_jobs(2, timeout=10)) == 2
    else:                                             # then cancelled: nothing charged, nothing printed
        assert [p["status"] for p in charges(None, stack)] == [first["status"]] and stack.printer.jobs == []


def test_cancel_while_the_terminal_waits_for_a_card_stops_the_terminal(stack, journey):
    citizen = stack.citizen_numbers()[2]
    stack.terminal.set_auto_present(None)             # the citizen never presents a card
    run = journey("terminal-cancel", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert not [p for p in charges(None, stack) if p["status"] == "approved"] and stack.printer.jobs == []
    assert stack.terminal.wait_until_waiting(0) is False   # the terminal is not waiting for a card any more


@pytest.mark.parametrize("fault", ["offline", "busy"])
def test_a_terminal_down_or_busy_makes_paid_services_unavailable_before_any_charge(stack, journey, fault):
    citizen = stack.citizen_numbers()[3]
    stack.terminal.fault(fault)
    run = journey("terminal-down", {"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
    assert run.exit_code == 0, "\n".join(run.output[-20:])
    assert charges(None, stack) == [] and stack.printer.jobs == []


def test_offline_with_a_kept_catalogue_a_claim_is_paid_then_collected_at_another_kiosk(tmp_path, screen):
    """A town hall's link goes down. The kiosk starts on the catalogue it kept (signed by central),
    shows the link down, refuses a certificate that needs central before anything is paid, and takes a
    claim for one that may be claimed: paid at the terminal, a claim slip with its reference. The link
    comes back: the claim reaches central, which issues it. At another kiosk the citizen's card is
    enough: the document is waiting, printed as a certificate that verifies, collected once; nothing
    more is paid."""
    from drivers.demo.stack import DemoStack, run_journey
    with DemoStack(tmp_path / "stack", cuttable_link=True) as stack, \
            ApiClient(stack.central.url + "/api/v1", timeout_s=10) as central:
        citizen = stack.citizen_numbers()[0]
        record = stack.citizens[citizen]
        card = {"insert_card": lambda: stack.insert(citizen)}

        # Online once: the kiosk keeps central's signed catalogue beside its state.
        online = tmp_path / "online-start.json"
        online.write_text(json.dumps({"name": "online-start", "steps": [
            {"await": "attract", "timeout": 60, "view": {"link": "online"}}]}))
        run = run_journey(stack, online, tmp_path / "online-start", display=screen.display, on_screen={})
        assert run.exit_code == 0, "\n".join(run.output[-20:])
        kept = json.loads((stack.state_dir / "catalogue.json").read_text(encoding="utf-8"))
        assert kept["document"]["signature"]["alg"] == "Ed25519"

        # The link goes down; the kiosk starts again on its own copy.
        stack.cut_link()

        def card_out_and_link_back() -> None:
            stack.remove()
            stack.restore_link()
        run = run_journey(stack, JOURNEYS / "offline-claim.json", tmp_path / "offline-claim", display=screen.display,
                          on_screen={**card, "take_card": card_out_and_link_back}, timeout_s=240)
        assert run.exit_code == 0, "\n".join(run.output[-30:])
        assert any("catalogue.copy_used" in line for line in run.output)
        seen = run.screens_seen
        # Non-conviction needs central: refused on the confirm screen, before anything was asked of the terminal.
        assert seen[seen.index("catalogue"):seen.index("paying")].count("confirm") >= 2
        (payment,) = stack.terminal.statement()["payments"]
        assert payment["status"] == "approved" and payment["amount_minor"] == 150000 and payment["given_back"] == ""
        (slip,) = stack.printer.wait_for_jobs(1, timeout=10)
        (reference,) = [qr.data.decode() for qr in slip.qr_codes]
        assert re.fullmatch(r"CLM-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", reference)
        assert record["national_number"] not in reference and qr_payloads(slip.png_path) == [reference]

        # The link is back: central issued the claim, and it waits for its citizen.
        waiting = waiting_at_central(stack, citizen)
        assert [d["service_code"] for d in waiting] == ["civil-status-extract"]

        # Another kiosk on the same stack: the card, the PIN, the documents waiting, printed; no payment.
        other = stack.kiosk_config("demo-kiosk-02", tmp_path / "kiosk-02-state")
        run = run_journey(stack, JOURNEYS / "collect-claim.json", tmp_path / "collect-claim", display=screen.display,
                          on_screen={**card, "take_card": stack.remove}, config=other, timeout_s=240)
        assert run.exit_code == 0, "\n".join(run.output[-30:])
        assert "collecting" in run.screens_seen and "paying" not in run.screens_seen
        certificate = stack.printer.wait_for_jobs(2, timeout=10)[1]
        assert certificate.complete and certificate.cuts
        (verification,) = qr_payloads(certificate.png_path)
        verdict = central.get("/documents/verify", params={"payload": verification}).json()
        assert verdict["valid"] and verdict["serial"] == waiting[0]["serial"]
        assert verdict["service_code"] == "civil-status-extract"
        assert len(stack.terminal.statement()["payments"]) == 1               # nothing more was paid
        # Collected once: it waits no more.
        assert waiting_at_central(stack, citizen) == []
