"""Touches a citizen makes, card in to document out, counted from real journeys.

    most asked       journeys/arabic.json: a certificate on the catalogue's first screen
    second level     journeys/category-arabic.json: a certificate on the second page of its category

Each journey runs through the real app under Xvfb on the demo stack; the
touches are the `tap` steps of the runner's report (journey.json) after the
card went in (the insert_card screen) and before the printed document is
taken (the take_card screen). The PIN (its digits and OK) is counted apart:
the goal is the PIN plus at most six touches.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from drivers.demo.stack import DemoStack, VirtualScreen, run_journey

JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"
CASES = (("most asked", "arabic"), ("second level", "category-arabic"))
GOAL = 6


def count(report: dict, script: dict) -> dict:
    """The touches of one journey's report: the PIN's, and the others by tap id, in order."""
    steps = [entry["step"] for entry in report["steps"]]
    start = next(i for i, step in enumerate(steps) if step.get("await") == "insert_card")
    end = next(i for i in range(start + 1, len(steps)) if steps[i].get("await") == "take_card")
    taps = [step["tap"] for step in steps[start:end] if "tap" in step]
    # The runner leaves the PIN's digits out of its report; the journey says how many were typed.
    digits = sum(len(str(step["pin"])) for step in script["steps"] if "pin" in step)
    others = [tap for tap in taps if not tap.startswith("key_")]
    return {"pin": digits + taps.count("key_ok"), "touches": len(others), "taps": others}


def run() -> dict:
    figures = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-touches-") as scratch, VirtualScreen() as screen:
        for label, name in CASES:
            journey = JOURNEYS / (name + ".json")
            with DemoStack(Path(scratch) / ("stack-" + name)) as stack:
                citizen = stack.citizen_numbers()[0]
                result = run_journey(stack, journey, Path(scratch) / name, display=screen.display,
                                     on_screen={"insert_card": lambda: stack.insert(citizen),
                                                "take_card": stack.remove})
                if result.exit_code != 0 or "printing" not in result.screens_seen:
                    raise RuntimeError("the %s journey failed; see %s" % (name, result.out_dir / "kiosk.log"))
                figures[label] = dict(count(result.report, json.loads(journey.read_text())), journey=name)
    return figures


def report(figures: dict) -> str:
    lines = ["touches, card inserted to document printed (goal: PIN + at most %d)" % GOAL]
    for label, _name in CASES:
        f = figures[label]
        lines.append("  %-14s PIN (%d) + %d   %s   (%s)" % (label, f["pin"], f["touches"],
                                                          "ok" if f["touches"] <= GOAL else "over",
                                                          " > ".join(f["taps"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(report(run()))


if __name__ == "__main__":
    main()
