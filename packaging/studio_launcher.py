"""Entry point of the packaged app (packaging/studio.spec builds two executables from it).

`studio` is a console program: the command line, and bare `studio` opens the window, as in a
Python install. `studio-gui` is the windowed one a desktop launches (no console window on Windows,
the main program of the macOS bundle): it always opens the window, on the file it is given.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path


def _window_argv(args: list[str]) -> list[str]:
    # Finder on older macOS passes a process serial number (-psn_...); a desktop passes the file.
    files = [a for a in args if not a.startswith("-psn_")]
    return ["gui", *files[:1]]


def main() -> int:
    # DataLoader workers started by spawn (Windows, macOS) re-run this executable; this line turns
    # such a child into the worker instead of a second studio.
    multiprocessing.freeze_support()
    # The app leaves out triton (GPU kernels for torch.compile, which studio does not use); a CUDA
    # torch says so with a warning on every ONNX export that would only puzzle a user.
    logging.getLogger("torch.utils.flop_counter").setLevel(logging.ERROR)
    argv = sys.argv[1:]
    if Path(sys.executable).stem.lower() == "studio-gui":
        argv = _window_argv(argv)
        # A windowed program has no stdout/stderr on Windows and macOS (PyInstaller sets them to
        # None); a print or a warning would then raise.
        for name in ("stdout", "stderr"):
            if getattr(sys, name) is None:
                setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    from studio.cli import main as studio_main

    return studio_main(argv)


if __name__ == "__main__":
    sys.exit(main())
