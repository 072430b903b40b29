"""Screenshots of the insight views after a real short digits run: `make insight-screenshots`.

Trains three short runs on the bundled digits into a temporary runs folder (an MLP with a cosine
schedule, a faster MLP and a LeNet), then opens each view on them and saves a PNG:
evaluation, lr_finder, data_explorer, runs, live_insight. Run it under a display, e.g.
`xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python packaging/insight_screenshots.py docs/screenshots`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from studio.config import load_config  # noqa: E402
from studio.engine.callbacks import Callback  # noqa: E402
from studio.engine.prediction_samples import PredictionSamples, ValidationSamples  # noqa: E402
from studio.engine.trainer import Trainer  # noqa: E402

SIZE = (1360, 860)


class _StepRecorder(Callback):
    def __init__(self) -> None:
        self.steps: list[Any] = []

    def on_step_end(self, trainer: Any, event: Any) -> None:
        self.steps.append(event)


def wait_until(app: QApplication, done: Callable[[], bool], timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("a view did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    """Let timers fire and layouts finish before grabbing."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(app: QApplication, widget: QWidget, path: Path) -> None:
    settle(app)
    widget.grab().save(str(path))
    print(f"wrote {path}")


def train_runs(runs: Path) -> tuple[Path, _StepRecorder, list[PredictionSamples]]:
    common = ["train.log_every=5"]
    recorder = _StepRecorder()
    samples: list[PredictionSamples] = []
    main = runs / "20261122-140500-digits-mlp"
    cfg = load_config("examples/digits.toml", [*common, "train.epochs=6", "model.hidden=[128]",
                                               'train.schedule="cosine"', "train.warmup_epochs=0.5",
                                               "train.lr=0.002"])
    Trainer(cfg, main, callbacks=[recorder, ValidationSamples(samples.append, count=24)]).fit()
    Trainer(load_config("examples/digits.toml", [*common, "train.epochs=6", "train.lr=0.02"]),
            runs / "20261122-141000-digits-mlp").fit()
    Trainer(load_config("examples/digits.toml", [*common, "train.epochs=4", 'model.arch="lenet"']),
            runs / "20261122-141500-digits-lenet").fit()
    return main, recorder, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default="docs/screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")

    from studio.ui.data_explorer import DataExplorerView
    from studio.ui.evaluation_view import EvaluationView
    from studio.ui.live_insight import LiveInsightView
    from studio.ui.lr_finder_dialog import LRFinderDialog
    from studio.ui.runs_view import RunsView

    # Inside the (git-ignored) build folder, so the Runs view shows a short relative path.
    work = Path("build") / "insight-screenshots"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        runs = work / "runs"
        main_run, recorder, samples = train_runs(runs)
        config = load_config(main_run / "config.toml")

        view = EvaluationView()
        view.resize(*SIZE)
        view.show()
        done: list[Any] = []
        view.evaluated.connect(done.append)
        view.failed.connect(lambda m: done.append(RuntimeError(m)))
        view.set_run(main_run)
        wait_until(app, lambda: bool(done))
        if isinstance(done[0], Exception):
            raise done[0]
        cm = np.array(done[0].report["confusion_matrix"])
        np.fill_diagonal(cm, 0)
        t, p = np.unravel_index(np.argmax(cm), cm.shape)
        view.show_cell(int(t), int(p))  # what a person clicks first: the most common confusion
        save(app, view, out / "evaluation.png")

        dialog = LRFinderDialog(load_config("examples/digits.toml"))
        dialog.show()
        found: list[Any] = []
        dialog.search_finished.connect(found.append)
        dialog.search_failed.connect(lambda m: found.append(RuntimeError(m)))
        wait_until(app, lambda: bool(found))
        if isinstance(found[0], Exception):
            raise found[0]
        save(app, dialog, out / "lr_finder.png")
        dialog.close()

        explorer = DataExplorerView()
        explorer.resize(*SIZE)
        explorer.show()
        loaded: list[Any] = []
        explorer.loaded.connect(loaded.append)
        explorer.failed.connect(lambda m: loaded.append(RuntimeError(m)))
        explorer.set_config(config)
        wait_until(app, lambda: bool(loaded))
        if isinstance(loaded[0], Exception):
            raise loaded[0]
        save(app, explorer, out / "data_explorer.png")

        runs_view = RunsView(runs)
        runs_view.resize(*SIZE)
        runs_view.show()
        runs_view.select_runs([r.name for r in runs_view.runs])
        save(app, runs_view, out / "runs.png")

        live = LiveInsightView()
        live.resize(*SIZE)
        live.show()
        for event in recorder.steps:
            live.add_step(event)
        live.set_predictions(samples[-1])
        save(app, live, out / "live_insight.png")
        QTimer.singleShot(0, app.quit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
