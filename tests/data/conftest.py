"""Fixtures for the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_files import write_digit_folder


@pytest.fixture()
def digit_folder(tmp_path: Path) -> Path:
    root = tmp_path / "digits"
    write_digit_folder(root)
    return root
