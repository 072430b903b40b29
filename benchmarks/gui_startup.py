"""Time from launching `studio` to the window's first paint, and to the loaded engine (torch).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_startup.py [--runs 3]

Starts a fresh Python process per run (`python -m studio gui`), with STUDIO_STARTUP_TIMING=exit so
the window reports its timings and quits once torch is imported. Settings and runs go to a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(tmp: Path) -> tuple[float, float]:
    env = dict(os.environ, STUDIO_STARTUP_TIMING="exit", STUDIO_RUNS_DIR=str(tmp / "runs"),
               XDG_CONFIG_HOME=str(tmp / "config"), PYTHONPATH=str(ROOT))
    env["STUDIO_LAUNCH_T"] = repr(time.time())
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "studio", "gui"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    total = time.perf_counter() - t0
    paint = re.search(r"first paint: ([\d.]+)s after launch", proc.stderr)
    engine = re.search(r"engine ready .*?: ([\d.]+)s after studio.ui.app", proc.stderr)
    if proc.returncode != 0 or not paint or not engine:
        raise SystemExit(f"the window did not report its timings (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return float(paint.group(1)), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    paints, totals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            paint, total = one_run(Path(tmp))
            paints.append(paint)
            totals.append(total)
    print(f"first paint after launch: median {statistics.median(paints):.2f}s "
          f"(runs: {', '.join(f'{p:.2f}' for p in paints)}); "
          f"launch to engine ready and exit: median {statistics.median(totals):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
