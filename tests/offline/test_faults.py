"""The outbox against a bad link: the real client, through a fault proxy on loopback, to the
reference central (with a stub acquirer) on a thread.

Whatever the link does (refused connections, resets mid-body, stalls, 500s, garbage JSON, a slow
trickle, flapping), the queue converges once the fault clears, central issues each document once,
a final refusal never holds later messages back, and a citizen at the screen is never kept
waiting on the link.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date

import pytest

from central.seeding import SEED_DIR
from kiosk import wire
from kiosk.central_client import CentralClient
from kiosk.messages import MessageKind
from kiosk.ports.card_reader import Identity
from kiosk.ports.outbox import LinkState
from kiosk.session import Reason, Step
from offline.delivery import DurableOutbox
from offline.link_probe import HealthProbe
from offline.outbox import REFUSED, MessageState, Outbox
from offline.sync import DEAD_LETTER_ALERT
from tests.card_presence import ISSUER
from tests.central.cards import CardInReader
from tests.running_central import enrol, start_without_rate_limits
from tests.central.stub_acquirer import StubAcquirer
from tests.offline.fault_proxy import Fault, FaultProxy
from tests.offline.kiosk_on_fakes import KioskOnFakes

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

WAIT_S = 20.0
DEVICE_ID = "kiosk-faults-01"
OMAR = "01020345693"       # single: a birth certificate, yes; a marriage certificate, no
KHALED = Identity(card_number="SY1000000001", national_number="01020345671", given_name_ar="خالد",
                  family_name_ar="الحداد", given_name_latin="Khaled", family_name_latin="Al-Haddad",
                  date_of_birth=date(1975, 3, 14), date_of_expiry=date(2032, 5, 9),
                  issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91)


@pytest.fixture(scope="module")
def acquirer():
    with StubAcquirer() as stub:
        yield stub


@pytest.fixture(scope="module")
def central_db(tmp_path_factory):
    return tmp_path_factory.mktemp("central") / "central.sqlite3"


@pytest.fixture(scope="module")
def central(central_db, acquirer):
    """Central, trusting the issuer of the fakes' cards (tests.card_presence), with this kiosk enrolled."""
    issuer_pem = central_db.with_name("issuer.pub.pem")
    issuer_pem.write_bytes(ISSUER.public_pem)
    running = start_without_rate_limits("sqlite:///%s" % central_db, acquirer_url=acquirer.url,
                                        issuer_key_paths=[issuer_pem])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def device_key(central, central_db):
    return enrol(central.url, "sqlite:///%s" % central_db, DEVICE_ID)


@pytest.fixture(scope="module")
def direct(central, device_key):
    """The kiosk's client straight to central, not through the proxy."""
    with CentralClient(central.url, device_id=DEVICE_ID, device_key=device_key) as client:
        yield client


@pytest.fixture(scope="module")
def omar_card():
    citizens = json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]
    (omar,) = [record for record in citizens if record["national_number"] == OMAR]
    return CardInReader(omar, ISSUER)


@pytest.fixture
def proxy(central):
    with FaultProxy(("127.0.0.1", central.port)) as proxy:
        yield proxy


@pytest.fixture
def client(proxy, device_key):
    with CentralClient(proxy.url, device_id=DEVICE_ID, timeout_s=1.0, device_key=device_key) as client:
        yield client


@pytest.fixture
def alerts():
    return []


@pytest.fixture
def outbox(tmp_path, client, proxy, alerts):
    store = Outbox(tmp_path / "state" / "kiosk.sqlite3")
    probe = HealthProbe(proxy.url, timeout_s=1.0)
    outbox = DurableOutbox(store, client.deliver, retry_s=0.05, max_backoff_s=0.5, probe=probe, probe_s=0.2,
                           alert=alerts.append)
    yield outbox
    outbox.stop()
    probe.close()
    store.close()


@pytest.fixture(scope="module")
def birth_fee(direct):
    return direct.fetch_catalogue().get("birth-certificate").fee


@pytest.fixture
def new_request(acquirer, direct, omar_card):
    """`new_request(fee)`: a paid certificate request for Omar, as the runtime puts it in the outbox after
    his card proved itself in the pre-check."""
    def new(fee, *, service_code: str = "birth-certificate") -> dict:
        challenge = direct.challenge()
        direct.check_eligibility(service_code=service_code, challenge=challenge,
                                 proof=omar_card.sign(challenge.nonce), fee=fee, catalogue_version="")
        return {"request_id": "req-" + uuid.uuid4().hex[:16], "service_code": service_code, "language": "ar",
                "payment_id": acquirer.pay(fee.amount_minor, fee.currency), "presence_id": challenge.challenge_id}
    return new


def documents_issued(central_db, request_ids) -> dict[str, int]:
    """Documents central holds for each request id, read beside it."""
    with sqlite3.connect(central_db) as db:
        marks = ",".join("?" * len(request_ids))
        rows = db.execute("SELECT request_id, count(*) FROM issued_documents WHERE request_id IN (%s) "
                          "GROUP BY request_id" % marks, list(request_ids)).fetchall()
    return {request_id: dict(rows).get(request_id, 0) for request_id in request_ids}


def serial_at_central(central_db, request_id) -> str:
    with sqlite3.connect(central_db) as db:
        return db.execute("SELECT serial FROM issued_documents WHERE request_id = ?", (request_id,)).fetchone()[0]


def met(fault: Fault, proxy: FaultProxy, outbox: DurableOutbox) -> bool:
    """The outbox has run into `fault`: it saw the link go (refused, stalled, cut, garbled), or the proxy
    applied the fault to a delivery (a flapping link may come back before anyone calls it down)."""
    if fault is Fault.FLAP:
        return proxy.wait_for_exchanges(1, "POST", wire.REQUESTS, Fault.FLAP, timeout=WAIT_S)
    return outbox.sync.wait_for_link(LinkState.OFFLINE, WAIT_S)


@pytest.mark.parametrize("fault", [Fault.REFUSE, Fault.RESET_MID_BODY, Fault.STALL, Fault.HTTP_500, Fault.GARBAGE,
                                   Fault.FLAP], ids=lambda fault: fault.value)
def test_the_queue_converges_once_the_fault_clears_and_nothing_is_issued_twice(
        fault, proxy, outbox, new_request, birth_fee, central_db):
    requests = [new_request(birth_fee) for _ in range(3)]
    proxy.fault(fault)
    for request in requests:
        outbox.send(MessageKind.CERTIFICATE_REQUEST, request["request_id"], request)
    outbox.start()
    assert met(fault, proxy, outbox), "the outbox never ran into the fault"
    if fault in (Fault.RESET_MID_BODY, Fault.GARBAGE):
        # Central took a request and issued it; the kiosk never heard the answer.
        assert proxy.count("POST", wire.REQUESTS, fault) >= 1
    proxy.clear()
    ids = [request["request_id"] for request in requests]
    answers = [outbox.wait_for_answer(request_id, WAIT_S) for request_id in ids]
    assert [a and a["status"] for a in answers] == ["issued"] * 3
    assert documents_issued(central_db, ids) == dict.fromkeys(ids, 1)
    assert [a["document"]["serial"] for a in answers] == [serial_at_central(central_db, i) for i in ids]
    assert outbox.sync.wait_until_empty(WAIT_S) and outbox.link() is LinkState.ONLINE


def test_a_slow_trickle_is_slow_but_delivers(proxy, outbox, new_request, birth_fee, central_db):
    requests = [new_request(birth_fee) for _ in range(2)]
    proxy.fault(Fault.TRICKLE)
    for request in requests:
        outbox.send(MessageKind.CERTIFICATE_REQUEST, request["request_id"], request)
    outbox.start()
    ids = [request["request_id"] for request in requests]
    assert [outbox.wait_for_answer(i, WAIT_S)["status"] for i in ids] == ["issued", "issued"]
    assert proxy.count("POST", wire.REQUESTS, Fault.TRICKLE) == 2                # each sent once, whole
    assert documents_issued(central_db, ids) == dict.fromkeys(ids, 1)


def test_a_final_refusal_never_blocks_later_messages(proxy, client, outbox, new_request, birth_fee, alerts):
    reused = new_request(birth_fee)
    assert client.deliver(MessageKind.CERTIFICATE_REQUEST, reused)["status"] == "issued"
    clash = dict(new_request(birth_fee), request_id=reused["request_id"])    # its id, another body: 409
    not_married = new_request(birth_fee, service_code="marriage-certificate")  # a final "no": 422
    later = [new_request(birth_fee) for _ in range(2)]
    for request in (clash, not_married, *later):
        outbox.send(MessageKind.CERTIFICATE_REQUEST, request["request_id"], request)
    outbox.send(MessageKind.VOID_REQUEST, "void-" + reused["request_id"], {"request_id": reused["request_id"]})
    outbox.start()
    assert outbox.wait_for_answer(clash["request_id"], WAIT_S) == REFUSED
    assert outbox.wait_for_answer(not_married["request_id"], WAIT_S) == {"status": "rejected",
                                                                         "reason": "not_eligible"}
    assert [outbox.wait_for_answer(r["request_id"], WAIT_S)["status"] for r in later] == ["issued", "issued"]
    assert outbox.wait_for_answer("void-" + reused["request_id"], WAIT_S)["status"] == "voided"
    (dead,) = outbox.store.listing(MessageState.DEAD)
    assert dead.message_id == clash["request_id"] and "request_id_reused" in dead.reason
    assert alerts == [DEAD_LETTER_ALERT]
    assert proxy.count("POST", wire.REQUESTS + "/" + reused["request_id"]) == 1   # the void: once


def test_a_citizen_moves_on_between_screens_while_the_link_is_down_and_the_queue_catches_up(
        tmp_path, proxy, client, central_db):
    probe = HealthProbe(proxy.url, timeout_s=1.0)
    check = client.check_eligibility

    def link_goes_after_the_pre_check(**details):
        answer = check(**details)
        proxy.fault(Fault.REFUSE)              # the town hall's link drops as the citizen pays
        return answer
    client.check_eligibility = link_goes_after_the_pre_check            # type: ignore[method-assign]
    kiosk = KioskOnFakes(tmp_path / "state", central=client, probe=probe, document_timeout_s=1.0)
    try:
        kiosk.start()
        kiosk.pay(identity=KHALED)
        kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE, refunded=True)
        assert kiosk.outbox.link() is LinkState.OFFLINE
        kiosk.take_card()                                                  # the next citizen
        client.check_eligibility = check                                   # type: ignore[method-assign]
        kiosk.pay(identity=KHALED)
        # Central does not answer the pre-check: nothing is charged, and the certificate (one central
        # lets kiosks claim offline) is offered as a claim on the confirm screen.
        kiosk.run_until(Step.CONFIRM, claim=True)
        kiosk.take_card()
        kiosk.settled()                                                    # given back, the void queued
        assert kiosk.given_back() == kiosk.payment.statement[0].amount.amount_minor
        (request_id,) = kiosk.store.message_ids(MessageKind.CERTIFICATE_REQUEST.value)
        assert [m.message_id for m in kiosk.store.pending()] == [request_id, "void-" + request_id]

        proxy.clear()                                                      # the link is back
        assert kiosk.outbox.wait_for_answer("void-" + request_id, WAIT_S)["status"] == "voided"
        assert kiosk.store.answer(request_id)["status"] in ("issued", "rejected")
        delivered = [path for method, path, fault in proxy.exchanges
                     if method == "POST" and fault is Fault.NONE
                     and path not in (wire.CHALLENGES, wire.ELIGIBILITY, wire.CLAIMS_WAITING)]
        assert delivered == [wire.REQUESTS, wire.void_path(request_id)]      # the request, then its void
        assert documents_issued(central_db, [request_id])[request_id] <= 1
    finally:
        kiosk.stop()
        probe.close()
