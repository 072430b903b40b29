"""The Runs view: every run under the runs folder, compared side by side.

A table (name, date, data, model, status, best val accuracy, epochs); selecting several runs
overlays their validation curves; runs can be deleted (after a confirmation), their metrics
exported as CSV, and, when TensorBoard is installed, written as TensorBoard event files.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.runs_index import RunInfo, delete_run, epoch_curves, export_metrics_csv, list_runs
from studio.engine.tensorboard_export import MISSING, export_tensorboard, tensorboard_available
from studio.errors import StudioError
from studio.ui.chart_style import styled_plot
from studio.ui.qt_helpers import named
from studio.ui.theme import current_theme, series_color

COLUMNS = ("name", "date", "data", "model", "status", "best val acc", "epochs")


def status_color(status: str) -> str:
    t = current_theme()
    return {
        "completed": t.success,
        "early_stopped": t.success,
        "failed": t.danger,
        "running": t.accent,
        "stopped": t.warning,
        "interrupted": t.warning,
    }.get(status, t.muted)


def display_path(path: Path) -> str:
    """A short form for the user: relative to the working folder when inside it, `~` for home."""
    path = Path(path).resolve()
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            rel = path.relative_to(base.resolve())
        except ValueError:
            continue
        return prefix + (str(rel) if str(rel) != "." else "")
    return str(path)


def _swatch(color: str) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(QColor(color))
    return QIcon(pm)


class _SortItem(QTableWidgetItem):
    def __init__(self, text: str, key: object) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _SortItem):
            a, b = self.key, other.key
            if a is None or b is None:  # missing values sort first
                return a is None and b is not None
            return a < b  # type: ignore[operator]  # a column's keys are all text or all numbers
        return super().__lt__(other)


class RunsView(QWidget):
    """Runs under `runs_dir`; emits `run_opened(path)` when one is double-clicked."""

    run_opened = Signal(str)
    runs_changed = Signal()
    folder_chosen = Signal(str)  # Change…: the folder the user picked (the window decides and saves)

    def __init__(self, runs_dir: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme = current_theme()
        self.setObjectName("runsView")
        self.runs_dir = Path(runs_dir)
        self.runs: list[RunInfo] = []

        self.table = named(QTableWidget(0, len(COLUMNS)), "runsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._draw_selected)
        self.table.itemDoubleClicked.connect(lambda item: self._open_row(item.row()))

        self.refresh_button = named(QPushButton("Refresh"), "runsRefreshButton")
        self.open_button = named(QPushButton("Open"), "runsOpenButton")
        self.open_button.setToolTip("Open the selected run (evaluation, curves)")
        self.delete_button = named(QPushButton("Delete…"), "runsDeleteButton")
        self.csv_button = named(QPushButton("Export CSV…"), "runsExportCsvButton")
        self.csv_button.setToolTip(
            "Write the metrics of the selected runs (all runs when none is selected) to one CSV file"
        )
        self.tensorboard_button = named(QPushButton("Export to TensorBoard…"), "runsTensorBoardButton")
        self.tensorboard_button.setToolTip(
            "Write the selected runs as TensorBoard event files" if tensorboard_available() else MISSING
        )
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self._open_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.csv_button.clicked.connect(self.export_csv)
        self.tensorboard_button.clicked.connect(self.export_tensorboard)
        self.folder_label = QLabel()
        self.folder_label.setStyleSheet(f"color: {theme.muted};")
        self.folder_label.setMinimumWidth(60)  # a long path is cut (its tooltip has all of it), never the window
        self.folder_label.setObjectName("runsFolderLabel")
        self.folder_button = named(QPushButton("Change…"), "runsFolderButton")
        self.folder_button.setToolTip(
            "Choose the folder new runs go to; `studio train` uses it too (unless $STUDIO_RUNS_DIR is set)"
        )
        self.folder_button.clicked.connect(self.choose_folder)
        self.status = named(QLabel(), "runsStatus")
        self.status.setStyleSheet(f"color: {theme.muted};")
        bar = QHBoxLayout()
        for b in (self.refresh_button, self.open_button, self.delete_button, self.csv_button, self.tensorboard_button):
            bar.addWidget(b)
        bar.addSpacing(12)
        bar.addWidget(self.folder_label, 1)
        bar.addWidget(self.folder_button)

        self.loss_plot = styled_plot("Validation loss", "epoch", "loss", object_name="runsLossPlot")
        self.acc_plot = styled_plot("Validation accuracy", "epoch", "accuracy (%)", object_name="runsAccuracyPlot")
        self.hint = QLabel(
            "Select runs in the table (Ctrl- or Shift-click for several) to overlay their curves, each in "
            "the colour of its row's swatch; dashed lines are the training split."
        )
        self.hint.setStyleSheet(f"color: {theme.muted};")
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        lower = QWidget()
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addWidget(self.hint)
        low.addWidget(plots, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([200, 560])

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

        # New or removed run folders show up by themselves; the timer coalesces bursts of changes.
        self._debounce = QTimer(self, singleShot=True, interval=500)
        self._debounce.timeout.connect(self.refresh)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _: self._debounce.start())
        # A run's status and curves change inside its folder, which the watcher does not see; a slow
        # poll while the view is on screen keeps "running" rows and their curves current.
        self._poll = QTimer(self, interval=15000)
        self._poll.timeout.connect(lambda: self.refresh() if self.isVisible() else None)
        self._poll.start()
        self.set_runs_dir(self.runs_dir)

    # -- data ----------------------------------------------------------------------------------

    def set_runs_dir(self, runs_dir: str | Path, why: str = "") -> None:
        """Show the runs under `runs_dir`; `why` says where that folder came from ("from $STUDIO_RUNS_DIR")."""
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self.runs_dir = Path(runs_dir)
        if self.runs_dir.is_dir():
            self._watcher.addPath(str(self.runs_dir))
        self.folder_label.setText(f"runs folder: {display_path(self.runs_dir)}" + (f" ({why})" if why else ""))
        self.folder_label.setToolTip(str(self.runs_dir.resolve()))
        self.refresh()

    def choose_folder(self) -> None:
        start = self.runs_dir if self.runs_dir.is_dir() else Path.home()
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", str(start))
        if folder:
            self.folder_chosen.emit(folder)

    def refresh(self) -> None:
        """Re-read the runs folder, keeping the selection."""
        keep = {r.name for r in self.selected_runs()}
        self.runs = list_runs(self.runs_dir)
        self.table.blockSignals(True)
        self.table.setSortingEnabled(False)
        self.table.clearSelection()
        self.table.setRowCount(len(self.runs))
        for i, r in enumerate(self.runs):
            acc = r.best_val_accuracy
            epochs = f"{r.epochs_completed}/{r.epochs_total}" if r.epochs_total else str(r.epochs_completed)
            cells = [
                _SortItem(r.name, r.name),
                _SortItem(r.date.strftime("%Y-%m-%d %H:%M") if r.date else "", r.date.timestamp() if r.date else None),
                _SortItem(r.data, r.data),
                _SortItem(r.model, r.model),
                _SortItem(r.status.replace("_", " "), r.status),
                _SortItem(f"{acc:.2%}" if acc is not None else "—", acc),
                _SortItem(epochs, r.epochs_completed),
            ]
            cells[0].setData(Qt.ItemDataRole.UserRole, str(r.path))
            cells[0].setToolTip(str(r.path))
            cells[4].setForeground(QColor(status_color(r.status)))
            for j in (5, 6):
                cells[j].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for j, cell in enumerate(cells):
                self.table.setItem(i, j, cell)
        self.table.setSortingEnabled(True)
        for row in range(self.table.rowCount()):
            if (item := self.table.item(row, 0)) is not None and item.text() in keep:
                self._add_row_to_selection(row)
        self.table.blockSignals(False)
        self._draw_selected()
        self.status.setText(
            f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''}"
            if self.runs
            else "no runs yet: train one and it appears here"
        )
        self.runs_changed.emit()

    def _add_row_to_selection(self, row: int) -> None:
        from PySide6.QtCore import QItemSelectionModel

        model = self.table.selectionModel()
        index = self.table.model().index(row, 0)
        model.select(index, QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)

    def selected_runs(self) -> list[RunInfo]:
        if not hasattr(self, "table"):
            return []
        rows = sorted({i.row() for i in self.table.selectedItems()})
        by_path = {str(r.path): r for r in self.runs}
        out = []
        for row in rows:
            item = self.table.item(row, 0)
            run = by_path.get(item.data(Qt.ItemDataRole.UserRole)) if item else None
            if run is not None:
                out.append(run)
        return out

    def select_runs(self, names: list[str]) -> None:
        """Select the runs with these names (for scripts and tests)."""
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if (item := self.table.item(row, 0)) is not None and item.text() in names:
                self._add_row_to_selection(row)

    # -- curves --------------------------------------------------------------------------------

    def _draw_selected(self) -> None:
        runs = self.selected_runs()
        last_epoch = 0
        for plot, key in ((self.loss_plot, "loss"), (self.acc_plot, "accuracy")):
            item = plot.getPlotItem()
            item.clear()
            # No legend on the plot: with long run names it covered the curves. Each run's colour is
            # the swatch in its table row, just above, and a curve's tooltip names its run.
            for i, run in enumerate(runs):
                curves = epoch_curves(run.path)
                color = series_color(i)
                for split, style, width in (("val", Qt.PenStyle.SolidLine, 2.5), ("train", Qt.PenStyle.DashLine, 1.2)):
                    series = curves.get(split)
                    if not series:
                        continue
                    pts = [(e, v) for e, v in zip(series["epoch"], series[key], strict=False) if v is not None]
                    if not pts:
                        continue
                    x, y = zip(*pts, strict=True)
                    last_epoch = max(last_epoch, int(max(x)))
                    if key == "accuracy":
                        y = tuple(v * 100 for v in y)
                    line = item.plot(
                        list(x),
                        list(y),
                        pen=pg.mkPen(color, width=width, style=style),
                        symbol="o" if split == "val" else None,
                        symbolSize=6,
                        symbolBrush=color,
                        symbolPen=None,
                    )
                    line.curve.setToolTip(f"{run.name} · {'validation' if split == 'val' else 'training'}")
        # A colour swatch in the name cell ties each table row to its curves.
        colors = {str(run.path): series_color(i) for i, run in enumerate(runs)}
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            swatch = colors.get(item.data(Qt.ItemDataRole.UserRole)) if item else None
            if item is not None:
                item.setIcon(_swatch(swatch) if swatch else QIcon())
        for plot in (self.loss_plot, self.acc_plot):
            axis = plot.getPlotItem().getAxis("bottom")
            if 0 < last_epoch <= 20:  # whole epochs, not 1.5
                axis.setTickSpacing(major=max(1, last_epoch // 10), minor=1)
            else:
                axis.setTickSpacing()
        self.open_button.setEnabled(len(runs) == 1)
        self.delete_button.setEnabled(bool(runs))
        self.tensorboard_button.setEnabled(bool(runs))

    # -- actions -------------------------------------------------------------------------------

    def _open_row(self, row: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.run_opened.emit(item.data(Qt.ItemDataRole.UserRole))

    def _open_selected(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.run_opened.emit(str(runs[0].path))

    def delete_selected(self) -> None:
        """Delete the selected runs after the user confirms; a running run is never deleted."""
        runs = self.selected_runs()
        if not runs:
            return
        running = [r.name for r in runs if r.status == "running"]
        if running:
            QMessageBox.warning(self, "Delete runs", f"{', '.join(running)} is still training; stop it first.")
            return
        names = "\n".join(f"  {r.name}" for r in runs[:10]) + ("\n  …" if len(runs) > 10 else "")
        answer = QMessageBox.question(
            self,
            "Delete runs",
            f"Delete {len(runs)} run{'s' if len(runs) != 1 else ''} for good?\n\n{names}\n\n"
            "Their folders, checkpoints and metrics are removed from disk.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        failed = []
        for r in runs:
            try:
                delete_run(r.path, self.runs_dir)
            except (StudioError, OSError) as exc:
                failed.append(f"{r.name}: {exc}")
        self.refresh()
        if failed:
            QMessageBox.warning(self, "Delete runs", "Some runs could not be deleted:\n" + "\n".join(failed))
        else:
            self.status.setText(f"deleted {len(runs)} run{'s' if len(runs) != 1 else ''}")

    def export_csv(self) -> None:
        runs = self.selected_runs() or self.runs
        if not runs:
            self.status.setText("no runs to export")
            return
        default = str(self.runs_dir / ("metrics.csv" if len(runs) > 1 else f"{runs[0].name}-metrics.csv"))
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics as CSV", default, "CSV files (*.csv)")
        if not path:
            return
        try:
            rows = export_metrics_csv([r.path for r in runs], Path(path))
        except (StudioError, OSError) as exc:
            QMessageBox.warning(self, "Export CSV", f"Could not export: {exc}")
            return
        self.status.setText(f"wrote {rows:,} rows from {len(runs)} run{'s' if len(runs) != 1 else ''} to {path}")

    def export_tensorboard(self) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        if not tensorboard_available():
            QMessageBox.information(self, "Export to TensorBoard", MISSING)
            return
        folder = QFileDialog.getExistingDirectory(self, "TensorBoard log folder", str(self.runs_dir))
        if not folder:
            return
        try:
            for r in runs:
                export_tensorboard(r.path, Path(folder))
        except (StudioError, OSError) as exc:
            QMessageBox.warning(self, "Export to TensorBoard", f"Could not export: {exc}")
            return
        self.status.setText(
            f"wrote {len(runs)} run{'s' if len(runs) != 1 else ''} to {folder}: tensorboard --logdir {folder}"
        )
