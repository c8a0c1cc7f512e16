"""The one place that builds the kiosk from its configuration.

Real or simulated is decided by the configuration's addresses alone: the
drivers here are the real ones, and the simulators stand in at the wire
(pcscd's virtual reader, a TCP printer, central on loopback).
"""

from __future__ import annotations

from typing import Callable

from drivers.escpos_printer import EscposReceiptPrinter
from drivers.gateway_payment import GatewayPaymentTerminal
from drivers.id_card.trust import TrustStore
from drivers.pyscard_reader import PyscardCardReader
from kiosk.central_client import CentralClient
from kiosk.config import KioskConfig
from kiosk.runtime import Devices, Runtime, make_deliver
from kiosk.session import Session, Timeouts
from offline.outbox import Outbox
from offline.sync import SyncWorker

Post = Callable[[Callable[[], None]], None]


def build_runtime(config: KioskConfig, post: Post) -> Runtime:
    devices = Devices(
        card_reader=PyscardCardReader(
            TrustStore.from_pem_files(config.card.trusted_issuers),
            reader_name=config.card.reader, apdu_timeout_s=config.card.apdu_timeout_s),
        payment=GatewayPaymentTerminal(config.central.url, device_id=config.device_id,
                                       timeout_s=config.payment.timeout_s),
        printer=EscposReceiptPrinter(config.printer.host, config.printer.port, timeout_s=config.printer.timeout_s),
    )
    central = CentralClient(config.central.url, device_id=config.device_id, timeout_s=config.central.timeout_s)
    outbox = Outbox(config.outbox.path)
    session = Session(
        languages=config.languages,
        timeouts=Timeouts(idle_s=config.session.idle_timeout_s, warning_s=config.session.idle_warning_s,
                          pin_s=config.card.pin_timeout_s),
        device_id=config.device_id,
    )
    return Runtime(session, devices, central, outbox, SyncWorker(outbox, make_deliver(central, devices.payment)),
                   post=post, document_timeout_s=config.session.document_timeout_s)
