"""How late a 10 ms QTimer fires on the GUI thread while the studio trains (the UI's responsiveness).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_timer_lag.py [--seconds 20] [--log-every 10] [--tab Signals]
        [--live-changes] [--against REV [--rounds 2]]

Opens the main window on the default setup (bundled digits, MLP), clicks Train, and for
`--seconds` records how late each tick of a precise 10 ms timer comes; prints p50, p95, p99 and
the maximum, and exits 1 when p99 is 50 ms or more.

`--against REV` measures the git revision REV (checked out in a temporary worktree) and this
tree side by side, alternating, `--rounds` times each, and prints the medians and their ratios:
the same machine at the same time, so its load weighs on both alike.
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
    parser.add_argument("--against", metavar="REV", help="also measure this git revision, side by side")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: runs of each, alternating")
    args = parser.parse_args()
    if args.against:
        return compare(args)

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


RESULT = re.compile(r"late by p50 [\d.]+ ms, p99 ([\d.]+) ms, max ([\d.]+) ms")


def compare(args: argparse.Namespace) -> int:
    """Run this benchmark at `args.against` and on this tree, alternating, and print both."""
    root = Path(__file__).resolve().parents[1]
    flags = ["--seconds", str(args.seconds), "--log-every", str(args.log_every), "--tab", args.tab]
    flags += ["--live-changes"] if args.live_changes else []
    results: dict[str, list[tuple[float, float]]] = {args.against: [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="studio-bench-base-") as tmp:
        base = Path(tmp) / "base"
        done = subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(base), args.against],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"error: cannot check out {args.against}: {done.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            for _ in range(args.rounds):
                for name, script in ((args.against, base), ("this tree", root)):
                    cmd = [sys.executable, str(script / "benchmarks" / "gui_timer_lag.py"), *flags]
                    out = subprocess.run(cmd, capture_output=True, text=True, cwd=script)
                    found = RESULT.search(out.stdout)
                    if found is None:
                        print(f"error: no result from {name}:\n{out.stdout}{out.stderr}", file=sys.stderr)
                        return 2
                    results[name].append((float(found[1]), float(found[2])))
                    print(f"{name}: {out.stdout.strip().splitlines()[-1]}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(base)], capture_output=True)
    (b99, bmax), (t99, tmax) = (
        (statistics.median(p for p, _ in results[k]), statistics.median(m for _, m in results[k])) for k in results
    )
    print(
        f"median of {args.rounds}: {args.against} p99 {b99:.1f} ms, max {bmax:.1f} ms; this tree p99 {t99:.1f} ms, "
        f"max {tmax:.1f} ms; ratio this/{args.against}: p99 {t99 / b99:.2f}, max {tmax / bmax:.2f}"
    )
    return 0 if t99 < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
