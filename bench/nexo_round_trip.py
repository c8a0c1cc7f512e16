"""Benchmark: a sale over nexo on loopback, against the terminal simulator.

    python -m bench.nexo_round_trip [--runs N]

The simulator (in this process, on its own threads) presents an approving
card at once (auto-present with no delay), so no citizen is timed: only the
protocol, the codec and the two programs. Three figures, median and p95
(nearest rank) over N runs after a warm-up run each:

    PaymentRequest -> answer   one connection, the PaymentRequest framed and
                               sent, its EventNotification and PaymentResponse
                               read back and parsed (the driver's own codec,
                               used bare: no display, no prompts)
    pay()                      the driver's whole sale: the DisplayRequest with
                               the fee, then the PaymentRequest as above, each
                               on a connection of its own, the outcome built
    status()                   a TransactionStatusRequest repeating the sale

Both sides share one Python interpreter here, so these are upper bounds of
what the kiosk's side costs. Times depend on the machine; nothing here
asserts them.
"""

from __future__ import annotations

import argparse
import itertools
import math
import socket
import statistics
import time
from collections.abc import Callable

from drivers.nexo.enums import MessageCategory, MessageClass, MessageType
from drivers.nexo.envelope import Message, MessageHeader, decode, encode
from drivers.nexo.framing import read_frame, write_frame
from drivers.nexo.messages import LoginRequest, TransactionIdentification
from drivers.nexo.payment import PaymentRequest, PaymentResponse
from drivers.nexo_terminal import NexoPaymentTerminal
from drivers.terminal_sim.simulator import TerminalSimulator
from kiosk.money import Money
from kiosk.ports.payment_terminal import PaymentStatus

FEE = Money.of(150000, "SYP")
SALE_SYSTEM = "bench-kiosk"
TIMEOUT_S = 10.0


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _timed(runs: int, once: Callable[[int], None]) -> list[float]:
    once(-1)                                                  # warm-up, not counted
    times = []
    for run in range(runs):
        started = time.perf_counter()
        once(run)
        times.append(time.perf_counter() - started)
    return times


def _exchange(port: int, message: Message) -> Message:
    """Send `message` on a fresh connection; the response to it (notifications skipped)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        write_frame(sock, encode(message))
        while True:
            frame = read_frame(sock)
            if frame is None:
                raise RuntimeError("the simulator closed the connection without an answer")
            answer = decode(frame)
            if answer.header.type is MessageType.RESPONSE:
                return answer


def _header(simulator: TerminalSimulator, category: MessageCategory, service_id: str) -> MessageHeader:
    return MessageHeader(MessageClass.SERVICE, category, MessageType.REQUEST, SALE_SYSTEM, simulator.poi_id,
                         service_id)


def run(runs: int = 200) -> dict[str, list[float]]:
    """Seconds per run of each figure."""
    counter = itertools.count()
    with TerminalSimulator(auto_present="approve", auto_present_delay_s=0.0) as simulator:
        login = LoginRequest("2026-01-01T00:00:00+00:00", "bench", "1", "bench").to_json()
        _exchange(simulator.nexo_port, Message(_header(simulator, MessageCategory.LOGIN, "login"), login))

        def bare(_run: int) -> None:
            number = next(counter)
            request = PaymentRequest(TransactionIdentification("bare-%d" % number, "2026-01-01T00:00:00+00:00"), FEE)
            answer = _exchange(simulator.nexo_port, Message(
                _header(simulator, MessageCategory.PAYMENT, "b%d" % number), request.to_json()))
            if not PaymentResponse.from_json(answer.body).response.succeeded:
                raise RuntimeError("the simulator did not approve the bare sale")

        terminal = NexoPaymentTerminal("127.0.0.1", simulator.nexo_port, sale_system_id=SALE_SYSTEM,
                                       poi_id=simulator.poi_id, timeout_s=TIMEOUT_S)
        paid: list[str] = []

        def sale(_run: int) -> None:
            sale_id = "sale-%d" % next(counter)
            outcome = terminal.pay(FEE, sale_id=sale_id, reference="bench", label="Birth certificate 1,500")
            if outcome.status is not PaymentStatus.APPROVED:
                raise RuntimeError("the simulator did not approve sale %s: %s" % (sale_id, outcome.status.name))
            paid.append(sale_id)

        def status(run: int) -> None:
            if terminal.status(paid[max(run, 0) % len(paid)]).status is not PaymentStatus.APPROVED:
                raise RuntimeError("the status of an approved sale is not APPROVED")

        return {"PaymentRequest -> answer": _timed(runs, bare), "pay()": _timed(runs, sale),
                "status()": _timed(runs, status)}


def report(figures: dict[str, list[float]]) -> str:
    runs = len(next(iter(figures.values()))) if figures else 0
    lines = ["nexo on loopback against the terminal simulator (%d runs each; auto-present, no delay)" % runs,
             "  %-26s %9s %9s" % ("", "median", "p95")]
    for name, times in figures.items():
        lines.append("  %-26s %7.2fms %7.2fms" % (name, statistics.median(times) * 1000,
                                                  _percentile(times, 0.95) * 1000))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.nexo_round_trip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    print(report(run(parser.parse_args(argv).runs)))


if __name__ == "__main__":
    main()
