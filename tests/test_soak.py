"""`make soak` (drivers/demo/soak.py): its judge, on worlds made by hand, and twenty trials on the
real stack, each killing the kiosk at a random moment of a paid journey, after which no charge may
be lost, duplicated or left unsettled."""

from __future__ import annotations

import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from drivers.demo import soak
from drivers.demo.soak import MAIN_MOMENTS, MOMENTS, CentralLink, Document, Planner, TrialWorld, judge
from drivers.printer_sim.server import PrinterSimulator
from kiosk import wire
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod

FEE = Money("SYP", 150000)


def entry(txn: str, state: TxnState, **fields) -> JournalEntry:
    return JournalEntry(txn_id=txn, sale_id=txn, request_id="req-" + txn, service_code="civil-status-extract",
                        amount=FEE, method=PaymentMethod.CARD, state=state, run_id="run-1", **fields)


def payment(txn: str, *, status: str = "approved", given_back: str = "") -> dict:
    return {"payment_id": "poi-" + txn, "sale_id": txn, "status": status, "given_back": given_back}


def world(*, payments=(), documents=(), printed=(), journal=(), undelivered=()) -> TrialWorld:
    return TrialWorld(tuple(payments), tuple(documents), tuple(printed), tuple(journal), tuple(undelivered))


# -- the judge ------------------------------------------------------------------------------------------------

def test_a_paid_certificate_that_came_out_whole_is_fine():
    verdict = judge(world(payments=[payment("t1")], documents=[Document("req-t1", "2026-AAAA", False)],
                          printed=["2026-AAAA"], journal=[entry("t1", TxnState.PRINTED)]))
    assert verdict.ok


def test_a_charge_kept_with_nothing_printed_is_lost():
    verdict = judge(world(payments=[payment("t1")], journal=[entry("t1", TxnState.SETTLED)]))
    assert len(verdict.lost) == 1 and "poi-t1" in verdict.lost[0]
    assert not verdict.duplicated


def test_a_charge_kept_with_a_valid_document_that_never_printed_is_lost():
    verdict = judge(world(payments=[payment("t1")], documents=[Document("req-t1", "2026-AAAA", False)],
                          journal=[entry("t1", TxnState.ISSUED)]))
    assert len(verdict.lost) == 1
    assert any("still ISSUED" in problem for problem in verdict.unsettled)


def test_a_sale_the_journal_never_heard_of_is_lost_when_kept():
    verdict = judge(world(payments=[payment("stray")]))
    assert verdict.lost == ["charge poi-stray kept for request unjournalled-sale:stray, no certificate printed"]


def test_two_kept_charges_for_one_certificate_are_a_duplicate():
    verdict = judge(world(payments=[payment("t1"), payment("t2")],
                          documents=[Document("req-t1", "2026-AAAA", False)], printed=["2026-AAAA"],
                          journal=[entry("t1", TxnState.PRINTED), entry("t2", TxnState.PRINTED)]))
    assert len(verdict.duplicated) == 1 and "poi-t2" in verdict.duplicated[0]


def test_a_document_standing_for_a_charge_given_back_is_unsettled():
    verdict = judge(world(payments=[payment("t1", given_back="reversal")],
                          documents=[Document("req-t1", "2026-AAAA", False)], journal=[entry("t1", TxnState.SETTLED)]))
    assert verdict.unsettled == ["document 2026-AAAA valid, request req-t1 has no kept charge"]
    assert not verdict.lost


def test_a_charge_kept_for_a_printed_certificate_that_was_voided_is_unsettled():
    verdict = judge(world(payments=[payment("t1")], documents=[Document("req-t1", "2026-AAAA", True)],
                          printed=["2026-AAAA"], journal=[entry("t1", TxnState.PRINTED)]))
    assert len(verdict.unsettled) == 1 and "voided" in verdict.unsettled[0]
    assert not verdict.lost


def test_an_entry_still_open_or_a_message_undelivered_is_unsettled():
    verdict = judge(world(journal=[entry("t1", TxnState.SETTLING), entry("t2", TxnState.DEAD)],
                          undelivered=["void-req-t1"]))
    assert sorted(verdict.unsettled) == ["journal txn t1 still SETTLING", "journal txn t2 still DEAD",
                                         "outbox message void-req-t1 undelivered"]


def test_a_certificate_cut_off_mid_print_given_back_and_voided_is_fine():
    verdict = judge(world(payments=[payment("t1", given_back="reversal")],
                          documents=[Document("req-t1", "2026-AAAA", True)],
                          journal=[entry("t1", TxnState.SETTLED, requested=True, reversed=True, voided=True)]))
    assert verdict.ok


def test_a_declined_sale_is_no_charge():
    verdict = judge(world(payments=[payment("t1", status="declined")], journal=[entry("t1", TxnState.NOT_CHARGED)]))
    assert verdict.ok


# -- the plans and the link --------------------------------------------------------------------------------------

def test_every_moment_comes_once_in_each_round_of_plans():
    planner = Planner(random.Random(7), disk_faults=False)
    rounds = [[planner.next() for _ in MOMENTS] for _ in range(4)]
    assert all(sorted(plan.moment for plan in plans) == sorted(MOMENTS) for plans in rounds)
    assert all(plan.fault != soak.DISK_FAULT for plans in rounds for plan in plans)


class _Central(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def central_behind_link():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Central)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = CentralLink("http://127.0.0.1:%d" % server.server_address[1]).start()
    yield link
    link.close()
    server.shutdown()
    server.server_close()


def test_the_link_counts_certificate_requests_and_is_refused_while_cut(central_behind_link):
    link = central_behind_link
    with requests.Session() as http:
        assert http.post(link.url + wire.ELIGIBILITY, json={}, timeout=5).ok
        assert http.post(link.url + wire.REQUESTS, json={}, timeout=5).ok
        assert http.post(link.url + wire.VOID.format(request_id="r1"), json={}, timeout=5).ok
    assert link.requests_seen == 1
    link.cut()
    with pytest.raises(requests.ConnectionError):
        requests.post(link.url + wire.REQUESTS, json={}, timeout=5)
    link.restore()
    assert requests.post(link.url + wire.REQUESTS, json={}, timeout=5).ok
    assert link.wait_for_requests(2, timeout=5)


@pytest.mark.realstack
def test_the_printer_simulator_tells_a_job_under_way_by_its_bytes(tmp_path):
    with PrinterSimulator(tmp_path) as printer:
        with socket.create_connection(("127.0.0.1", printer.port)) as link:
            link.sendall(b"\x1b@" + b"A" * 998)               # a job begun: no cut yet
            assert printer.wait_until_receiving(1000, timeout=5)
            assert not printer.wait_until_receiving(1001, timeout=0.2)
        printer.wait_for_connections(1)
        assert not printer.wait_until_receiving(1, timeout=0)  # the link is gone: nothing under way


# -- the soak on the real stack -------------------------------------------------------------------------------------

@pytest.mark.realstack
@pytest.mark.timeout(900)
def test_twenty_kills_at_random_moments_of_paid_journeys_leave_every_charge_settled(tmp_path):
    report = soak.run(20, out=tmp_path / "soak", on_trial=lambda trial: print(trial.line()))
    print(report.figures())
    print(report.summary_line())
    failed = ["%s\n    %s" % (t.line(), "\n    ".join(t.verdict.lost + t.verdict.duplicated + t.verdict.unsettled))
              for t in report.trials if not t.verdict.ok]
    assert (report.lost, report.duplicated, report.unsettled) == (0, 0, 0), "\n".join(failed)
    reached = report.moments_reached()
    assert all(reached[moment] for moment in MAIN_MOMENTS), reached
