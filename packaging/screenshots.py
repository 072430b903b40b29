"""Regenerate the README's screenshots of the studio window, before and during training.

    xvfb-run -a -s "-screen 0 1600x1000x24" python packaging/screenshots.py docs/screenshots

(`make screenshots`.) Trains the bundled digits in a temporary runs folder with temporary
settings, so the user's own runs and preferences are neither used nor touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = (1480, 920)


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")

    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    qInstallMessageHandler(lambda mode, ctx, msg: None)  # Xvfb chatter is not news here
    app.setApplicationName("Studio")

    from studio.config import Config
    from studio.ui.main_window import MainWindow
    from studio.ui.theme import app_icon, apply_theme

    app.setWindowIcon(app_icon())
    apply_theme(app, "light")

    def pump(seconds: float, until: object = None) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            if until is not None and until():  # type: ignore[operator]
                return
            time.sleep(0.01)

    cfg = (Config().replace_value("model.hidden", [256, 128]).replace_value("train.epochs", 12)
           .replace_value("train.schedule", "cosine").replace_value("train.lr", 0.002))
    w = MainWindow(cfg)
    w.settings.setValue("view/theme", "light")
    w.resize(*SIZE)
    w.show()
    pump(20, lambda: w._engine_ready)
    pump(1.5)  # the data summary and parameter count arrive from the inspector
    shots = []

    def shot(name: str) -> None:
        pump(0.4)
        path = out / name
        w.grab().save(str(path))
        shots.append(path)

    shot("studio-ready.png")
    w.start_training()
    pump(60, lambda: len(w.history.epoch_x["val"]) >= 4)
    w.training_panel.lr_spin.setValue(0.004)  # a live change, marked on the curves
    pump(60, lambda: len(w.history.epoch_x["val"]) >= 7)
    w.training_panel.batch_spin.setValue(128)
    pump(60, lambda: len(w.history.epoch_x["val"]) >= 9)
    w.control.pause()  # hold still for the pictures (the state chip shows Training)
    pump(0.5)
    w.curves.redraw()
    # Show the hover read-out as a user pointing at the curves would see it.
    x = 5.5
    for line in w.curves._hover_lines:
        line.setPos(x)
        line.setVisible(True)
    w.curves._update_readouts(x)
    scroll = w.training_panel.parentWidget()
    while scroll is not None and scroll.objectName() != "setupScroll":
        scroll = scroll.parentWidget()
    if scroll is not None:  # bring the live learning-rate and batch-size fields into view
        scroll.ensureWidgetVisible(w.training_panel.batch_spin, 0, 40)
    shot("studio-training.png")
    w.set_theme("dark")
    w.curves._update_readouts(x)
    shot("studio-training-dark.png")
    w.control.resume()
    w.set_theme("light")
    w.shutdown(30.0)
    w.close()
    for p in shots:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
