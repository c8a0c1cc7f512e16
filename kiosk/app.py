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

from kiosk import backends
from kiosk.catalogue_supply import CatalogueSupply, load_public_key
from kiosk.central_client import CentralClient
from kiosk.config import KioskConfig
from kiosk.ports.state import LocalState
from kiosk.provisioning import load_device_key
from kiosk.runtime import Devices, Maintenance, Runtime
from kiosk.session import Session, Timeouts
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
    state: LocalState = backends.load("outbox.backend", config.outbox.backend)(
        config, deliver=central.deliver, terminal=devices.payment, run_id=run_id, alert=_alert)
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
    return Runtime(session, devices, central, state.outbox, state.journal, state.reconciler, post=post, run_id=run_id,
                   document_timeout_s=config.session.document_timeout_s, site=config.site,
                   digits=config.display.digits, catalogue=catalogue, audit=state.audit,
                   lockout=state.technician_lockout,
                   maintenance=Maintenance(pin_hash=config.technician.pin_hash, device_id=config.device_id,
                                           version=_version(), reboot=_reboot))
