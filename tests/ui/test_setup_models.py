"""The setup's presets, the per-image cost beside the parameter count, and the pretrained hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox, QLabel

from studio.config import load_config

pytestmark = pytest.mark.usefixtures("qapp")


def test_presets_are_listed_and_load_into_the_setup(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    presets = w.findChild(QComboBox, "presetCombo")
    titles = [presets.itemText(i) for i in range(presets.count())]
    assert titles[1:3] == ["Best for digits", "Quick look (any image folder)"]
    presets.activated.emit(1)
    model = w.findChild(QComboBox, "modelCombo")
    assert model.currentData() == "cnn"
    assert w.sidebar.config() == load_config(presets.itemData(1))  # the whole preset, not only the combos
    assert presets.currentIndex() == 0  # ready to choose again


def test_the_model_card_shows_the_cost_per_image(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    label = w.findChild(QLabel, "paramCountLabel")
    w.findChild(QComboBox, "presetCombo").activated.emit(1)  # best-digits: the cnn on 28 px digits
    qtbot.waitUntil(lambda: "FLOPs/image" in label.text(), timeout=30000)
    count, cost = label.text().split(" · ")
    assert int(count.replace(",", "")) > 10_000 and cost.endswith("MFLOPs/image")


def test_an_image_folder_gets_the_pretrained_hint(
    qtbot: Any, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # nothing cached
    w = make_window()
    quick = w.findChild(QComboBox, "presetCombo")
    quick.activated.emit(2)  # quick look: the bundled shapes folder
    hint = w.findChild(QLabel, "modelHint")
    qtbot.waitUntil(lambda: hint.isVisible() and "imagenet" in hint.text(), timeout=30000)
    assert "resnet18-" in hint.text() and "empty-torch-home" in hint.text()  # where to put the file


def test_each_architecture_shows_its_own_settings(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    panel = w.sidebar.model_panel
    model = w.findChild(QComboBox, "modelCombo")
    shown = {}
    for arch in ("cnn", "vit", "mobilenet_v3_small", "mlp"):
        model.setCurrentIndex(model.findData(arch))
        panel.refresh_visibility()
        shown[arch] = {
            k for k in ("widths", "patch_size", "weights", "hidden") if not panel.fields[f"model.{k}"].widget.isHidden()
        }
    assert shown == {
        "cnn": {"widths"},
        "vit": {"patch_size"},
        "mobilenet_v3_small": {"weights"},
        "mlp": {"hidden"},
    }
