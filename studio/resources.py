"""Locate files shipped in `resources/` (bundled digits, icons, example configs)."""

from __future__ import annotations

from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Return the path of a shipped resource, in a source checkout or an installed wheel."""
    here = Path(__file__).resolve().parent
    for root in (here / "_resources", here.parent / "resources"):
        if root.is_dir():
            return root.joinpath(*parts)
    raise FileNotFoundError(f"studio resources not found next to {here}")
