"""The Evaluation tab's regression page: what the model learned and how far off it is.

For a one-feature regression, the data with the model's fitted line (the tutorial's line fit);
for the `linear` architecture, the learned parameters in the data's own units (slope ≈ 2,
intercept ≈ 1); always, predicted against true and the residuals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from studio.ui.chart_style import add_legend, qcolor, styled_plot
from studio.ui.qt_helpers import named
from studio.ui.theme import current_theme

MAX_WEIGHTS_SHOWN = 8  # more features than this: the largest weights, and the rest in the tooltip


def _g(v: float) -> str:
    return f"{v:.4g}"


def parameters_text(params: dict[str, Any], target: str = "y") -> tuple[str, str]:
    """(one line for the page, the full list for its tooltip) of a linear model's learned parameters."""
    weights, intercept = params.get("weights"), params.get("intercept")
    if not isinstance(weights, dict) or not weights:
        return "", ""
    first = next(iter(weights.values()))
    if isinstance(first, dict):  # classification: one set of weights per class, of the logits
        full = "\n".join(
            f"{label}: " + ", ".join(f"{name} {_g(w)}" for name, w in ws.items())
            for label, ws in weights.items()
            if isinstance(ws, dict)
        )
        return f"learned weights for {len(weights)} classes (hover for the list)", full
    if "slope" in params and len(weights) == 1:
        name = next(iter(weights))
        line = f"learned: {target} = {_g(params['slope'])} · {name} + {_g(float(intercept or 0.0))}"
        return line, f"slope {params['slope']!r}\nintercept {intercept!r}"
    ranked = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    shown = " ".join(f"{'+' if w >= 0 else '−'} {_g(abs(w))}·{name}" for name, w in ranked[:MAX_WEIGHTS_SHOWN])
    more = f" … ({len(ranked) - MAX_WEIGHTS_SHOWN} more, hover)" if len(ranked) > MAX_WEIGHTS_SHOWN else ""
    full = "\n".join(f"{name}: {w!r}" for name, w in ranked) + f"\nintercept: {intercept!r}"
    return f"learned: {target} = {_g(float(intercept or 0.0))} {shown}{more}", full


class RegressionPage(QWidget):
    """The plots and learned parameters of one regression evaluation; `show(details)` fills it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.parameters = named(QLabel(), "learnedParameters")
        self.parameters.setWordWrap(True)
        self.parameters.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.parameters.setVisible(False)
        self.line_plot = styled_plot("Data and fitted line", "x", "y", object_name="fittedLinePlot")
        self.scatter_plot = styled_plot(
            "Predicted against true", "true value", "predicted value", object_name="predictedVsTruePlot"
        )
        self.residual_plot = styled_plot(
            "Residuals", "predicted value", "predicted − true", object_name="residualsPlot"
        )
        self.plots = QSplitter(Qt.Orientation.Horizontal)
        for p in (self.line_plot, self.scatter_plot, self.residual_plot):
            self.plots.addWidget(p)
        self.plots.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.parameters)
        lay.addWidget(self.plots, 1)

    def fill(self, d: Any) -> None:
        theme = current_theme()
        r, pts = d.report, d.regression
        text, tip = parameters_text(r.get("parameters") or {})
        self.parameters.setText(text)
        self.parameters.setToolTip(tip)
        self.parameters.setStyleSheet(f"color: {theme.text}; font-size: 11pt; font-weight: 600;")
        self.parameters.setVisible(bool(text))
        line = getattr(d, "fitted_line", None)
        self.line_plot.setVisible(line is not None)
        if line is not None:
            self._show_line(line)
        if pts is None:
            return
        sp = self.scatter_plot.getPlotItem()
        sp.clear()
        legend = add_legend(self.scatter_plot, offset=(10, 10))
        sp.addItem(pg.ScatterPlotItem(pts.true, pts.pred, size=6, pen=None, brush=qcolor(theme.accent, 150)))
        lo = float(min(pts.true.min(), pts.pred.min())) if len(pts.true) else 0.0
        hi = float(max(pts.true.max(), pts.pred.max())) if len(pts.true) else 1.0
        xs = np.array([lo, hi])
        ideal = sp.plot(xs, xs, pen=pg.mkPen(theme.muted, width=1.5, style=Qt.PenStyle.DashLine))
        fitted = sp.plot(xs, pts.slope * xs + pts.intercept, pen=pg.mkPen(theme.danger, width=2))
        legend.addItem(ideal, "perfect (y = x)")
        legend.addItem(fitted, f"fitted: y = {pts.slope:.3g}x + {pts.intercept:.3g}")
        rp = self.residual_plot.getPlotItem()
        rp.clear()
        rp.addItem(pg.ScatterPlotItem(pts.pred, pts.residuals, size=6, pen=None, brush=qcolor(theme.accent, 150)))
        rp.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(theme.muted, width=1.5, style=Qt.PenStyle.DashLine)))

    def _show_line(self, line: Any) -> None:
        theme = current_theme()
        item = self.line_plot.getPlotItem()
        item.clear()
        item.setLabel("bottom", line.feature, color=theme.text)
        legend = add_legend(self.line_plot, offset=(10, 10))
        dots = pg.ScatterPlotItem(line.x, line.y, size=6, pen=None, brush=qcolor(theme.accent, 150))
        item.addItem(dots)
        curve = item.plot(line.line_x, line.line_y, pen=pg.mkPen(theme.danger, width=2.5))
        legend.addItem(dots, f"data ({len(line.x):,} points)")
        legend.addItem(curve, "the model's prediction")

    def clear(self) -> None:
        self.parameters.setText("")
        self.parameters.setVisible(False)
        for p in (self.line_plot, self.scatter_plot, self.residual_plot):
            p.getPlotItem().clear()
