"""The composition root: the one place that builds the kiosk from its configuration.

Each device is the backend the configuration names (`card.backend`,
`payment.backend`, `printer.backend`, `cabinet.backend`, `outbox.backend`),
found through `kiosk.backends`; this module never names a driver. Real or
simulated is decided by the configuration alone: the real drivers talk to
the simulators at the wire (pcscd's virtual reader, a TCP printer, central
on loopback), and the `fake` backends stand in-process for a test.
"""

from __future__ import annotations

import logging
import uuid
from typing import Callable

from kiosk import backends, wire
from kiosk.catalogue_supply import CatalogueSupply, load_public_key
from kiosk.central_client import CentralClient, TelemetryReply
from kiosk.commands import AnnouncementSupply, CommandDesk, CommandTools, recent_log_lines
from kiosk.config import KioskConfig
from kiosk.ports.state import LocalState
from kiosk.provisioning import load_device_key
from kiosk.runtime import Devices, Maintenance, Runtime
from kiosk.session import Session, Timeouts
from kiosk.telemetry import Telemetry, machine_facts
from kiosk.technician import TechnicianPolicy

Post = Callable[[Callable[[], None]], None]

log = logging.getLogger(__name__)


def _alert(kind: str) -> None:
    """A technician must see to something (a settlement refused for good); no personal data."""
    log.warning("alert.%s", kind)


def _version() -> str:
    """The installed software's version, for the technician screen."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("citizen-kiosk")
    except PackageNotFoundError:
        return "unknown"


def _reboot() -> None:
    """The technician's reboot: systemd restarts the device (the kiosk user needs polkit's leave)."""
    import subprocess
    subprocess.run(["systemctl", "reboot"], check=True, timeout=30)


def build_devices(config: KioskConfig) -> Devices:
    return Devices(
        card_reader=backends.load("card.backend", config.card.backend)(config),
        payment=backends.load("payment.backend", config.payment.backend)(config),
        printer=backends.load("printer.backend", config.printer.backend)(config),
        cabinet=backends.load("cabinet.backend", config.cabinet.backend)(config),
    )


def build_runtime(config: KioskConfig, post: Post, *, devices: Devices | None = None) -> Runtime:
    """The runtime for `config`; `devices` already built (a test's fakes) are used as they are."""
    devices = devices or build_devices(config)
    central = CentralClient(config.central.url, device_id=config.device_id, timeout_s=config.central.timeout_s,
                            ca_file=config.central.ca_file,
                            device_key=load_device_key(config.central.device_key_path))
    run_id = uuid.uuid4().hex
    version = _version()
    desk: CommandDesk | None = None       # central's commands: made below, once the state database is open

    def send_telemetry(path: str, body: dict) -> TelemetryReply | None:
        """central.send_telemetry; a heartbeat's answer also shows the desk central's versions now."""
        reply = central.send_telemetry(path, body)
        if desk is not None and path == wire.TELEMETRY_HEARTBEAT and reply is not None and reply.http_status == 200:
            desk.heard(reply.body)
        return reply

    def on_commands(envelopes: list) -> None:
        if desk is not None:
            desk.receive(envelopes)

    # The reports to central (kiosk/telemetry.py). Its commands hook, `on_commands`, hands the command
    # envelopes a heartbeat's answer carries to the desk (kiosk/commands.py).
    telemetry = Telemetry(send_telemetry, version=version, heartbeat_s=config.telemetry.heartbeat_s,
                          debounce_s=config.telemetry.debounce_s,
                          machine=lambda: machine_facts(config.outbox.path.parent), on_commands=on_commands)

    def alert(kind: str) -> None:
        _alert(kind)
        telemetry.alert(kind)

    state: LocalState = backends.load("outbox.backend", config.outbox.backend)(
        config, deliver=central.deliver, terminal=devices.payment, run_id=run_id, alert=alert)
    if state.telemetry is not None:
        telemetry.keep_in(state.telemetry)
    session = Session(
        languages=config.languages,
        timeouts=Timeouts(idle_s=config.session.idle_timeout_s, warning_s=config.session.idle_warning_s,
                          pin_s=config.card.pin_timeout_s, reprint_s=config.printer.reprint_window_s),
        device_id=config.device_id,
        governorate=config.site.governorate,
        audio_guidance=config.audio.guidance,
        catalogue_refresh_s=config.catalogue.refresh_s,
        technician=TechnicianPolicy(max_tries=config.technician.max_tries, lockout_s=config.technician.lockout_s),
    )
    keys = [load_public_key(config.central.catalogue_key)] if config.central.catalogue_key else []
    catalogue = CatalogueSupply(central, keys=keys, cache=state.catalogue_cache,
                                max_age_s=config.catalogue.max_age_h * 3600)
    announcements = AnnouncementSupply(central, keys=keys, governorate=config.site.governorate,
                                       cache=state.announcement_cache, max_age_s=config.catalogue.max_age_h * 3600)
    if state.command_ledger is not None:
        recent = recent_log_lines()

        def selftest_beside() -> bool:
            from kiosk import selftest
            return selftest.send_report(config, selftest.run(config, beside_kiosk=True)) is None

        desk = CommandDesk(central, state.command_ledger, device_id=config.device_id, keys=keys,
                           tools=CommandTools(reboot=_reboot, resync_outbox=state.outbox.resync,
                                              selftest=selftest_beside, recent_lines=recent.lines))
    return Runtime(session, devices, central, state.outbox, state.journal, state.reconciler, post=post, run_id=run_id,
                   document_timeout_s=config.session.document_timeout_s, site=config.site,
                   digits=config.display.digits, catalogue=catalogue, audit=state.audit,
                   lockout=state.technician_lockout, telemetry=telemetry, commands=desk, announcements=announcements,
                   maintenance=Maintenance(pin_hash=config.technician.pin_hash, device_id=config.device_id,
                                           version=version, reboot=_reboot))
