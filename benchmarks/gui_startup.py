"""Time from launching `studio` to the window's first paint, and to the loaded engine (torch).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_startup.py [--runs 3] [--app dist/studio]

Starts a fresh process per run (`python -m studio gui`), with STUDIO_STARTUP_TIMING=exit so the
window reports its timings and quits once torch is imported. Settings and runs go to a temporary
folder. `--app FOLDER` also times the packaged app (`make app`: FOLDER/studio-gui), alternating
with the source runs in the same session, and prints the ratio.
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


def one_run(tmp: Path, command: list[str]) -> tuple[float, float, float]:
    """(first paint, engine ready, process exit), each in seconds after launch."""
    env = dict(
        os.environ,
        STUDIO_STARTUP_TIMING="exit",
        STUDIO_RUNS_DIR=str(tmp / "runs"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        PYTHONPATH=str(ROOT),
    )
    env["STUDIO_LAUNCH_T"] = repr(time.time())
    t0 = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    total = time.perf_counter() - t0
    paint = re.search(r"first paint: ([\d.]+)s after launch, ([\d.]+)s after studio.ui.app", proc.stderr)
    engine = re.search(r"engine ready .*?: ([\d.]+)s after studio.ui.app", proc.stderr)
    if proc.returncode != 0 or not paint or not engine:
        raise SystemExit(f"the window did not report its timings (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    # The engine line counts from studio.ui.app's import; the paint line gives that import's time since launch.
    app_imported = float(paint.group(1)) - float(paint.group(2))
    return float(paint.group(1)), app_imported + float(engine.group(1)), total


def summary(name: str, runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    medians = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    print(
        f"{name}: first paint after launch: median {medians[0]:.2f}s "
        f"(runs: {', '.join(f'{r[0]:.2f}' for r in runs)}); engine ready: median {medians[1]:.2f}s; "
        f"launch to engine ready and exit: median {medians[2]:.2f}s"
    )
    return medians  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--app", type=Path, help="also time the packaged app in this folder (dist/studio)")
    args = parser.parse_args()
    commands = {"source (python -m studio gui)": [sys.executable, "-m", "studio", "gui"]}
    if args.app:
        gui = args.app / ("studio-gui.exe" if sys.platform == "win32" else "studio-gui")
        if not gui.is_file():
            raise SystemExit(f"error: {gui} not found; build it with `make app`")
        commands[f"app ({gui})"] = [str(gui)]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for name, command in commands.items():  # alternating, so both see the same machine load
                results[name].append(one_run(Path(tmp), command))
    medians = [summary(name, runs) for name, runs in results.items()]
    if len(medians) == 2:
        (sp, se, st), (ap, ae, at) = medians
        print(f"app / source: first paint {ap / sp:.2f}x, engine ready {ae / se:.2f}x, exit {at / st:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
