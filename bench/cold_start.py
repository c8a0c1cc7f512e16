"""The kiosk's cold start against a bare Kivy app, on the same display in the same run.

    python -m bench.cold_start [--runs N]

    kiosk      starting `kiosk run --journey` (the demo stack behind it) to the
               runner announcing the attract screen
    bare Kivy  starting `bench/bare_kivy_app.py` (one Label) to its line saying
               the label is shown, by the same rule the runner uses (three
               frames after it is on screen), and to its first frame

Both are timed the same way, by this process: from just before it starts the
child to the moment it reads the child's line. The runs alternate, kiosk then
bare, on one Xvfb display; the figures are medians. Then one more kiosk start
runs with `-X importtime` to show where its start-up goes in imports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from drivers.demo.stack import SCREEN_SIZE, DemoStack, VirtualScreen, run_journey

BARE_APP = Path(__file__).resolve().parent / "bare_kivy_app.py"
COLD_START_JOURNEY = {"name": "cold-start", "steps": [{"await": "attract", "timeout": 60}]}
GOAL_RATIO = 1.5
TOP_IMPORTS = 10
TIMEOUT_S = 120.0


def run(runs: int = 5) -> dict:
    kiosk_s: list[float] = []
    bare_shown_s: list[float] = []
    bare_frame_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-cold-") as scratch, VirtualScreen() as screen:
        scratch = Path(scratch)
        journey = scratch / "cold-start.json"
        journey.write_text(json.dumps(COLD_START_JOURNEY), encoding="utf-8")
        with DemoStack(scratch / "stack") as stack:
            for i in range(runs):
                kiosk_s.append(_kiosk_start(stack, journey, scratch / ("kiosk%d" % i), screen.display))
                shown, frame = _bare_start(screen.display)
                bare_shown_s.append(shown)
                bare_frame_s.append(frame)
            with _environment(PYTHONPROFILEIMPORTTIME="1"):
                result = run_journey(stack, journey, scratch / "importtime", display=screen.display, on_screen={})
            imports = _import_times(result.output)
    kiosk, bare = statistics.median(kiosk_s), statistics.median(bare_shown_s)
    return {"runs": runs, "display": screen.display, "kiosk_s": kiosk, "bare_shown_s": bare,
            "bare_first_frame_s": statistics.median(bare_frame_s), "ratio": kiosk / bare,
            "samples": {"kiosk_s": kiosk_s, "bare_shown_s": bare_shown_s, "bare_first_frame_s": bare_frame_s},
            "imports": imports}


def _kiosk_start(stack, journey: Path, out_dir: Path, display: str) -> float:
    result = run_journey(stack, journey, out_dir, display=display, on_screen={}, timeout_s=TIMEOUT_S)
    if result.exit_code != 0 or "attract" not in result.announced_at:
        raise RuntimeError("the kiosk did not reach the attract screen (exit %d); its last lines:\n%s"
                           % (result.exit_code, "\n".join(result.output[-30:])))
    return result.announced_at["attract"]


def _bare_start(display: str) -> tuple[float, float]:
    """Seconds from starting the bare app to its label being shown, and to its first frame."""
    command = [sys.executable, str(BARE_APP), str(SCREEN_SIZE[0]), str(SCREEN_SIZE[1])]
    seen: dict[str, float] = {}
    output: list[str] = []
    started = time.monotonic()
    with subprocess.Popen(command, env=dict(os.environ, DISPLAY=display), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        killer = threading.Timer(TIMEOUT_S, process.kill)
        killer.start()
        try:
            for line in process.stdout:
                if line.startswith("BARE "):
                    seen.setdefault(line.split()[1], time.monotonic() - started)
                output.append(line)
        finally:
            killer.cancel()
        code = process.wait()
    if code != 0 or not {"shown", "first_frame"} <= set(seen):
        raise RuntimeError("the bare Kivy app failed (exit %d):\n%s" % (code, "".join(output[-30:])))
    return seen["shown"], seen["first_frame"]


@contextmanager
def _environment(**values: str):
    """Set environment variables for the children started inside the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _import_times(output: list[str]) -> dict:
    """Parse `-X importtime` lines: the total, and the imports with the most cumulative time."""
    rows = []
    for line in output:
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append({"module": name.strip(), "self_s": int(self_us) / 1e6,
                     "cumulative_s": int(cumulative_us) / 1e6, "depth": depth})
    total = sum(r["cumulative_s"] for r in rows if r["depth"] == 0)
    top = sorted(rows, key=lambda r: r["cumulative_s"], reverse=True)[:TOP_IMPORTS]
    return {"total_s": total, "count": len(rows), "top": top}


def report(figures: dict) -> str:
    ratio = figures["ratio"]
    lines = [
        "cold start (median of %d runs each, alternating, Xvfb display %s)" % (figures["runs"], figures["display"]),
        "  kiosk: start to attract screen shown     %6.2f s" % figures["kiosk_s"],
        "  bare Kivy app: start to label shown      %6.2f s" % figures["bare_shown_s"],
        "  bare Kivy app: start to first frame      %6.2f s" % figures["bare_first_frame_s"],
        "  kiosk / bare Kivy app                    %6.1fx   (goal at most %.1fx: %s)" % (
            ratio, GOAL_RATIO, "met" if ratio <= GOAL_RATIO else "not met"),
        "  kiosk / bare Kivy app's first frame      %6.1fx" % (figures["kiosk_s"] / figures["bare_first_frame_s"]),
        "  runs, kiosk      %s" % " ".join("%.2f" % s for s in figures["samples"]["kiosk_s"]),
        "  runs, bare Kivy  %s" % " ".join("%.2f" % s for s in figures["samples"]["bare_shown_s"]),
    ]
    imports = figures["imports"]
    if imports["top"]:
        lines += ["",
                  "kiosk start-up imports (-X importtime, one start): %d modules, %.2f s in all" % (
                      imports["count"], imports["total_s"]),
                  "  cumulative     self   module (indented by nesting depth)"]
        lines += ["  %8.3f s %7.3f s   %s%s" % (r["cumulative_s"], r["self_s"], "  " * r["depth"], r["module"])
                  for r in imports["top"]]
    else:
        lines.append("kiosk start-up imports: no -X importtime lines in the kiosk's output")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    print(report(run(parser.parse_args(argv).runs)))


if __name__ == "__main__":
    main()
