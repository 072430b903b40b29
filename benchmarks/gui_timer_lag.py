"""How late a 10 ms QTimer fires on the GUI thread while the studio trains (the UI's responsiveness).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_timer_lag.py [--seconds 20] [--log-every 10] [--tab Signals]

Opens the main window on the default setup (bundled digits, MLP), clicks Train, and for
`--seconds` records how late each tick of a precise 10 ms timer comes; prints p50, p95, p99 and
the maximum, and exits 1 when p99 is 50 ms or more.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--log-every", type=int, default=10, help="train.log_every (1 = an event per step)")
    parser.add_argument(
        "--live-changes",
        action="store_true",
        help="change the learning rate or batch size every half second, as a user might",
    )
    parser.add_argument(
        "--tab",
        default="Training",
        help="the tab on screen while it trains (Signals redraws its plots and sample grid live)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")
    from PySide6.QtCore import QEventLoop, QSettings, QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    # The offscreen platform warns on every window-size hint; the rest of Qt's messages still print.
    qInstallMessageHandler(lambda mode, ctx, msg: None if "propagateSizeHints" in msg else print(msg, file=sys.stderr))

    from studio.config import Config
    from studio.ui.main_window import MainWindow
    from studio.ui.responsiveness import TimerLagProbe
    from studio.ui.theme import apply_theme

    apply_theme(app, "light")
    cfg = Config().replace_value("train.epochs", 100000).replace_value("train.log_every", args.log_every)
    window = MainWindow(cfg)
    window.resize(1400, 900)
    window.show()
    while not window._engine_ready:
        app.processEvents()
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    if args.tab not in titles:
        parser.error(f"--tab must be one of {', '.join(titles)}")
    window.tabs.setCurrentIndex(titles.index(args.tab))
    window.start_training()
    while window.curves.point_count() == 0:
        app.processEvents()
        time.sleep(0.005)
    probe = TimerLagProbe(10)
    probe.start()
    if args.live_changes:
        flips = {"n": 0}

        def change() -> None:
            flips["n"] += 1
            n = flips["n"]
            if n % 2:
                window.training_panel.lr_spin.setValue(0.001 if n % 4 == 1 else 0.002)
            else:
                window.training_panel.batch_spin.setValue(64 if n % 4 == 0 else 48)

        changer = QTimer()
        changer.timeout.connect(change)
        changer.start(500)
    loop = QEventLoop()  # a real event loop, as a user has it (app.quit would close the window)
    QTimer.singleShot(int(args.seconds * 1000), loop.quit)
    loop.exec()
    probe.stop()
    steps = window.history.last_step
    window.shutdown(30.0)
    print(
        f"training {args.seconds:.0f}s ({args.tab} tab, log_every={args.log_every}, {steps} steps): {probe.summary()}, "
        f"p95 {probe.percentile(95):.1f} ms"
    )
    return 0 if probe.percentile(99) < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
