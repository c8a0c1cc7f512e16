"""What each screen's spoken prompt says, and the build step that makes the prompts.

`PROMPTS` is the one table from a screen name (the values of `SCREENS`) to the
message ids its prompt says, in order: the screen's title and the body that
tells the citizen what to do. Only texts that are the same for every citizen
go in: a prompt is one file per screen and language, made before the kiosk is
installed, so it can never hold a name, a fee, a reason that varies, or a
digit the citizen typed. The PIN screen's prompt says what to do and how
many digits a PIN has, never which.

A screen that asks something else of the citizen in another state has a
prompt of its own for it (`VARIANTS`): paying by mobile app (scan the code)
rather than by card, and a fee that changed before it is paid. `prompt_for`
says which prompt a view is spoken with.

``python -m screens.prompts build OUT_DIR`` writes ``OUT_DIR/{ar,en}/<screen>.wav``
with espeak-ng (Debian package espeak-ng), from the texts of the translation
catalogues in their logical order, which is what a speech synthesiser reads
(the screen shows Arabic shaped and reordered; that is for the eyes only).
Any of these files may be replaced by a recording of a person reading the same
text; ``--keep-recordings`` leaves a file that is already there untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kiosk import i18n
from kiosk.ports.payment_terminal import PaymentMethod
from kiosk.session import View

# espeak-ng's voice for each catalogue's language.
VOICES = {"ar": "ar", "en": "en"}
WORDS_PER_MINUTE = 150       # a little slower than espeak-ng's 175, for citizens who listen rather than read

PROMPTS: dict[str, tuple[str, ...]] = {
    "starting": ("starting.title", "starting.body"),
    "attract": ("attract.welcome", "attract.prompt"),
    "insert_card": ("insert_card.title", "insert_card.body"),
    "reading_card": ("reading_card.title", "busy.keep_card"),
    "pin_entry": ("pin.title", "pin.body"),
    "verifying": ("verifying.title", "busy.keep_card"),
    "identity": ("identity.body",),     # the greeting holds the citizen's name: not spoken
    "catalogue": ("catalogue.title",),
    "confirm": ("confirm.title", "confirm.body"),
    "confirm_fee_changed": ("confirm.fee_changed_title", "confirm.fee_changed"),
    "confirm_needs_link": ("confirm.needs_link_title", "confirm.needs_link"),
    "preparing": ("preparing.title", "busy.keep_card"),
    "paying": ("paying.title", "paying.present_card", "paying.body"),
    "paying_wallet": ("paying.wallet_title", "paying.scan_qr"),
    # The reason varies (declined, wrong PIN, time ran out...): what is true of them all.
    "payment_declined": ("payment_declined.title", "payment_declined.body", "advice.payment_declined"),
    "issuing": ("issuing.title", "issuing.body"),
    "printing": ("printing.title", "printing.body"),
    "print_waiting": ("print_waiting.title", "print_waiting.body"),
    "claiming": ("claiming.title", "claiming.body"),
    "collecting": ("collecting.title", "collecting.body"),
    "printing_claim": ("printing.claim_title", "printing.claim_body"),
    "confirm_claim": ("confirm.claim_title", "confirm.claim"),
    "identity_waiting": ("identity.body", "identity.waiting_spoken"),
    "take_card": ("take_card.title",),
    "card_refused": ("card_refused.title",),
    "failed": ("failed.title",),
    "out_of_service": ("out_of_service.title",),
    "technician_pin": ("technician.pin_title", "technician.pin_body"),
    "technician": ("technician.title",),
}

# The prompts said for a state of a screen rather than the screen's own: prompt -> screen.
VARIANTS: dict[str, str] = {
    "confirm_fee_changed": "confirm",
    "confirm_needs_link": "confirm",
    "confirm_claim": "confirm",
    "printing_claim": "printing",
    "identity_waiting": "identity",
    "paying_wallet": "paying",
}


def prompt_for(screen: str, view: View) -> str:
    """The prompt that `view`, shown on `screen`, is spoken with: the screen's, or one of its VARIANTS."""
    if screen == "paying" and view.payment_method is PaymentMethod.WALLET:
        return "paying_wallet"
    if screen == "confirm" and view.needs_link:
        return "confirm_needs_link"
    if screen == "confirm" and view.claim:
        return "confirm_claim"
    if screen == "printing" and view.claim_reference:
        return "printing_claim"
    if screen == "identity" and view.waiting_documents:
        return "identity_waiting"
    if screen == "confirm" and view.fee_changed:
        return "confirm_fee_changed"
    return screen


_SENTENCE_ENDS = (".", "!", "?", "…", "؟", ":")


def prompt_text(screen: str, language: str) -> str:
    """The words of `screen`'s prompt in `language`, one sentence a line, in logical order."""
    lines = []
    for msgid in PROMPTS[screen]:
        line = i18n.text(msgid, language).strip()
        lines.append(line if line.endswith(_SENTENCE_ENDS) else line + ".")   # a pause after a title
    return "\n".join(lines)


def prompt_path(prompts: Path, screen: str, language: str) -> Path:
    return Path(prompts) / language / (screen + ".wav")


def synthesise(text: str, language: str, target: Path, *, espeak: str = "espeak-ng") -> None:
    """Speak `text` into the WAV file `target` with espeak-ng; the file is
    replaced only once it is complete."""
    partial = target.with_name(target.name + ".part")
    subprocess.run([espeak, "-v", VOICES[language], "-b", "1", "-s", str(WORDS_PER_MINUTE),
                    "-w", str(partial), "--stdin"],
                   input=text.encode("utf-8"), check=True, capture_output=True, timeout=60)
    os.replace(partial, target)


def build(out: Path, *, keep_recordings: bool = False, languages: tuple[str, ...] = i18n.LANGUAGES,
          espeak: str = "espeak-ng", report=print) -> list[Path]:
    """Write every screen's prompt in every language under `out`; returns the files written."""
    written = []
    for language in languages:
        (Path(out) / language).mkdir(parents=True, exist_ok=True)
        for screen in PROMPTS:
            target = prompt_path(out, screen, language)
            if keep_recordings and target.exists():
                report("kept %s" % target)
                continue
            synthesise(prompt_text(screen, language), language, target, espeak=espeak)
            report("wrote %s" % target)
            written.append(target)
    return written


def missing(prompts: Path, languages: tuple[str, ...] = i18n.LANGUAGES) -> list[Path]:
    """The prompt files not (yet) under `prompts`."""
    return [prompt_path(prompts, screen, language) for language in languages for screen in PROMPTS
            if not prompt_path(prompts, screen, language).is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screens.prompts",
                                     description="Make the screens' spoken prompts with espeak-ng.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write OUT_DIR/{ar,en}/<screen>.wav")
    make.add_argument("out", type=Path, metavar="OUT_DIR")
    make.add_argument("--keep-recordings", action="store_true",
                      help="leave a prompt file that is already there (a person's recording) untouched")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("prompts: espeak-ng is not installed (Debian: apt-get install espeak-ng)", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        written = build(args.out, keep_recordings=args.keep_recordings)
    except subprocess.CalledProcessError as exc:
        print("prompts: espeak-ng failed: %s" % exc.stderr.decode("utf-8", "replace").strip(), file=sys.stderr)
        return 1
    total = len(PROMPTS) * len(i18n.LANGUAGES)
    print("prompts: %d written, %d kept, in %s (%.1f s)"
          % (len(written), total - len(written), args.out, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
