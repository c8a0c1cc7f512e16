"""Spoken guidance: what each screen's prompt says, the build that makes the
prompt files with espeak-ng, and the player that plays them through Kivy's
audio (SDL2 with its dummy driver: a test machine has no sound card)."""

import logging
import os
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from kiosk import i18n
from screens import SCREENS
from screens import prompts
from screens.audio import Guide, PromptPlayer

os.environ.setdefault("SDL_AUDIODRIVER", "dummy")    # read when Kivy's audio first opens, in this process

ROOT = Path(__file__).resolve().parents[2]
# Arabic presentation forms: the shaped text a screen draws, never what a synthesiser is given.
PRESENTATION_FORMS = [chr(c) for c in list(range(0xFB50, 0xFE00)) + list(range(0xFE70, 0xFF00))]


def write_tone(path: Path, seconds: float = 0.5) -> Path:
    """A short WAV of a plain tone, standing in for a prompt or a person's recording."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 22050
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", 8000 if (i // 25) % 2 else -8000)
                                 for i in range(int(rate * seconds))))
    return path


def audio_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "screens.audio"]


# ------------------------------------------------------------ what is said


def test_every_screen_has_a_prompt_from_both_catalogues():
    assert set(prompts.PROMPTS) == set(SCREENS.values()) | set(prompts.VARIANTS)
    assert set(prompts.VARIANTS.values()) <= set(SCREENS.values())
    for language in i18n.LANGUAGES:
        known = i18n.message_ids(language)
        for screen, msgids in prompts.PROMPTS.items():
            assert msgids and set(msgids) <= known, (screen, language)


def test_a_prompt_is_the_same_for_every_citizen():
    """No field to fill in (a name, a fee, a typed digit): a prompt is made once, before any citizen comes."""
    for language in i18n.LANGUAGES:
        for msgids in prompts.PROMPTS.values():
            for msgid in msgids:
                assert "{" not in i18n.translations(language).gettext(msgid), (msgid, language)


def test_the_pin_prompt_says_what_to_do_and_the_identity_prompt_no_name():
    assert prompts.PROMPTS["pin_entry"] == ("pin.title", "pin.body")
    assert "identity.greeting" not in prompts.PROMPTS["identity"]
    assert prompts.prompt_text("pin_entry", "en") == \
        "Enter your PIN.\nType the PIN of your ID card (4 to 8 digits), then press OK."


def test_paying_by_mobile_app_and_a_changed_fee_are_spoken_with_their_own_prompts():
    from kiosk.ports.payment_terminal import PaymentMethod, PromptKind
    from kiosk.session import Step, View
    card = View(Step.PAYING, "en", payment_method=PaymentMethod.CARD, payment_prompt=PromptKind.PRESENT_CARD)
    wallet = View(Step.PAYING, "en", payment_method=PaymentMethod.WALLET, payment_prompt=PromptKind.SCAN_QR,
                  payment_qr="fakepay://pay?sale=1", payment_seconds_left=100)
    assert prompts.prompt_for("paying", card) == "paying"
    assert prompts.prompt_for("paying", wallet) == "paying_wallet"
    assert prompts.prompt_for("confirm", View(Step.CONFIRM, "en")) == "confirm"
    assert prompts.prompt_for("confirm", View(Step.CONFIRM, "en", fee_changed=True)) == "confirm_fee_changed"
    assert prompts.prompt_text("paying", "en") == (
        "Pay by bank card.\nInsert, tap or swipe your bank card on the payment terminal.\n"
        "If the terminal asks for your card's PIN, type it on the terminal's keypad, never on this screen.")
    assert prompts.prompt_text("paying_wallet", "en") == (
        "Pay by mobile app.\nScan this code with your mobile payment app, then confirm the payment there.")
    assert prompts.prompt_text("confirm_fee_changed", "en") == (
        "The fee for this certificate has changed.\n"
        "Nothing has been charged. Check the new fee, then choose how to pay.")
    # A declined payment's prompt holds what is true whatever the reason: nothing was charged, and the ways on.
    assert prompts.prompt_text("payment_declined", "en") == (
        "Payment not completed.\nNothing was charged.\n"
        "Try again by bank card, pay by mobile app, go back to choose another certificate, or cancel.")


def test_arabic_goes_to_the_synthesiser_in_logical_order_unshaped():
    for screen in prompts.PROMPTS:
        text = prompts.prompt_text(screen, "ar")
        assert text.startswith(i18n.text(prompts.PROMPTS[screen][0], "ar"))
        assert not any(form in text for form in PRESENTATION_FORMS), screen


# ------------------------------------------------------------ the build


@pytest.fixture(scope="module")
def espeak():
    if subprocess.run(["sh", "-c", "command -v espeak-ng"], capture_output=True).returncode != 0:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng; `make install` brings it)")


def test_build_writes_a_spoken_prompt_per_screen_and_language(espeak, tmp_path):
    out = tmp_path / "prompts"
    done = subprocess.run([sys.executable, "-m", "screens.prompts", "build", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    total = len(prompts.PROMPTS) * 2
    assert "prompts: %d written, 0 kept" % total in done.stdout
    assert done.stdout.count("wrote ") == total
    assert prompts.missing(out) == []
    for language in ("ar", "en"):
        for screen in prompts.PROMPTS:
            with wave.open(str(out / language / (screen + ".wav"))) as spoken:
                seconds = spoken.getnframes() / spoken.getframerate()
            assert 0.5 < seconds < 30, (language, screen, seconds)


def test_build_keeps_recordings_when_asked(espeak, tmp_path):
    out = tmp_path / "prompts"
    recording = write_tone(out / "ar" / "attract.wav").read_bytes()
    written = prompts.build(out, keep_recordings=True, report=lambda _line: None)
    assert (out / "ar" / "attract.wav").read_bytes() == recording
    assert len(written) == len(prompts.PROMPTS) * 2 - 1 and prompts.missing(out) == []
    prompts.build(out, report=lambda _line: None)        # without the option every file is made anew
    assert (out / "ar" / "attract.wav").read_bytes() != recording


# ------------------------------------------------------------ the player


@pytest.fixture
def player(tmp_path):
    made = PromptPlayer(tmp_path / "prompts")
    yield made
    made.stop()


def test_the_player_plays_the_screens_prompt_in_the_language_asked(player, caplog):
    caplog.set_level(logging.INFO, logger="screens.audio")
    write_tone(player.prompts / "en" / "pin_entry.wav")
    write_tone(player.prompts / "ar" / "pin_entry.wav")
    assert player.play("pin_entry", "en")
    sound = player._sound
    assert sound.state == "play" and Path(sound.source) == player.prompts / "en" / "pin_entry.wav"
    assert player.play("pin_entry", "ar")
    assert sound.state == "stop", "the prompt playing stops when another starts"
    assert player._sound.state == "play" and Path(player._sound.source) == player.prompts / "ar" / "pin_entry.wav"
    assert audio_lines(caplog) == ["audio.played screen=pin_entry language=en",
                                   "audio.played screen=pin_entry language=ar"]


def test_a_missing_prompt_is_silence_and_one_log_line(player, caplog):
    caplog.set_level(logging.INFO, logger="screens.audio")
    write_tone(player.prompts / "ar" / "attract.wav")
    player.play("attract", "ar")
    sound = player._sound
    assert not player.play("catalogue", "ar")
    assert sound.state == "stop" and player.playing is None
    assert audio_lines(caplog) == ["audio.played screen=attract language=ar",
                                   "audio.silent screen=catalogue language=ar reason=missing"]


def test_an_unloadable_prompt_is_silence_and_one_log_line(player, caplog):
    caplog.set_level(logging.INFO, logger="screens.audio")
    broken = player.prompts / "en" / "confirm.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"RIFF\x00\x00\x00\x00not a wave at all")
    assert not player.play("confirm", "en")
    assert player.playing is None
    assert audio_lines(caplog) == ["audio.silent screen=confirm language=en reason=unloadable"]


# ------------------------------------------------------------ when to speak


class RecordingPlayer:
    def __init__(self):
        self.calls = []

    def play(self, screen, language):
        self.calls.append((screen, language))
        return True

    def stop(self):
        self.calls.append("stop")


def test_guidance_speaks_each_new_screen_once_and_never_while_typing():
    player = RecordingPlayer()
    guide = Guide(player)
    guide.shown("attract", "ar", False)
    assert player.calls == [], "guidance is off until switched on"
    guide.shown("attract", "ar", True)                  # the citizen switched it on: this screen at once
    guide.shown("insert_card", "ar", True)
    for _digit in range(6):                              # every typed digit and every tick shows the screen again
        guide.shown("pin_entry", "ar", True)
    guide.shown("pin_entry", "en", True)                 # the language switched: the same screen, in English
    guide.shown("verifying", "en", False)                # switched off: silence
    guide.shown("identity", "en", False)
    assert player.calls == [("attract", "ar"), ("insert_card", "ar"), ("pin_entry", "ar"), ("pin_entry", "en"),
                            "stop"]


def test_listen_on_request_says_the_prompt_again():
    player = RecordingPlayer()
    guide = Guide(player)
    guide.shown("attract", "ar", True)
    guide.shown("attract", "ar", True)
    guide.listen("attract", "ar")                        # the listen button: again, on request
    guide.shown("insert_card", "en", True)
    assert player.calls == [("attract", "ar"), ("attract", "ar"), ("insert_card", "en")]
    silent = RecordingPlayer()
    Guide(silent).listen("catalogue", "en")              # the listen button works with guidance off too
    assert silent.calls == [("catalogue", "en")]
