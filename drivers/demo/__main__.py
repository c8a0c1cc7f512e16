"""`make demo`: the kiosk with everything simulated and embedded.

With a display it is interactive: the kiosk opens in a window and the key
`i` inserts (and pulls) a citizen's virtual ID card; its cabinet is the gpio
driver on gpiozero's mock pins, which keys work (d door, m maintenance key,
h help, p paper low: drivers/demo/cabinet_keys.py), and its status light is
printed on every change. Without one it starts a virtual screen and runs a
full journey in Arabic, one in English, one with
a forged card, one paid by mobile app (the wallet pays the QR code on the
screen), one where the bank declines the first card for insufficient funds
and another card pays, and one where the paper runs out mid-certificate and
the document is reprinted, through the journey runner. The payment
terminal's citizen presents an approved bank card by themselves. Central serves
HTTPS under a CA made for the run, which the kiosk pins. It writes the screenshots
to OUT/screens/, the printed documents to OUT/printed/, and central's
document-verification public key to OUT/document-key.pem, and checks every
printed certificate from its picture as an official would:
`kiosk-central verify --key OUT/document-key.pem OUT/printed/<page>.png`.
The kiosk's state directory (its state database and device key) is kept in
OUT/state/ and the configuration it ran with in OUT/kiosk.toml (with central's CA,
OUT/central-ca.pem), so that
`kiosk queue status --config OUT/kiosk.toml` can look at what it left.
Headless, after the journeys, the update phase (drivers/demo/update.py; `--no-update` skips it):
0.1.0 installed in OUT/opt-kiosk, 0.2.0 built, published, offered, installed by `kiosk update run`
and proven after a restart between sessions, then a broken 0.3.0 rolled back by the guard by
itself; its log is OUT/update.log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from drivers.card_sim.card import CardProfile
from drivers.demo import update
from drivers.demo.stack import DemoStack, VirtualScreen, run_journey
from kiosk import logs

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
log = logging.getLogger("kiosk.demo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--headless", action="store_true", help="run the scripted journeys even with a display")
    parser.add_argument("--no-update", action="store_true",
                        help="skip the update phase after the journeys (drivers/demo/update.py)")
    args = parser.parse_args(argv)
    logs.setup()
    out = args.out.resolve()
    for folder in ("screens", "printed", "state", "opt-kiosk", "update-state", "dist"):
        shutil.rmtree(out / folder, ignore_errors=True)
    for name in ("update.log", "update-kiosk.log"):
        (out / name).unlink(missing_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    headless = not (os.environ.get("DISPLAY") and not args.headless)
    release_repo = update.make_repository(workdir / "release-repo") if headless and not args.no_update else None
    try:
        with DemoStack(workdir, printed_dir=out / "printed", state_dir=out / "state", central_tls=True,
                       release_repo=release_repo) as stack:
            keep_configuration(stack, out)
            key_path = stack.save_document_key(out / "document-key.pem")
            print("demo: central's document key in %s" % key_path)
            if os.environ.get("DISPLAY") and not args.headless:
                return _interactive(stack)
            return _headless(stack, out, release_repo)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def keep_configuration(stack: DemoStack, out: Path) -> Path:
    """The configuration the kiosk runs with, kept as OUT/kiosk.toml with the issuer key, central's
    key and central's CA (OUT/central-ca.pem) it names (its state directory is OUT/state already):
    `kiosk queue status --config OUT/kiosk.toml` works."""
    out.mkdir(parents=True, exist_ok=True)
    central_key = stack.workdir / "central-key.pem"
    text = stack.config_path.read_text(encoding="utf-8")
    text = text.replace(json.dumps(str(central_key)), '"central-key.pem"')
    if stack.central_ca is not None:
        text = text.replace(json.dumps(str(stack.central_ca)), '"central-ca.pem"')
        shutil.copyfile(stack.central_ca, out / "central-ca.pem")
    (out / "kiosk.toml").write_text(text, encoding="utf-8")
    shutil.copyfile(stack.workdir / "issuer.pub.pem", out / "issuer.pub.pem")
    shutil.copyfile(central_key, out / "central-key.pem")
    return out / "kiosk.toml"


def _headless(stack: DemoStack, out: Path, release_repo: Path | None) -> int:
    citizens = stack.citizen_numbers()
    plan = [("arabic", citizens[0], CardProfile.VALID), ("english", citizens[1], CardProfile.VALID),
            ("refused-card", citizens[2], CardProfile.FORGED), ("mobile-wallet", citizens[4], CardProfile.VALID),
            ("payment-declined", citizens[5], CardProfile.VALID), ("paper-out", citizens[3], CardProfile.VALID)]
    failed = []
    with VirtualScreen() as screen:
        for name, citizen, profile in plan:
            on_screen = {"insert_card": lambda c=citizen, p=profile: stack.insert(c, profile=p),
                         "take_card": stack.remove}
            if name == "paper-out":
                on_screen.update(stack.paper_runs_out_mid_certificate())
            stack.terminal.set_auto_present(None if name == "mobile-wallet" else "approve")
            if name == "mobile-wallet":
                on_screen["paying"] = stack.terminal.pay_wallet      # once the QR code is on the screen
            if name == "payment-declined":
                stack.terminal.present("insufficient-funds")        # the first card; the next is approved
            run = run_journey(stack, JOURNEYS / (name + ".json"), out / "screens" / name, display=screen.display,
                              on_screen=on_screen)
            stack.remove()
            print("demo: %s journey %s, screens: %s" % (name, "passed" if run.exit_code == 0 else "FAILED",
                                                        " > ".join(run.screens_seen)))
            if run.exit_code != 0:
                failed.append(name)
    printed = sorted(p.name for p in (out / "printed").glob("*.png"))
    print("demo: %d printed pages" % len(printed))
    for job in stack.printer.jobs:
        if job.complete and job.qr_codes:        # a certificate: checked as an official would, from the picture
            if not _genuine(out / "document-key.pem", job.png_path):
                failed.append(job.png_path.name)
    if release_repo is not None:         # the update phase, on the same stack (drivers/demo/update.py)
        with VirtualScreen(framebuffer_dir=stack.workdir / "framebuffer") as screen:
            if not update.UpdateDemo(stack, out, release_repo, screen).run():
                failed.append("update")
        print("demo: the update phase %s; its log: %s" % ("FAILED" if "update" in failed else "passed",
                                                           out / "update.log"))
    print("demo: screenshots in %s, printed documents in %s" % (out / "screens", out / "printed"))
    return 1 if failed else 0


def _genuine(key: Path, page: Path) -> bool:
    """`kiosk-central verify` on the printed page's picture."""
    result = subprocess.run([sys.executable, "-m", "central.cli", "verify", "--key", str(key), str(page)],
                            capture_output=True, text=True, timeout=60, check=False)
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines()[1:] if ": " in line)
    print("demo: %s %s (%s %s)" % (page.name, result.stdout.splitlines()[0] if result.stdout else "unreadable",
                                   fields.get("kind", "?"), fields.get("serial", "?")))
    return result.returncode == 0


def _interactive(stack: DemoStack) -> int:
    from drivers.demo import cabinet_keys
    from kiosk import backends
    from kiosk import config as kiosk_config
    from kiosk.app import build_devices, build_runtime

    run = backends.load_frontend("kivy")

    citizen = stack.citizen_numbers()[0]

    def toggle_card() -> None:
        if stack.slot.card is None:
            stack.insert(citizen)
        else:
            stack.remove()

    # The cabinet as on a device (the gpio backend), on mock pins the keys below work.
    factory = cabinet_keys.use_mock_pins()
    config = kiosk_config.load(cabinet_keys.with_cabinet(stack.config_path))
    panel = cabinet_keys.Panel(factory, config.cabinet)
    built: list = []

    def make_runtime(post):
        devices = build_devices(config)
        cabinet_keys.print_light(devices.cabinet)
        built.append(devices.cabinet)
        return build_runtime(config, post, devices=devices)

    print("demo: press i to insert or pull the ID card (PIN %s); close the window to stop" % "1234")
    for key, what in cabinet_keys.KEYS.items():
        print("demo: press %s for the cabinet's %s" % (key, what))
    try:
        return run(config, make_runtime, keys={"i": toggle_card, **panel.keys()})
    finally:
        panel.close()
        for cabinet in built:
            cabinet.close()


if __name__ == "__main__":
    sys.exit(main())
