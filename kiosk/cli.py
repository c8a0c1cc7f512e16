"""`kiosk`: run the kiosk, and the technicians' tools.

    kiosk run [--config C] [--journey J.json --out DIR]
    kiosk config check [--config C]
    kiosk card check [--config C] [--trust ISSUER.pem ...] [--reader NAME]   (PIN on stdin)
    kiosk queue status | list | dead | retry ID | export FILE [--config C]
    kiosk audit verify [--against EXPORT.json] | export FILE [--config C]
    kiosk provision --central URL --code CODE [--config C]
    kiosk provision --setup --central URL --code CODE --device-id ID --trust ISSUER.pem [--ca CA.pem] [--yes] ...
    kiosk technician hash-pin                                                (PIN on stdin)
    kiosk console-switch lock | unlock                                       (as root: systemd's ExecStartPre=+)
    kiosk selftest [--config C] [--json] [--test-page] [--beside-kiosk] [--report]
    kiosk update check | download [--config C]
    kiosk update install BUNDLE [--root DIR] | status [--root DIR]           (install: as root)
    kiosk update run [--config C] [--root DIR]                               (as root: kiosk-update.timer)
    kiosk update offer [--config C]                                          (what this kiosk's rollout offers)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk import app, backends
from kiosk import config as kiosk_config
from kiosk import fonts, logs
from kiosk.errors import KioskError
from kiosk.updates import trial

if TYPE_CHECKING:
    from kiosk.updates import fetch

log = logging.getLogger("kiosk")

CARD_CHECK_HELP = """\
Read the card in the ID reader as the kiosk would (power up, SELECT, VERIFY,
EF.ID and EF.ID_SIG, both authenticity checks, the expiry) and print one
line, with no personal data: `valid apdus=34`, `forged apdus=6` (or a
photo that is not the one the issuer signed), `wrong PIN
(2 tries left) apdus=1`, `no card in reader "NAME"`, `no reader`, ... Exit 0
only for a valid card, 1 for any other verdict, 2 for a usage or
configuration problem. The PIN is read from standard input, never echoed.
The check is the card backend's own tool (`kiosk.tools` entry points)."""

TECHNICIAN_HELP = """\
The technician screen opens with the cabinet's maintenance key, then a PIN
of 6 to 12 digits. `hash-pin` reads the PIN on standard input (asked twice,
not echoed, at a terminal) and prints one line, its salted scrypt hash, for
`[technician] pin_hash` in kiosk.toml: the PIN itself is never stored or
logged. Exit 2 for a PIN that is not 6 to 12 digits."""

PROVISION_HELP = """\
Make this kiosk's device key (Ed25519; its private half never leaves the
device) and enrol it at central with the one-time code central staff issued
for this device id (`kiosk-central devices enrol-code DEVICE_ID`). The key
goes to `central.device_key_path` (0600), central's public key to
`central.catalogue_key` (or beside the device key), and only once central
accepted the code. Exit 0 when enrolled, 1 when refused or unreachable.

--setup (a fresh device): first find the devices (the PC/SC readers pcscd
lists, the USB printers drivers/PRINTERS.md knows by their ids, the serial
ports), show them numbered and ask which reader and which printer (one
answer a line on standard input: a number, Enter for the first, n to stop;
--yes takes the first of each without asking), then write the configuration
(--config, default /etc/kiosk/kiosk.toml) from the choice, --device-id,
--central, --trust, --ca and --state-dir, over the values of the file
already there when it is valid. The file is checked before it replaces the
old one, which is kept as kiosk.toml.bak; a refusal or an invalid file writes
nothing. Then the state directory is made (0700), the kiosk enrolled as
above, and `kiosk selftest` run, its lines printed. Exit 0 when enrolled and
nothing failed, 1 otherwise. The discovery is the drivers' tool
(`kiosk.tools` entry point `discover`)."""

QUEUE_HELP = """\
The outbox's messages for central, as a technician needs them, with no
personal data: `status` (counts, the oldest pending message's age, the
database's size, the free disk, the link as the kiosk last saw it), `list`
(pending messages), `dead` (dead letters and why), `retry ID` (a dead letter
back in the queue), `export FILE` (all of it as JSON). The outbox backend's
own tool (`kiosk.tools` entry points)."""

AUDIT_HELP = """\
The audit log: what happened at this kiosk (cards refused, documents printed,
technicians' actions) as codes, each entry chained to the one before by
SHA-256, with the newest entry's hash kept beside the database as an anchor.
`verify` checks the chain, the anchor and (with --against) a copy exported
earlier, and names the first bad sequence number: exit 0 intact, 1 not.
`export FILE` writes every entry as JSON. The outbox backend's own tool
(`kiosk.tools` entry points)."""

SELFTEST_HELP = """\
Check the whole device, one line per check (status, name, detail; no personal
data): card-reader (present and answering; a card in it is SELECTed, never
asked a PIN), payment-terminal (logged in), printer (status; --test-page
prints a short page), cabinet (the status light through every pattern, and
the inputs read: a door open or paper low is a warning),
central (reached over HTTPS, this kiosk authenticated by its device key),
clock (against the Date of central's answer: more than 60 s apart fails),
disk (free space for the state directory), outbox (the state database's
integrity; dead letters are a warning). Each check has a time limit: a device
that is missing or hangs fails. Exit 0 when nothing failed (warnings and
skipped checks included), 1 when a check failed (the last line names them),
2 for a usage or configuration problem. --json prints the report as JSON.
--beside-kiosk leaves a running kiosk's devices alone (their checks are
skipped): the hourly timer's way. --report sends the report (as --json
prints it) to central too, signed with the device key; when central does not
take it, one line on stderr says why, and the exit status is the test's."""

CONSOLE_SWITCH_HELP = """Ctrl+Alt+F<n> must not take a citizen to an empty console. `lock` turns the
kernel's console switching off for the whole machine (VT_LOCKSWITCH on
/dev/console, which needs root); `unlock` turns it back on. systemd runs them
with full privileges before the kiosk starts and after it stops
(systemd/kiosk.service). Exit 0 when done, 1 with one line saying why not."""

UPDATE_HELP = """\
Signed updates (The Update Framework). `check` refreshes the release
repository's metadata (central's /tuf, or [updates] repository_url) from the
root the firmware ships and the metadata trusted since, and prints the
version running, the newest release for this platform and whether it is
newer. `download` also downloads the newest release when it is newer
(resuming a download that was cut) and prints the verified bundle's path.
Exit 0 when done, 1 when the repository was refused (a forgery, a rollback,
an expired or mixed repository: nothing of it is kept) or cannot be reached,
or the disk has no room, 2 for a configuration problem."""

INSTALL_HELP = """\
Install a verified release bundle (kiosk-<version>-<platform>.tar) beside the
running version, as root: the disk checked first, the wheels unpacked into
/opt/kiosk/versions/<version>/ with a virtual environment of its own, the
running version never touched. The first version becomes current at once;
a later one is switched to between sessions (the running kiosk restarts into
it when nobody is served), must reach the attract screen and pass its
self-test within the guard's time limit, and is rolled back by itself if it
does not; a version whose start failed three times is refused for good.
Exit 0 when installed, 1 when refused or failed (the running version is as
it was). `status` prints what is installed, pending, on trial and refused."""


def main(argv: list[str] | None = None) -> int:
    started_at = time.monotonic()
    parser = argparse.ArgumentParser(prog="kiosk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the kiosk application")
    _config_option(run)
    run.add_argument("--journey", type=Path, help="drive the app through this scripted journey (JSON)")
    run.add_argument("--out", type=Path, default=Path("journey-out"),
                     help="where a journey writes its screenshots and log")
    run.add_argument("--frontend", default="kivy", help="the user interface to start (default %(default)s)")
    run.set_defaults(handler=_run)

    check = commands.add_parser("config", help="configuration tools").add_subparsers(dest="what", required=True)
    check_config = check.add_parser("check", help="validate the configuration and say what is wrong")
    _config_option(check_config)
    check_config.set_defaults(handler=_config_check)

    card = commands.add_parser("card", help="ID card tools").add_subparsers(dest="what", required=True)
    check_card = card.add_parser(
        "check", help="read the card in the ID reader (PIN on stdin) and print one verdict line",
        description=CARD_CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check_card.add_argument("--config", type=Path, default=None,
                            help="configuration file (default %s when it exists)" % kiosk_config.DEFAULT_PATH)
    check_card.add_argument("--trust", type=Path, action="append", default=[], metavar="ISSUER.pem",
                            help="trust this issuer public key (PEM) too; repeatable")
    check_card.add_argument("--reader", default=None, metavar="NAME",
                            help="leading part of the ID reader's PC/SC name (overrides the configuration)")
    check_card.add_argument("-v", "--verbose", action="store_true",
                            help="log the driver's events (no card data) on stderr")
    check_card.set_defaults(handler=_card_check)

    queue = commands.add_parser("queue", help="the outbox, for technicians (no personal data)",
                                description=QUEUE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
                                ).add_subparsers(dest="what", required=True)
    for action, about in (("status", "counts, the oldest pending message's age, the file's size, the link"),
                          ("list", "pending messages: id, kind, transaction, attempts, next try"),
                          ("dead", "dead letters: id, kind, transaction, when and why central refused them")):
        _config_option(queue.add_parser(action, help=about)).set_defaults(handler=_queue, argument=None)
    retry = queue.add_parser("retry", help="put a dead letter back in the queue")
    retry.add_argument("argument", metavar="ID", help="the dead letter's message id")
    _config_option(retry).set_defaults(handler=_queue)
    export = queue.add_parser("export", help="write the status, the pending messages and the dead letters as JSON")
    export.add_argument("argument", metavar="FILE", help="where to write")
    _config_option(export).set_defaults(handler=_queue)

    audit = commands.add_parser("audit", help="the tamper-evident audit log (codes only, no personal data)",
                                description=AUDIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
                                ).add_subparsers(dest="what", required=True)
    verify = audit.add_parser("verify", help="check the hash chain and its anchor; name the first bad entry")
    verify.add_argument("--against", type=Path, default=None, metavar="EXPORT.json",
                        help="also check that a copy exported earlier is still the log's beginning")
    _config_option(verify).set_defaults(handler=_audit, argument=None)
    audit_export = audit.add_parser("export", help="write every entry as JSON, with the anchor and the verdict")
    audit_export.add_argument("argument", metavar="FILE", help="where to write")
    _config_option(audit_export).set_defaults(handler=_audit, against=None)

    enrol = commands.add_parser("provision", help="make this kiosk's device key and enrol it at central",
                                description=PROVISION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    enrol.add_argument("--central", required=True, metavar="URL", help="central's URL (https://...)")
    enrol.add_argument("--code", required=True, help="the one-time enrolment code central staff issued")
    _config_option(enrol).set_defaults(handler=_provision)
    setup = enrol.add_argument_group("--setup: find the devices and write the configuration first")
    setup.add_argument("--setup", action="store_true",
                       help="find the reader and the printer, write the configuration, enrol, then run the self-test")
    setup.add_argument("--yes", action="store_true", help="take the first reader and printer found, ask nothing")
    setup.add_argument("--device-id", default=None, metavar="ID", help="this kiosk's id, as central knows it")
    setup.add_argument("--trust", type=Path, action="append", default=[], metavar="ISSUER.pem",
                       help="an ID card issuer's public key (PEM); repeatable")
    setup.add_argument("--ca", type=Path, default=None, metavar="CA.pem",
                       help="the CA that signs central's certificate (PEM), pinned")
    setup.add_argument("--printer-host", default="", metavar="HOST",
                       help="offer a network printer at this address too")
    setup.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                       help="the state directory (outbox, device key; default /var/lib/kiosk or the file's)")

    selftest = commands.add_parser("selftest", help="check every device, central, the clock, the disk and the outbox",
                                   description=SELFTEST_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    selftest.add_argument("--json", action="store_true", help="print the report as JSON (for a machine)")
    selftest.add_argument("--test-page", action="store_true", help="print a short test page too")
    selftest.add_argument("--beside-kiosk", action="store_true",
                          help="the kiosk is running: leave its devices alone (the timer's way)")
    selftest.add_argument("--report", action="store_true",
                          help="send the report to central too (signed; kept with the kiosk's telemetry)")
    _config_option(selftest).set_defaults(handler=_selftest)

    technician = commands.add_parser("technician", help="the technician screen's PIN",
                                     description=TECHNICIAN_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter
                                     ).add_subparsers(dest="what", required=True)
    technician.add_parser("hash-pin", help="read a PIN (6 to 12 digits) on stdin, print its salted hash"
                          ).set_defaults(handler=_technician_hash_pin)

    console = commands.add_parser("console-switch", help="lock or unlock the kernel's console switching (as root)",
                                  description=CONSOLE_SWITCH_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    console.add_argument("what", choices=("lock", "unlock"))
    console.set_defaults(handler=_console_switch)

    update_commands = commands.add_parser("update", help="signed updates: the newest release, downloaded",
                                          description=UPDATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
                                          ).add_subparsers(dest="what", required=True)
    _config_option(update_commands.add_parser("check", help="the newest release, and whether it is newer")
                   ).set_defaults(handler=_update_check)
    _config_option(update_commands.add_parser(
        "download", help="the newest release downloaded and verified, when it is newer")
                   ).set_defaults(handler=_update_download)
    install = update_commands.add_parser("install", help="install a verified bundle beside the running version",
                                         description=INSTALL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    install.add_argument("bundle", type=Path, metavar="BUNDLE", help="kiosk-<version>-<platform>.tar")
    install.add_argument("--root", type=Path, default=Path("/opt/kiosk"), help="where versions live (default %(default)s)")
    install.set_defaults(handler=_update_install)
    update_status = update_commands.add_parser("status", help="the installed versions, the trial, the refused ones")
    update_status.add_argument("--root", type=Path, default=Path("/opt/kiosk"),
                               help="where versions live (default %(default)s)")
    update_status.set_defaults(handler=_update_status)
    run_updater = update_commands.add_parser(
        "run", help="the updater (root, kiosk-update.timer): the release the rollout offers, verified and installed")
    run_updater.add_argument("--root", type=Path, default=Path("/opt/kiosk"),
                             help="where versions live (default %(default)s)")
    _config_option(run_updater).set_defaults(handler=_update_run)
    _config_option(update_commands.add_parser(
        "offer", help="the release central's staged rollout offers this kiosk (the only one it installs)")
                   ).set_defaults(handler=_update_offer)

    args = parser.parse_args(argv)
    if args.command in ("card", "queue", "provision", "audit", "update"):
        # stdout is kept for the one verdict line (or the queue's report); the log goes to stderr.
        logs.setup(sys.stderr, logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    else:
        logs.setup()
    try:
        return args.handler(args, started_at)
    except KioskError as exc:
        print("kiosk: %s" % exc, file=sys.stderr)
        return 2


def _technician_hash_pin(_args: argparse.Namespace, _started_at: float) -> int:
    """The PIN from stdin (asked twice, not echoed, on a terminal); its hash alone on stdout."""
    from kiosk.technician import PIN_MAX_DIGITS, PIN_MIN_DIGITS, hash_pin, is_valid_pin

    if sys.stdin.isatty():
        import getpass
        pin = getpass.getpass("technician PIN (%d to %d digits): " % (PIN_MIN_DIGITS, PIN_MAX_DIGITS))
        if getpass.getpass("the same PIN again: ") != pin:
            print("kiosk technician hash-pin: the two PINs differ", file=sys.stderr)
            return 2
    else:
        pin = sys.stdin.readline().rstrip("\r\n")
    if not is_valid_pin(pin):
        print("kiosk technician hash-pin: a technician PIN is %d to %d digits (0-9), nothing else"
              % (PIN_MIN_DIGITS, PIN_MAX_DIGITS), file=sys.stderr)
        return 2
    print(hash_pin(pin))
    return 0


def _config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, default=kiosk_config.DEFAULT_PATH,
                        help="configuration file (default %(default)s)")
    return parser


def _config_check(args: argparse.Namespace, _started_at: float) -> int:
    config = kiosk_config.load(args.config)
    fonts.check()
    print("%s: valid (device %s, central %s)" % (args.config, config.device_id, config.central.url))
    if not config.central.device_key_path.exists():
        print("not provisioned yet: no device key at %s (`kiosk provision --central URL --code CODE`)"
              % config.central.device_key_path)
    return 0


def _card_check(args: argparse.Namespace, _started_at: float) -> int:
    run = backends.load_tool("card-check")
    return run(args.config, args.trust, args.reader)


def _provision(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.provisioning import ProvisioningError, provision

    if args.setup:
        return _provision_setup(args)
    if args.yes or args.device_id or args.trust or args.ca or args.printer_host or args.state_dir:
        print("kiosk provision: --yes, --device-id, --trust, --ca, --printer-host and --state-dir go with --setup",
              file=sys.stderr)
        return 2
    config = kiosk_config.load(args.config)
    try:
        enrolment = provision(config, args.central, args.code)
    except ProvisioningError as exc:
        print("kiosk provision: %s" % exc, file=sys.stderr)
        return 1
    print("enrolled: device %s at %s; device key %s, central's key %s" % (
        enrolment.device_id, enrolment.enrolled_at, enrolment.device_key, enrolment.central_key))
    return 0


def _provision_setup(args: argparse.Namespace) -> int:
    """Find the devices, write the configuration, make the state directory, enrol, run the self-test."""
    from kiosk import device_setup, selftest
    from kiosk.provisioning import ProvisioningError, provision

    discovery = backends.load_tool(device_setup.TOOL)()
    try:
        choice = device_setup.choose(discovery, answers=sys.stdin, out=sys.stdout, yes=args.yes,
                                     printer_host=args.printer_host, config_path=args.config)
        if choice is None:
            print("kiosk provision: stopped, nothing written", file=sys.stderr)
            return 1
        raw = device_setup.configuration_for(choice, existing=args.config, device_id=args.device_id,
                                             central_url=args.central, trust=args.trust, ca=args.ca,
                                             state_dir=args.state_dir)
        config = device_setup.write_config(args.config, device_setup.to_toml(raw))
        print("written: %s (card reader %s, printer %s)" % (args.config, choice.reader_label, choice.printer_label))
        state_dir = device_setup.make_state_dir(config)
        print("state directory: %s (0700)" % state_dir)
    except device_setup.SetupError as exc:
        print("kiosk provision: %s" % exc, file=sys.stderr)
        return 1
    try:
        enrolment = provision(config, args.central, args.code)
    except ProvisioningError as exc:
        print("kiosk provision: %s (the configuration is written; run `kiosk provision` again with a new code)"
              % exc, file=sys.stderr)
        return 1
    print("enrolled: device %s at %s; device key %s, central's key %s" % (
        enrolment.device_id, enrolment.enrolled_at, enrolment.device_key, enrolment.central_key))
    report = selftest.run(config, on_result=lambda result: print(result.line(), flush=True))
    print(report.summary())
    return report.exit_status


def _audit(args: argparse.Namespace, _started_at: float) -> int:
    run = backends.load_tool("audit")
    return run(args.config, args.what, args.argument, against=args.against)


def _console_switch(args: argparse.Namespace, _started_at: float) -> int:
    return backends.load_tool("console-switch")(args.what)


def _update_check(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.updates import fetch

    config = kiosk_config.load(args.config)
    running = fetch.running_version()
    try:
        available = fetch.check(config, running=running)
    except fetch.UpdateError as exc:
        print("kiosk update check: %s" % exc, file=sys.stderr)
        return 1
    print(_update_line(running, available))
    return 0


def _update_download(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.updates import fetch

    config = kiosk_config.load(args.config)
    running = fetch.running_version()
    try:
        available = fetch.check(config, running=running)
        print(_update_line(running, available))
        if available is None or not available.newer:
            return 0
        release = fetch.download(config, available)
    except fetch.UpdateError as exc:
        print("kiosk update download: %s" % exc, file=sys.stderr)
        return 1
    print("downloaded and verified: %s (%d bytes, sha256 %s)" % (release.path, release.length, release.sha256))
    return 0


def _update_line(running: str, available: fetch.Available | None) -> str:
    from kiosk.updates import fetch

    if available is None:
        return "running %s; no release published for %s" % (running, fetch.this_platform())
    return "running %s; newest %s (%s, %d bytes): %s" % (
        running, available.version, available.target, available.length,
        "newer, an update is available" if available.newer else "not newer, up to date")


def _queue(args: argparse.Namespace, _started_at: float) -> int:
    run = backends.load_tool("queue")
    return run(args.config, args.what, args.argument)


def _selftest(args: argparse.Namespace, _started_at: float) -> int:
    import json

    from kiosk import selftest

    # stdout is kept for the report; the drivers' log goes to stderr.
    logs.setup(sys.stderr, logging.WARNING)
    config = kiosk_config.load(args.config)
    if args.json:
        report = selftest.run(config, test_page=args.test_page, beside_kiosk=args.beside_kiosk)
        print(json.dumps(report.to_json(), indent=1))
    else:
        report = selftest.run(config, test_page=args.test_page, beside_kiosk=args.beside_kiosk,
                              on_result=lambda result: print(result.line(), flush=True))
        print(report.summary())
    if args.report:
        why_not = selftest.send_report(config, report)
        if why_not is not None:
            print("kiosk selftest: the report was not sent to central: %s" % why_not, file=sys.stderr)
    return report.exit_status


def _run(args: argparse.Namespace, started_at: float) -> int:
    config = kiosk_config.load(args.config)
    fonts.check()
    if args.journey is not None and not args.journey.is_file():
        raise kiosk_config.ConfigError("no journey file %s" % args.journey)
    run = backends.load_frontend(args.frontend)

    def make_runtime(post):
        runtime = app.build_runtime(config, post)
        trial.attach(runtime, post, config)     # an installed version's trial, and its switch between sessions
        return runtime
    return run(config, make_runtime, journey=args.journey, out=args.out, started_at=started_at)


def _update_offer(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.updates import fetch, offer

    config = kiosk_config.load(args.config)
    running = fetch.running_version()
    offered = offer.ask(config, running=running)
    if offered is None:
        print("running %s; no rollout offers this kiosk a newer release for %s (or central cannot be reached: "
              "see the log)" % (running, fetch.this_platform()))
    else:
        print("running %s; rollout %s offers %s" % (running, offered.rollout_id, offered.version))
    return 0


def _update_install(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.updates import install
    return install.main([str(args.bundle), "--root", str(args.root)])


def _update_run(args: argparse.Namespace, _started_at: float) -> int:
    from kiosk.updates import install_updater
    return install_updater.run(kiosk_config.load(args.config), args.root, say=lambda line: print(line, flush=True))


def _update_status(args: argparse.Namespace, _started_at: float) -> int:
    import json

    from kiosk.updates import install
    print(json.dumps(install.status(args.root), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
