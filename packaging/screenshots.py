"""Regenerate the README's screenshots of the studio window: every tab, before, during and after a run.

    xvfb-run -a -s "-screen 0 1600x1000x24" python packaging/screenshots.py docs/screenshots

(`make screenshots`.) Trains the bundled digits in a temporary runs folder with temporary
settings, so the user's own runs and preferences are neither used nor touched: two short runs
headless (for the Runs tab to compare), then one in the window, pictured while it trains
(Training, Signals); after it ends come Evaluation, the Export report, Predict with a
prediction shown, Data, Runs and the LR finder; then every tab at 1280×720 in the light and the
dark look, and the tutorial's line fit (its learned line on the Evaluation tab).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = (1480, 920)
SMALL = (1280, 720)


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    # Runs in the (git-ignored) build folder, named relative to the repository: the pictures then
    # show short paths such as build/screenshots/runs/..., not this machine's temporary folders.
    work = Path("build") / "screenshots"
    shutil.rmtree(work, ignore_errors=True)
    runs = work / "runs"
    os.environ["STUDIO_RUNS_DIR"] = str(runs)

    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    qInstallMessageHandler(lambda mode, ctx, msg: None)  # Xvfb chatter is not news here
    app.setApplicationName("Studio")

    import numpy as np
    from PIL import Image

    from studio.config import Config
    from studio.data.digits import load_digits
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

    from studio.config import load_config, save_config
    from studio.engine.trainer import Trainer

    examples = Path(__file__).resolve().parents[1] / "resources" / "examples" / "digits.toml"
    for name, overrides in (
        ("20261122-091500-digits-mlp", ["train.epochs=5", "train.lr=0.02"]),
        ("20261122-094000-digits-lenet", ["train.epochs=4", 'model.arch="lenet"']),
    ):
        Trainer(load_config(examples, ["train.log_every=5", *overrides]), runs / name).fit()

    cfg = (
        Config()
        .replace_value("model.hidden", [256, 128])
        .replace_value("train.epochs", 12)
        .replace_value("train.schedule", "cosine")
        .replace_value("train.lr", 0.002)
    )
    w = MainWindow(cfg, runs_dir=runs)
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
    w.set_theme("light")
    w.views.show_tab("signals")
    shot("studio-signals.png")
    w.control.resume()
    pump(120, lambda: not w.is_training)
    if w.last_outcome is None or w.last_outcome.status != "completed":
        raise RuntimeError(f"the run did not complete: {w.last_outcome}")

    evaluation = w.views.evaluation
    w.views.show_tab("evaluation")
    pump(60, lambda: evaluation.details is not None)
    cm = np.array(evaluation.details.report["confusion_matrix"])
    np.fill_diagonal(cm, 0)
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    evaluation.show_cell(int(t), int(p))  # what a person clicks first: the most common confusion
    shot("studio-evaluation.png")

    w.export_current_run()
    dialog = w.export_dialog
    dialog.start_export()
    pump(120, lambda: not dialog.is_running())
    if dialog.report is None:
        raise RuntimeError(f"the export failed: {dialog.error}")
    pump(0.4)
    dialog.grab().save(str(out / "studio-export.png"))
    shots.append(out / "studio-export.png")
    dialog.close()

    predict = w.views.predict
    w.views.show_tab("predict")
    pump(30, lambda: predict.info is not None and predict.info.origin.endswith(".onnx"))
    images, _targets, _ = load_digits()
    pngs = tmp / "my-digits"
    pngs.mkdir()
    paths = []
    for i in (7003, 7010, 7021, 7042, 7077, 7105):
        path = pngs / f"digit-{i}.png"
        Image.fromarray(images[i, 0].numpy()).resize((112, 112), Image.Resampling.LANCZOS).save(path)
        paths.append(path)
    predict.add_images(paths)
    pump(30, lambda: len(predict.results) == len(paths))
    # The least certain answer makes the most telling chart.
    probs = [predict.results[str(path)].get("probability", 1.0) for path in paths]
    predict.file_list.setCurrentRow(int(np.argmin(probs)))
    shot("studio-predict.png")

    explorer = w.views.explorer
    loaded: list = []
    explorer.loaded.connect(loaded.append)
    w.views.show_tab("data")
    pump(60, lambda: bool(loaded))
    shot("studio-data.png")

    w.views.show_tab("runs")
    runs_view = w.views.runs
    runs_view.refresh()
    runs_view.select_runs([r.name for r in runs_view.runs])
    shot("studio-runs.png")

    w.views.show_tab("evaluation")
    w.open_lr_finder()
    finder = w.lr_finder_dialog
    found: list = []
    finder.search_finished.connect(found.append)
    finder.search_failed.connect(found.append)
    pump(120, lambda: bool(found))
    pump(0.4)
    finder.grab().save(str(out / "studio-lr-finder.png"))
    shots.append(out / "studio-lr-finder.png")
    finder.close()

    # A smaller screen (1280×720, a laptop's) in both looks, every tab: nothing cut off or squashed.
    w.resize(*SMALL)
    for theme in ("light", "dark"):
        w.set_theme(theme)
        for key in ("training", "signals", "evaluation", "predict", "data", "runs"):
            if key == "training":
                w.tabs.setCurrentIndex(0)
            else:
                w.views.show_tab(key)
            pump(0.3)
            shot(f"studio-{SMALL[0]}x{SMALL[1]}-{key}-{theme}.png")
    w.set_theme("light")
    w.resize(*SIZE)

    # The tutorial's line fit (no val or test split): the learned slope and intercept, and the line.
    line_run = runs / "20261122-100000-line-linear"
    Trainer(load_config(examples.parent / "line.toml", ["train.log_every=5"]), line_run).fit()
    w.open_run(line_run)
    w.views.show_tab("evaluation")
    pump(60, lambda: evaluation.details is not None and evaluation.details.task == "regression")
    shot("studio-line-fit.png")
    w.tabs.setCurrentIndex(0)
    shot("studio-line-fit-training.png")

    # File › Follow Run: a run that `studio train` writes in another process, shown live.
    followed = runs / "20261122-101500-digits-mlp-cli"
    followed.mkdir(parents=True)
    save_config(
        Config().replace_value("train.epochs", 40).replace_value("train.log_every", 5), followed / "config.toml"
    )
    w.tabs.setCurrentIndex(0)
    w.opener.follow_run(followed)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cli = subprocess.Popen(
        [sys.executable, "-m", "studio", "train", str(followed / "config.toml"), "--run-dir", str(followed), "-q"],
        env=env,
    )
    pump(180, lambda: len(w.history.epoch_x["val"]) >= 4)
    shot("follow-run.png")
    w.stop_training()  # through the run folder's control.json: the CLI run saves itself and stops
    pump(60, lambda: cli.poll() is not None)
    if cli.poll() is None:
        cli.terminate()
    cli.wait()

    w.shutdown(30.0)
    w.close()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    for p in shots:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
