"""Seconds from clicking Train to the first loss points on the plot, and from Stop to a saved, stopped run.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_train_stop.py [--trials 3]

The default setup (bundled digits, MLP, 5 epochs) in a temporary runs folder and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")
    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    qInstallMessageHandler(lambda *_: None)

    from studio.config import Config
    from studio.ui.main_window import MainWindow

    window = MainWindow(Config())
    window.show()
    from PySide6.QtCore import QTimer

    # A real event loop (app.exec()) runs the window; a 2 ms timer checks for each event in turn.
    results: list[tuple[float, float, str, bool]] = []
    phases = {"phase": "ready"}
    times = {"t0": time.perf_counter(), "first": 0.0}
    limits = {"ready": 30.0, "points": 30.0, "settle": 0.3, "stop": 10.0}

    def advance(phase: str) -> None:
        phases["phase"], times["t0"] = phase, time.perf_counter()

    def tick() -> None:
        phase, elapsed = phases["phase"], time.perf_counter() - times["t0"]
        if phase == "ready" and window._engine_ready:
            window.train_button.click()
            advance("points")
        elif phase == "points" and window.curves.point_count() > 0:
            times["first"] = elapsed
            advance("settle")
        elif phase == "settle" and elapsed >= limits["settle"]:
            window.stop_button.click()
            advance("stop")
        elif phase == "stop" and not window.is_training:
            run = window.current_run_dir
            status = json.loads((run / "summary.json").read_text())["status"]
            saved = (run / "checkpoints" / "last.pt").is_file()
            results.append((times["first"], elapsed, status, saved))
            if len(results) >= args.trials:
                app.quit()
                return
            window.train_button.click()
            advance("points")
        elif phase != "settle" and elapsed > limits[phase]:
            print(f"gave up waiting ({phase}) after {limits[phase]:.0f}s", file=sys.stderr)
            app.exit(2)

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(2)
    code = app.exec()
    timer.stop()
    ok = code == 0 and len(results) == args.trials
    for trial, (first, stop, status, saved) in enumerate(results, 1):
        ok &= status == "stopped" and saved
        print(
            f"trial {trial}: first loss points {first:.2f}s after Train; Stop to a finished thread "
            f"{stop * 1000:.0f} ms; summary status {status}; checkpoints/last.pt {'saved' if saved else 'MISSING'}"
        )
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
