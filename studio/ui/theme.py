"""Light and dark looks: the one palette of the studio. Its named colours feed Qt's palette, the
style sheet, the live curves and every insight plot (through `chart_style`); no other module names a
colour by its hex code (the confusion matrix keeps its own colour scale).

`apply_theme(app, "light" | "dark" | "system")` restyles the whole application; `themed_icon(name)`
renders a line icon from `resources/icons/` in the current text colour so it stays crisp on both.
"""

from __future__ import annotations

import functools
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from studio.resources import resource_path

THEMES = ("system", "light", "dark")
ON_ACCENT = "#ffffff"  # text and icons on an accent or a dark cell
# Distinct colours for overlaid runs and the Signals tab's series (Tableau 10: colour-blind friendly
# enough for a handful, and readable on both the light and the dark plot background).
SERIES = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


@dataclass(frozen=True)
class Theme:
    """Named colours of one look; the style sheet refers to them as `$name`."""

    name: str
    window: str
    panel: str
    surface: str
    input: str
    border: str
    text: str
    muted: str
    disabled: str
    hover: str
    pressed: str
    chip: str
    scroll: str
    accent: str
    accent_hover: str
    accent_soft: str
    accent_disabled: str
    success: str
    success_soft: str
    warning: str
    warning_soft: str
    danger: str
    danger_soft: str
    plot_bg: str
    plot_fg: str
    grid: str
    # Series colours: train, val and test splits, learning rate, change markers.
    train: str
    val: str
    test: str
    lr: str
    marker: str

    def split(self, name: str) -> str:
        """The colour of a data split (train, val, test) in every chart."""
        return {"train": self.train, "val": self.val, "test": self.test}.get(name, self.muted)


LIGHT = Theme(
    name="light",
    window="#f4f5f8",
    panel="#fbfbfd",
    surface="#ffffff",
    input="#ffffff",
    border="#e1e4ea",
    text="#1d2330",
    muted="#667085",
    disabled="#a3aab8",
    hover="#eef1f6",
    pressed="#e3e8f0",
    chip="#eceff4",
    scroll="#c9ced8",
    accent="#3f6ff0",
    accent_hover="#2f5ce0",
    accent_soft="#e4ebfe",
    accent_disabled="#a8bdf7",
    success="#14905b",
    success_soft="#dcf4e8",
    warning="#b26a00",
    warning_soft="#fdf0d8",
    danger="#d0343a",
    danger_soft="#fde4e4",
    plot_bg="#ffffff",
    plot_fg="#4a5263",
    grid="#e9ecf1",
    train="#3f6ff0",
    val="#f0831a",
    test="#14905b",
    lr="#13a07a",
    marker="#8b5cf6",
)

DARK = Theme(
    name="dark",
    window="#16181d",
    panel="#1c1f25",
    surface="#22262e",
    input="#1a1d23",
    border="#313641",
    text="#e6e9ef",
    muted="#98a1b3",
    disabled="#5c6475",
    hover="#2a2f39",
    pressed="#333945",
    chip="#2a2f39",
    scroll="#434a57",
    accent="#5b8cff",
    accent_hover="#7aa2ff",
    accent_soft="#24345c",
    accent_disabled="#34456e",
    success="#3ccf8e",
    success_soft="#173829",
    warning="#f2b04a",
    warning_soft="#3d2e14",
    danger="#ff6b6b",
    danger_soft="#46201f",
    plot_bg="#1f232a",
    plot_fg="#aab2c3",
    grid="#2c313b",
    train="#6b9bff",
    val="#ffa94d",
    test="#3ccf8e",
    lr="#34d3a5",
    marker="#b197fc",
)

_current: Theme = LIGHT
_asset_dir: Path | None = None


def current_theme() -> Theme:
    return _current


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def resolve_theme(name: str) -> Theme:
    """`system` follows the desktop's colour scheme where Qt can tell, else light."""
    if name == "dark":
        return DARK
    if name == "light":
        return LIGHT
    hints = QGuiApplication.styleHints() if QGuiApplication.instance() else None
    if hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark:
        return DARK
    return LIGHT


def _palette(t: Theme) -> QPalette:
    p = QPalette()
    c = QColor
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        p.setColor(group, QPalette.ColorRole.Window, c(t.window))
        p.setColor(group, QPalette.ColorRole.WindowText, c(t.text))
        p.setColor(group, QPalette.ColorRole.Base, c(t.input))
        p.setColor(group, QPalette.ColorRole.AlternateBase, c(t.panel))
        p.setColor(group, QPalette.ColorRole.Text, c(t.text))
        p.setColor(group, QPalette.ColorRole.Button, c(t.surface))
        p.setColor(group, QPalette.ColorRole.ButtonText, c(t.text))
        p.setColor(group, QPalette.ColorRole.Highlight, c(t.accent))
        p.setColor(group, QPalette.ColorRole.HighlightedText, c("#ffffff"))
        p.setColor(group, QPalette.ColorRole.ToolTipBase, c(t.surface))
        p.setColor(group, QPalette.ColorRole.ToolTipText, c(t.text))
        p.setColor(group, QPalette.ColorRole.PlaceholderText, c(t.muted))
        p.setColor(group, QPalette.ColorRole.Link, c(t.accent))
        p.setColor(group, QPalette.ColorRole.Mid, c(t.border))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, c(t.disabled))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, c(t.panel))
    return p


def _svg_text(name: str, color: str) -> str:
    return resource_path("icons", f"{name}.svg").read_text(encoding="utf-8").replace("currentColor", color)


def themed_icon(name: str, color: str | None = None, size: int = 20) -> QIcon:
    """A line icon from resources/icons in `color` (default: the theme's text colour), sharp at 2x.

    Rendered once per name, colour and size: actions ask again on every state change of a run."""
    return QIcon(_rendered_icon(name, color or _current.text, size))  # a copy shares the pixmaps


@functools.lru_cache(maxsize=256)
def _rendered_icon(name: str, color: str, size: int) -> QIcon:
    renderer = QSvgRenderer(QByteArray(_svg_text(name, color).encode()))
    icon = QIcon()
    for scale in (1, 2):
        pm = QPixmap(size * scale, size * scale)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        renderer.render(painter, QRectF(0, 0, size * scale, size * scale))
        painter.end()
        pm.setDevicePixelRatio(scale)
        icon.addPixmap(pm)
    return icon


def app_icon() -> QIcon:
    return QIcon(str(resource_path("icons", "studio.svg")))


def _asset(name: str, color: str) -> str:
    """Write a recoloured icon where the style sheet can name it by path (url() takes no data)."""
    global _asset_dir
    if _asset_dir is None:
        _asset_dir = Path(tempfile.mkdtemp(prefix="studio-style-"))
    path = _asset_dir / f"{name}-{color.lstrip('#')}.svg"
    if not path.exists():
        path.write_text(_svg_text(name, color), encoding="utf-8")
    return path.as_posix()


def style_sheet(t: Theme) -> str:
    template = string.Template(resource_path("style.qss").read_text(encoding="utf-8"))
    values = dict(vars(t))
    values["chevron"] = _asset("chevron-down", t.muted)
    return template.substitute(values)


def apply_theme(app: QApplication, name: str = "system") -> Theme:
    """Restyle the application (Fusion, palette, style sheet); returns the theme now in use."""
    global _current
    theme = resolve_theme(name)
    _current = theme
    app.setStyle("Fusion")
    app.setPalette(_palette(theme))
    app.setStyleSheet(style_sheet(theme))
    return theme
