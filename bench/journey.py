"""The citizen's journey in figures, through the real app under Xvfb.

    cold start       starting `kiosk run` to the attract screen on the display
    card to PIN      the card going into the reader to the PIN screen
    PIN to name      OK on the keypad to the name on screen (VERIFY, reads, both checks)
    APDUs            exchanged with the card for that, as the driver counts them
    printer bytes    ESC/POS bytes sent for the certificate and for the receipt
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from drivers.demo.stack import DemoStack, VirtualScreen, run_journey

JOURNEY = Path(__file__).resolve().parent.parent / "journeys" / "arabic.json"
_VERDICT = re.compile(r"card\.verdict verdict=valid apdus=(\d+)")


def run(runs: int = 3) -> dict:
    samples: dict[str, list[float]] = {k: [] for k in ("cold_start_s", "card_to_pin_s", "pin_to_name_s")}
    apdus: list[int] = []
    certificate_bytes: list[int] = []
    receipt_bytes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as scratch, VirtualScreen() as screen:
        for i in range(runs):
            with DemoStack(Path(scratch) / ("run%d" % i)) as stack:
                citizen = stack.citizen_numbers()[0]
                inserted: dict[str, float] = {}

                def insert() -> None:
                    inserted["at"] = time.monotonic()
                    stack.insert(citizen)

                started = time.monotonic()
                result = run_journey(stack, JOURNEY, Path(scratch) / ("out%d" % i), display=screen.display,
                                     on_screen={"insert_card": insert, "take_card": stack.remove})
                if result.exit_code != 0:
                    raise RuntimeError("the journey failed; see %s" % (result.out_dir / "kiosk.log"))
                seen = {s["screen"]: s["at_s"] for s in result.report["screens_seen"]}
                samples["cold_start_s"].append(result.announced_at["attract"])
                samples["card_to_pin_s"].append(started + result.announced_at["pin_entry"] - inserted["at"])
                samples["pin_to_name_s"].append(seen["identity"] - seen["verifying"])
                apdus += [int(m.group(1)) for m in map(_VERDICT.search, result.output) if m]
                certificate, receipt = stack.printer.wait_for_jobs(2, timeout=10)
                certificate_bytes.append(len(certificate.raw))
                receipt_bytes.append(len(receipt.raw))
    figures = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    figures.update(runs=runs, apdus=max(apdus), certificate_bytes=max(certificate_bytes),
                   receipt_bytes=max(receipt_bytes))
    return figures


def report(figures: dict) -> str:
    return "\n".join([
        "journey (median of %d runs, Arabic, family statement)" % figures["runs"],
        "  cold start to attract screen   %6.2f s" % figures["cold_start_s"],
        "  card inserted to PIN screen    %6.3f s" % figures["card_to_pin_s"],
        "  PIN OK to name shown           %6.3f s   (%d APDUs)" % (figures["pin_to_name_s"], figures["apdus"]),
        "  printer bytes, certificate     %6d" % figures["certificate_bytes"],
        "  printer bytes, receipt         %6d" % figures["receipt_bytes"],
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    print(report(run(parser.parse_args(argv).runs)))


if __name__ == "__main__":
    main()
