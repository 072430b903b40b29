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


PRESET_TITLES = {"best-digits": "Best for digits", "quick-look": "Quick look (any image folder)"}


def presets() -> list[tuple[str, Path]]:
    """(title, path) of the example configs the window offers as presets, the named presets first."""
    folder = resource_path("examples")
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    first = [f for stem in PRESET_TITLES for f in files if f.stem == stem]
    rest = [f for f in files if f not in first]
    return [(PRESET_TITLES.get(f.stem, f.stem.replace("-", " ").capitalize()), f) for f in first + rest]
