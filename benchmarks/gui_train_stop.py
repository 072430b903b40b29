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

    def wait(limit: float, done: object) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit:
            app.processEvents()
            if done():  # type: ignore[operator]
                return time.perf_counter() - t0
            time.sleep(0.002)
        raise SystemExit(f"gave up after {limit}s")

    wait(30, lambda: window._engine_ready)
    ok = True
    for trial in range(1, args.trials + 1):
        window.train_button.click()
        first = wait(30, lambda: window.curves.point_count() > 0)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            app.processEvents()
        window.stop_button.click()
        stop = wait(10, lambda: not window.is_training)
        run = window.current_run_dir
        status = json.loads((run / "summary.json").read_text())["status"]
        saved = (run / "checkpoints" / "last.pt").is_file()
        ok &= status == "stopped" and saved and stop < 2.0
        print(
            f"trial {trial}: first loss points {first:.2f}s after Train; Stop to a finished thread "
            f"{stop * 1000:.0f} ms; summary status {status}; checkpoints/last.pt {'saved' if saved else 'MISSING'}"
        )
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
