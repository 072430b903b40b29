"""`RunsLocation`: where the window's runs go: the folder it was given, else the one `studio train` uses."""

from __future__ import annotations

from pathlib import Path

from studio.engine.runs_folder import RunsFolder, resolve_runs_folder


class RunsLocation:
    """The window's runs folder (`engine/runs_folder.py` decides it for the window and the CLI alike)."""

    def __init__(self, explicit: str | Path | None = None) -> None:
        self.explicit = Path(explicit) if explicit else None  # MainWindow(runs_dir=...), or a choice made here

    def folder(self) -> RunsFolder:
        return resolve_runs_folder(self.explicit)

    def path(self) -> Path:
        return self.folder().path

    def use(self, path: Path) -> None:
        """The Runs tab's Change… (already saved for everyone): this window uses it even where $STUDIO_RUNS_DIR
        would decide otherwise."""
        self.explicit = None if resolve_runs_folder().path == Path(path) else Path(path)
