"""The app's memory over a long day: one kiosk process serving many citizens.

    python -m bench.memory [--journeys N]

One `kiosk run` under Xvfb on the demo stack, driven through N paid journeys
in Arabic (card in, PIN, the most asked certificate, paid, printed, card
out) without screenshots; the journey runner notes the process's resident
memory at the start and after journeys 10 and N. Reported: those figures and
the growth from 10 to N (the goal: within 5%). No test asserts on it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from drivers.demo.stack import DemoStack, VirtualScreen, run_journey

WARM = 10          # journeys before the reference figure: caches and pools filled


def one_citizen() -> list[dict]:
    return [
        {"tap": "lang_ar"},
        {"await": "insert_card", "screenshot": False},
        {"await": "pin_entry", "timeout": 20, "screenshot": False},
        {"pin": "1234"},
        {"tap": "key_ok"},
        {"await": "identity", "photo": True, "timeout": 20, "screenshot": False},
        {"tap": "continue"},
        {"await": "catalogue", "screenshot": False},
        {"tap": "service_civil-status-extract"},
        {"await": "confirm", "screenshot": False},
        {"tap": "pay"},
        {"await": "take_card", "timeout": 60, "screenshot": False},
        {"await": "attract", "timeout": 20, "screenshot": False},
    ]


def journey(n: int) -> dict:
    steps: list[dict] = [{"await": "attract", "timeout": 60, "screenshot": False}, {"rss": "start"}]
    for i in range(1, n + 1):
        steps += one_citizen()
        if i in (WARM, n):
            steps.append({"rss": "after-%d" % i})
    return {"name": "memory", "steps": steps}


def run(n: int = 300) -> dict:
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-memory-") as scratch, VirtualScreen() as screen:
        work = Path(scratch)
        path = work / "memory.json"
        path.write_text(json.dumps(journey(n)), encoding="utf-8")
        with DemoStack(work / "stack") as stack:
            citizen = stack.citizen_numbers()[0]
            result = run_journey(stack, path, work / "out", display=screen.display, timeout_s=60.0 + 30.0 * n,
                                 on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove})
        if result.exit_code != 0:
            raise RuntimeError("the journey failed: %s" % "\n".join(result.output[-10:]))
        rss = {line.split()[2]: int(line.split()[3]) for line in result.output if line.startswith("JOURNEY rss ")}
    return {"journeys": n, "start_kb": rss["start"], "warm_kb": rss["after-%d" % WARM], "end_kb": rss["after-%d" % n]}


def report(figures: dict) -> str:
    growth = figures["end_kb"] / figures["warm_kb"]
    return "\n".join([
        "memory of one kiosk process (resident, Xvfb)",
        "  at the attract screen          %7.1f MB" % (figures["start_kb"] / 1024),
        "  after %3d journeys              %7.1f MB" % (WARM, figures["warm_kb"] / 1024),
        "  after %3d journeys              %7.1f MB" % (figures["journeys"], figures["end_kb"] / 1024),
        "  growth from %d to %d journeys  %6.1f %%   (goal: within 5%%)" % (
            WARM, figures["journeys"], (growth - 1) * 100),
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=300)
    print(report(run(parser.parse_args(argv).journeys)))


if __name__ == "__main__":
    main()
